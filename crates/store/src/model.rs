//! Plain data types stored by every backend. Times are Unix milliseconds (`i64`) so that
//! both backends store them identically and tests can drive them with an injected clock.

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type UnixMillis = i64;

/// Account state, with KubeSphere's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserState {
    /// The user may log in.
    Active,
    /// Refused on every path, and all tokens revoked.
    Disabled,
    /// Imported from KubeSphere in this state; Portcullis keeps its own lockout in the
    /// lockout store, and treats this like `Active` once any lock has expired.
    AuthLimitExceeded,
}

impl UserState {
    /// KubeSphere's spelling, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "Active",
            UserState::Disabled => "Disabled",
            UserState::AuthLimitExceeded => "AuthLimitExceeded",
        }
    }

    /// Parses KubeSphere's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Active" => Some(UserState::Active),
            "Disabled" => Some(UserState::Disabled),
            "AuthLimitExceeded" => Some(UserState::AuthLimitExceeded),
            _ => None,
        }
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique, immutable login name (KubeSphere `metadata.name`).
    pub name: String,
    /// Stable opaque id (UUID), reported as `uid` in TokenReview.
    pub uid: String,
    /// Unique when present (compared case-insensitively).
    pub email: Option<String>,
    /// Human name for display.
    pub display_name: Option<String>,
    /// Group names, in order.
    pub groups: Vec<String>,
    /// Account state.
    pub state: UserState,
    /// PHC string (argon2id) or a bcrypt `$2a$`/`$2b$`/`$2y$` hash; `None` for users that only log in
    /// through an identity provider.
    pub password_hash: Option<String>,
    /// KubeSphere's `iam.kubesphere.io/uninitialized`: the user must set a password.
    pub uninitialized: bool,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last successful login.
    pub last_login_at: Option<UnixMillis>,
    /// Last password change (KubeSphere `last-password-change-time`).
    pub password_changed_at: Option<UnixMillis>,
}

/// A link from an upstream identity to a local user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityLink {
    /// Identity provider `name` from the configuration.
    pub provider: String,
    /// The upstream's stable user id.
    pub upstream_uid: String,
    /// Local user name.
    pub user: String,
    /// Upstream user name at link time (informational).
    pub upstream_username: Option<String>,
    /// Upstream email at link time.
    pub upstream_email: Option<String>,
    /// Whether the identity provider reported `upstream_email` as verified; only then does a
    /// user email equal to it count as verified (`email_verified` in ID tokens and userinfo).
    #[serde(default)]
    pub upstream_email_verified: bool,
    /// When the link was made.
    pub created_at: UnixMillis,
}

/// One login attempt, successful or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// Unique id (UUID v7, so ids sort by time).
    pub id: String,
    /// Resolved local user name, or the name as typed when it did not resolve.
    pub user: String,
    /// When it happened.
    pub at: UnixMillis,
    /// `Token` (password grant, legacy login, callback) or `Basic`, as in KubeSphere.
    pub login_type: String,
    /// Identity provider name, empty for local accounts.
    pub provider: String,
    /// Client address as determined by the server (never a raw client-controlled header).
    pub source_ip: String,
    /// Request `User-Agent`.
    pub user_agent: String,
    /// Whether the login succeeded.
    pub success: bool,
    /// `authenticated successfully` or the reason it failed.
    pub reason: String,
}

/// A login session: every token pair belongs to exactly one. Revoking the session revokes its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random id, carried in the tokens as the `sid` claim.
    pub id: String,
    /// Local user name.
    pub user: String,
    /// OAuth client that started it, empty when none.
    pub client_id: String,
    /// Identity provider used to log in, empty for local passwords.
    pub provider: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// When the last refresh token issued for it expires; the session is dead after that.
    pub expires_at: Option<UnixMillis>,
    /// Last use of any of its tokens, as flushed by the servers (batched, not per request).
    pub last_seen_at: UnixMillis,
    /// Counter of the current refresh token; bumped on every refresh grant.
    pub refresh_generation: i64,
    /// Set when revoked.
    pub revoked_at: Option<UnixMillis>,
    /// Source address at login.
    pub source_ip: String,
    /// User agent at login.
    pub user_agent: String,
    /// Groups the identity provider reported at login (after `allowedGroups` and
    /// `groupsPrefix`); the session's tokens carry them beside the user's own groups.
    pub upstream_groups: Vec<String>,
}

/// One entry of the revocation log: every server polls it to learn about revocations made elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Monotonic sequence number.
    pub seq: i64,
    /// Revoked session.
    pub session_id: String,
    /// After this the session's tokens are expired anyway and the entry may be pruned.
    pub expires_at: Option<UnixMillis>,
}

/// Answer of [`crate::LockoutStore::lockout_reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutDecision {
    /// The attempt may proceed; one failure slot is reserved for it.
    Allowed,
    /// Locked until the given time.
    Locked {
        /// When the lock ends.
        until: UnixMillis,
    },
    /// Not locked, but every slot of the window is taken and some by attempts still in flight:
    /// one is free again as soon as such an attempt ends (succeeds, or fails and locks). The
    /// caller may try again shortly; nothing was reserved.
    Busy,
}

/// Parameters of a failure-counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed in the window; the `max_failures`-th failure locks. Values below 1 count as 1.
    pub max_failures: i64,
    /// Window length, and lock length, in milliseconds. Values below 1 count as 1.
    pub window_ms: i64,
}
