//! Session sightings and inactivity tracking without a database access per request.
//!
//! Each process remembers, in memory, each session it has seen: its owner, whether it has an
//! expiry, and when it was last used. A session not seen locally is loaded once from the store;
//! from then on a token is checked against the remembered facts (its user must own the session,
//! and a session with an expiry accepts only tokens with `exp`), so a token minted with
//! `jwtSecret` for a live session of another user is refused without another read. With an
//! inactivity timeout the last-use times are flushed to the store in one batch every few seconds
//! (`touch_sessions`), and a session that looks idle for longer than the timeout is re-read from
//! the store before it is refused, because another replica may have seen it used since.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dashmap::DashMap;
use portcullis_store::{Session, Store, StoreResult, UnixMillis};

struct Seen {
    at: AtomicI64,
    dirty: AtomicBool,
    /// The session's user.
    owner: String,
    /// Whether the session has an expiry (then its tokens must have `exp`); a refresh after a
    /// configuration change may change it.
    bounded: AtomicBool,
    /// The session's client and granted scopes, once introspection or userinfo needed them.
    grant: OnceLock<Arc<GrantFacts>>,
    /// The session's last userinfo answer and when it was computed.
    userinfo: Mutex<Option<(UnixMillis, Arc<serde_json::Value>)>>,
}

/// How long a userinfo answer is reused for further requests with the same session: the bound
/// on how stale a profile change (email, display name, groups) can look there. Disabling or
/// deleting the user revokes the session, which is checked before.
pub const USERINFO_FRESH_MS: i64 = 1_000;

/// What introspection, userinfo and the refresh grant need to know about a session's OAuth
/// grant. It is written once, before the session's first token is handed out, and never
/// changes, so a process may remember it for as long as it remembers the session (revocation is
/// checked separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    /// The client the session was issued to; empty for none (a console login).
    pub client_id: String,
    /// The scopes of its OIDC grant; `None` for a session without one (KubeSphere's password
    /// grant and console logins).
    pub scopes: Option<String>,
    /// When the user authenticated (Unix ms), from the stored grant; `None` without one, and
    /// for an unstored client-credentials token.
    pub auth_time: Option<UnixMillis>,
}

impl Seen {
    fn new(owner: &str, bounded: bool, at: UnixMillis, dirty: bool) -> Seen {
        Seen {
            at: AtomicI64::new(at),
            dirty: AtomicBool::new(dirty),
            owner: owner.to_owned(),
            bounded: AtomicBool::new(bounded),
            grant: OnceLock::new(),
            userinfo: Mutex::new(None),
        }
    }

    /// How a token of `holder` fits this session (ownership and expiry only).
    fn admits(&self, holder: &Holder<'_>) -> Option<Activity> {
        if self.owner != holder.user {
            Some(Activity::Foreign)
        } else if !holder.has_exp && self.bounded.load(Ordering::Relaxed) {
            Some(Activity::Unbounded)
        } else {
            None
        }
    }

    fn used(&self, now: UnixMillis, track: bool) {
        if now > self.at.fetch_max(now, Ordering::Relaxed) && track {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }
}

/// What a presented token says about its holder, checked against the session it names.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// The token's `username`.
    pub user: &'a str,
    /// Whether the token has an `exp` claim.
    pub has_exp: bool,
}

/// The facts about a session that a sighting remembers.
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    /// The session's user.
    pub owner: &'a str,
    /// Whether the session has an expiry.
    pub bounded: bool,
}

impl<'a> SessionFacts<'a> {
    /// The facts of a stored session.
    pub fn of(session: &'a Session) -> SessionFacts<'a> {
        SessionFacts {
            owner: &session.user,
            bounded: session.expires_at.is_some(),
        }
    }
}

/// Last-use times of sessions, as seen by this process.
#[derive(Default)]
pub struct ActivityTracker {
    seen: DashMap<String, Seen>,
}

/// Outcome of [`ActivityTracker::touch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Used recently enough; now marked as used.
    Live,
    /// Idle for longer than the timeout.
    Idle,
    /// The store has no such session.
    Unknown,
    /// The session belongs to another user than the token names.
    Foreign,
    /// The token has no `exp` but the session has an expiry.
    Unbounded,
}

impl ActivityTracker {
    /// Checks a token of `holder` against the session it names and, when it fits and was last
    /// used within `timeout_ms`, marks the session used at `now`. A `timeout_ms` of 0 means no
    /// inactivity timeout: only existence, owner and expiry are checked and nothing is flushed.
    /// Reads the store only for a session not seen here, or one that looks idle here.
    pub async fn touch(
        &self,
        store: &dyn Store,
        session_id: &str,
        holder: Holder<'_>,
        now: UnixMillis,
        timeout_ms: i64,
    ) -> StoreResult<Activity> {
        let track = timeout_ms > 0;
        if let Some(entry) = self.seen.get(session_id) {
            if let Some(refused) = entry.admits(&holder) {
                return Ok(refused);
            }
            let last = entry.at.load(Ordering::Relaxed);
            if !track || now - last <= timeout_ms {
                entry.used(now, track);
                return Ok(Activity::Live);
            }
        }
        // Not seen here, or idle here: the store has the last time any replica flushed.
        let Some(session) = store.get_session(session_id).await? else {
            return Ok(Activity::Unknown);
        };
        let facts = SessionFacts::of(&session);
        let local = self
            .seen
            .get(session_id)
            .map(|e| e.at.load(Ordering::Relaxed))
            .unwrap_or(0);
        let last = session.last_seen_at.max(local);
        let entry = self
            .seen
            .entry(session_id.to_owned())
            .or_insert_with(|| Seen::new(facts.owner, facts.bounded, last, false));
        if let Some(refused) = entry.admits(&holder) {
            return Ok(refused);
        }
        if track && now - last > timeout_ms {
            return Ok(Activity::Idle);
        }
        entry.used(now, track);
        Ok(Activity::Live)
    }

    /// Records a use without checking (a session that was just created or refreshed), with
    /// the facts a later [`ActivityTracker::touch`] checks tokens against.
    pub fn mark(&self, session_id: &str, facts: SessionFacts<'_>, now: UnixMillis) {
        self.seen
            .entry(session_id.to_owned())
            .and_modify(|e| {
                e.bounded.store(facts.bounded, Ordering::Relaxed);
                e.used(now, true);
            })
            .or_insert_with(|| Seen::new(facts.owner, facts.bounded, now, false));
    }

    /// The remembered grant facts of a session seen here.
    pub fn grant_facts(&self, session_id: &str) -> Option<Arc<GrantFacts>> {
        self.seen.get(session_id)?.grant.get().cloned()
    }

    /// Remembers a session's grant facts, read from the store. Only for a session seen here (a
    /// verified token of it): the facts are forgotten with the session.
    pub fn remember_grant_facts(&self, session_id: &str, facts: Arc<GrantFacts>) {
        if let Some(entry) = self.seen.get(session_id) {
            let _ = entry.grant.set(facts);
        }
    }

    /// The session's userinfo answer if it was computed less than [`USERINFO_FRESH_MS`] ago.
    pub fn fresh_userinfo(
        &self,
        session_id: &str,
        now: UnixMillis,
    ) -> Option<Arc<serde_json::Value>> {
        let entry = self.seen.get(session_id)?;
        let cached = entry.userinfo.lock().ok()?;
        cached
            .as_ref()
            .filter(|(at, _)| (0..USERINFO_FRESH_MS).contains(&(now - at)))
            .map(|(_, answer)| answer.clone())
    }

    /// Remembers a session's userinfo answer computed at `now` (only for a session seen here).
    pub fn remember_userinfo(
        &self,
        session_id: &str,
        now: UnixMillis,
        answer: Arc<serde_json::Value>,
    ) {
        if let Some(entry) = self.seen.get(session_id)
            && let Ok(mut cached) = entry.userinfo.lock()
        {
            *cached = Some((now, answer));
        }
    }

    /// Writes the times changed since the last flush to the store, in one batch, and forgets
    /// sessions idle for longer than `forget_after_ms`.
    pub async fn flush(
        &self,
        store: &dyn Store,
        now: UnixMillis,
        forget_after_ms: i64,
    ) -> StoreResult<usize> {
        let mut batch = Vec::new();
        for entry in self.seen.iter() {
            if entry.dirty.swap(false, Ordering::Relaxed) {
                batch.push((entry.key().clone(), entry.at.load(Ordering::Relaxed)));
            }
        }
        if !batch.is_empty()
            && let Err(e) = store.touch_sessions(&batch).await
        {
            // Put the marks back so the next flush retries them.
            for (id, _) in &batch {
                if let Some(entry) = self.seen.get(id) {
                    entry.dirty.store(true, Ordering::Relaxed);
                }
            }
            return Err(e);
        }
        self.seen.retain(|_, e| {
            now - e.at.load(Ordering::Relaxed) <= forget_after_ms || e.dirty.load(Ordering::Relaxed)
        });
        Ok(batch.len())
    }
}
