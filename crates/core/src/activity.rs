//! Inactivity tracking without a database write per request.
//!
//! Each process remembers when it last saw each session used, in memory, and flushes the times to
//! the store in one batch every few seconds (`touch_sessions`). A session not seen locally is
//! loaded once from the store. A session that looks idle for longer than the timeout is re-read
//! from the store before it is refused, because another replica may have seen it used since.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use dashmap::DashMap;
use portcullis_store::{Store, StoreResult, UnixMillis};

struct Seen {
    at: AtomicI64,
    dirty: AtomicBool,
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
}

impl ActivityTracker {
    /// Marks the session used at `now` if it was last used within `timeout_ms`.
    pub async fn touch(
        &self,
        store: &dyn Store,
        session_id: &str,
        now: UnixMillis,
        timeout_ms: i64,
    ) -> StoreResult<Activity> {
        if let Some(entry) = self.seen.get(session_id) {
            let last = entry.at.load(Ordering::Relaxed);
            if now - last <= timeout_ms {
                if now > last {
                    entry.at.fetch_max(now, Ordering::Relaxed);
                    entry.dirty.store(true, Ordering::Relaxed);
                }
                return Ok(Activity::Live);
            }
        }
        // Not seen here, or idle here: the store has the last time any replica flushed.
        let Some(session) = store.get_session(session_id).await? else {
            return Ok(Activity::Unknown);
        };
        let local = self
            .seen
            .get(session_id)
            .map(|e| e.at.load(Ordering::Relaxed))
            .unwrap_or(0);
        let last = session.last_seen_at.max(local);
        if now - last > timeout_ms {
            return Ok(Activity::Idle);
        }
        self.seen
            .entry(session_id.to_owned())
            .and_modify(|e| {
                e.at.fetch_max(now, Ordering::Relaxed);
                e.dirty.store(true, Ordering::Relaxed);
            })
            .or_insert_with(|| Seen {
                at: AtomicI64::new(now),
                dirty: AtomicBool::new(true),
            });
        Ok(Activity::Live)
    }

    /// Records a use without checking (a session that was just created or refreshed).
    pub fn mark(&self, session_id: &str, now: UnixMillis) {
        self.seen
            .entry(session_id.to_owned())
            .and_modify(|e| {
                e.at.fetch_max(now, Ordering::Relaxed);
                e.dirty.store(true, Ordering::Relaxed);
            })
            .or_insert_with(|| Seen {
                at: AtomicI64::new(now),
                dirty: AtomicBool::new(false),
            });
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
