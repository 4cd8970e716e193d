//! Storage for Portcullis: users, identity links, login records, sessions (the token state that
//! revocation needs), lockout counters, the short-lived rows of federated login, and the OpenID
//! Connect provider's keys, codes, grants and consents.
//!
//! Design: one trait per aggregate ([`UserStore`], [`IdentityStore`], [`LoginRecordStore`],
//! [`SessionStore`], [`LockoutStore`], [`FederationStore`], [`OidcStore`]), gathered in
//! [`Store`], used as `Arc<dyn Store>`. Two real backends, [`sqlite::SqliteStore`] (embedded default, WAL) and
//! [`postgres::PostgresStore`] (for several replicas), both with versioned migrations that run at
//! open, and both pass the same conformance suite in [`conformance`]. Times are Unix milliseconds
//! supplied by the caller, so the store never reads the clock itself and tests can drive time.

mod common;
pub mod conformance;
mod error;
mod federation;
mod model;
mod oidc;
mod pg_conns;
pub mod postgres;
pub mod sqlite;
mod sqlite_conns;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::StoreError;
pub use federation::{FederationStore, LoginState, PendingRegistration};
pub use model::*;
pub use oidc::{AuthCode, CodeTake, Consent, OidcGrant, OidcStore, SigningKey};

/// Result type of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Fields that may be changed on an existing user (`None` leaves a field as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// New email; `Some(None)` clears it.
    pub email: Option<Option<String>>,
    /// New display name; `Some(None)` clears it.
    pub display_name: Option<Option<String>>,
    /// New group list.
    pub groups: Option<Vec<String>>,
    /// New state.
    pub state: Option<UserState>,
    /// New `uninitialized` flag.
    pub uninitialized: Option<bool>,
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. Errors with [`StoreError::Conflict`] when the name or the email is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// Finds a user by exact name.
    async fn get_user(&self, name: &str) -> StoreResult<Option<User>>;
    /// Finds a user by email, compared case-insensitively.
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Lists users ordered by name, from `offset`, at most `limit`.
    async fn list_users(&self, offset: i64, limit: i64) -> StoreResult<Vec<User>>;
    /// Number of users.
    async fn count_users(&self) -> StoreResult<i64>;
    /// Changes fields of a user. [`StoreError::NotFound`] when absent, [`StoreError::Conflict`] on a taken email.
    async fn update_user(&self, name: &str, update: &UserUpdate) -> StoreResult<User>;
    /// Sets a new password hash and its change time, and clears `uninitialized`.
    /// [`StoreError::NotFound`] when the user does not exist.
    async fn set_password(&self, name: &str, hash: &str, at: UnixMillis) -> StoreResult<()>;
    /// Replaces the password hash by `new` only while it is still `old`, leaving the change time
    /// and `uninitialized` alone: the upgrade of an imported bcrypt hash to argon2id after a
    /// successful login. Returns whether it was replaced (false when the password changed
    /// meanwhile or the user is gone).
    async fn upgrade_password_hash(&self, name: &str, old: &str, new: &str) -> StoreResult<bool>;
    /// Deletes a user with its identity links and login records; returns false when absent.
    /// Sessions are not touched here: revoke them first with [`SessionStore::revoke_user_sessions`].
    async fn delete_user(&self, name: &str) -> StoreResult<bool>;
}

/// Links between upstream identities and local users.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates a link. [`StoreError::Conflict`] when `(provider, upstream_uid)` is already linked,
    /// [`StoreError::NotFound`] when the user does not exist.
    async fn link_identity(&self, link: &IdentityLink) -> StoreResult<()>;
    /// The link for an upstream identity.
    async fn find_identity(
        &self,
        provider: &str,
        upstream_uid: &str,
    ) -> StoreResult<Option<IdentityLink>>;
    /// All links of a user, ordered by provider.
    async fn list_identities(&self, user: &str) -> StoreResult<Vec<IdentityLink>>;
    /// Removes a link; returns false when absent.
    async fn unlink_identity(&self, provider: &str, upstream_uid: &str) -> StoreResult<bool>;
}

/// Login history.
#[async_trait]
pub trait LoginRecordStore: Send + Sync {
    /// Appends a record. A successful one also sets its user's last login time to the record's
    /// (when the user exists), in the same statement: a login costs one write, not two.
    async fn add_login_record(&self, record: &LoginRecord) -> StoreResult<()>;
    /// A user's records, newest first, with the total count.
    async fn list_login_records(
        &self,
        user: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<LoginRecord>, i64)>;
    /// Deletes records older than `older_than`, then for each user all but the newest `max_per_user`
    /// (newest by `at`, ties broken by `id`). `max_per_user <= 0` means no per-user limit and
    /// `older_than = i64::MIN` no age limit. Returns the number deleted. Works in bounded batches,
    /// so a large table is never held in one long transaction.
    async fn prune_login_records(
        &self,
        older_than: UnixMillis,
        max_per_user: i64,
    ) -> StoreResult<u64>;
}

/// Sessions and the revocation log.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// A session by id.
    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>>;
    /// A session by id and its user, in one read; the user is `None` when no user of that name
    /// exists (a pre-registration's session, a user deleted meanwhile).
    async fn get_session_with_user(&self, id: &str)
    -> StoreResult<Option<(Session, Option<User>)>>;
    /// A user's sessions that are not revoked and not expired at `now`, newest first.
    async fn list_active_sessions(&self, user: &str, now: UnixMillis) -> StoreResult<Vec<Session>>;
    /// Atomically moves the session to the next refresh generation if it is still at `expected`,
    /// not revoked and not expired at `now`, sets its new expiry and raises `last_seen_at` to
    /// `now`. Returns false when the generation did not match (a reused refresh token) or the
    /// session is revoked, expired or absent.
    async fn advance_refresh(
        &self,
        id: &str,
        expected: i64,
        expires_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> StoreResult<bool>;
    /// Revokes one session and appends it to the revocation log; returns false when absent or already revoked.
    async fn revoke_session(&self, id: &str, at: UnixMillis) -> StoreResult<bool>;
    /// Appends a token that has no session row (an unstored client-credentials token, whose
    /// session id the server can check by itself) to the revocation log, until `expires_at`.
    /// No check for an earlier entry (the log has no index on ids; a second entry is harmless):
    /// callers skip what their revocation index already holds.
    async fn revoke_unstored(&self, id: &str, expires_at: UnixMillis) -> StoreResult<()>;
    /// Revokes every unrevoked session of a user except `except`, logging each; returns the revoked ids.
    async fn revoke_user_sessions(
        &self,
        user: &str,
        except: Option<&str>,
        at: UnixMillis,
    ) -> StoreResult<Vec<String>>;
    /// Revocation log entries with `seq > after`, in order, at most `limit`.
    async fn revocations_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>>;
    /// Revocation log entries whose session is still unexpired at `now` (loaded at start).
    async fn live_revocations(&self, now: UnixMillis) -> StoreResult<Vec<Revocation>>;
    /// Highest sequence number in the log (0 when empty).
    async fn revocation_head(&self) -> StoreResult<i64>;
    /// Records last-use times, batched: sets `last_seen_at = max(last_seen_at, t)` for each pair.
    async fn touch_sessions(&self, seen: &[(String, UnixMillis)]) -> StoreResult<()>;
    /// Deletes sessions and revocation entries that expired before `before`; returns how many rows went.
    /// Sessions and entries without an expiry are kept forever: a revoked never-expiring session
    /// must stay revoked.
    async fn prune_sessions(&self, before: UnixMillis) -> StoreResult<u64>;
}

/// Failed-login counters shared by all replicas. Keys are opaque (`user:alice`, `ip:10.0.0.1`).
/// SQLite, which serves one process, holds the slots of attempts in flight in memory and
/// writes only what changes the stored counters; the answers are the same on both backends.
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// Reserves one slot of every key, all or none, atomically. For each key: if it is
    /// locked at `now`, `Locked`; otherwise a new window starts if the current one is over, and
    /// if fewer than `max_failures` failures (counting reserved attempts) are in the window, one
    /// slot is reserved (`Allowed`); else `Busy`. The answer has one decision per key, in order;
    /// when any is not `Allowed`, no key was reserved. Concurrent callers can never reserve more
    /// than `max_failures` slots of a key per window. Keys must be distinct.
    async fn lockout_reserve(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<LockoutDecision>>;
    /// The reserved attempt failed, for every key atomically: it stays counted; when a
    /// key's count has reached `max_failures` the key is locked for `window_ms` from `now`.
    /// Returns, per key, the lock end if now locked. Keys must be distinct.
    async fn lockout_fail(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<Option<UnixMillis>>>;
    /// The reserved attempt succeeded or was not a password guess: gives the slot of every key
    /// back, atomically.
    async fn lockout_release(&self, keys: &[&str]) -> StoreResult<()>;
    /// When the key is locked at `now`, the lock end.
    async fn lockout_status(&self, key: &str, now: UnixMillis) -> StoreResult<Option<UnixMillis>>;
    /// Forgets the key (an operator unlocking an account).
    async fn lockout_clear(&self, key: &str) -> StoreResult<()>;
    /// Deletes counters that carry no information any more at `now` (their window is over and
    /// they are not locked), so keys such as `ip:...` do not pile up. Returns how many went.
    async fn prune_lockouts(&self, now: UnixMillis) -> StoreResult<u64>;
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`: succeeds when the
    /// lease is free, expired at `now`, or already `holder`'s. Background jobs take one before
    /// each run, so with several replicas on one database a job runs on one of them at a time.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixMillis,
        ttl_ms: i64,
    ) -> StoreResult<bool>;
}

/// Everything Portcullis stores.
#[async_trait]
pub trait Store:
    UserStore
    + IdentityStore
    + LoginRecordStore
    + SessionStore
    + LockoutStore
    + FederationStore
    + OidcStore
{
    /// Backend name for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
    /// The end of a login: creates `session` (when the login succeeded), gives one lockout slot
    /// of each key in `release` back (as [`LockoutStore::lockout_release`]) and adds the login
    /// `record` (as [`LoginRecordStore::add_login_record`]), all or nothing (when it fails, no
    /// slot was given back). One statement on PostgreSQL and one transaction on SQLite: a
    /// login's round trips and commits are most of what it costs beyond the password hash.
    async fn finish_login(
        &self,
        session: Option<&Session>,
        release: &[&str],
        record: &LoginRecord,
    ) -> StoreResult<()>;
    /// Creates `session` and its OpenID Connect `grant` (whose `session_id` must be the
    /// session's id), all or nothing: the sessions of the code exchange and of client credentials.
    /// [`StoreError::Conflict`] if the session exists. One statement on PostgreSQL and one
    /// transaction on SQLite.
    async fn create_granted_session(&self, session: &Session, grant: &OidcGrant)
    -> StoreResult<()>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the connections (waiting for calls in flight); later calls fail. Call at shutdown
    /// so SQLite checkpoints its write-ahead log.
    async fn close(&self);
}

/// Opens the store a database URL names (`sqlite://PATH`, `sqlite:PATH`, `postgres://...`,
/// `postgresql://...`) and runs the migrations.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?))
    } else {
        Err(StoreError::InvalidUrl(format!(
            "unsupported database URL {:?}: expected sqlite://PATH, sqlite:PATH or postgres://...",
            redact_url(url)
        )))
    }
}

/// A URL with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
