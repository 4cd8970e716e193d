//! Errors of the core. No HTTP status codes here: `portcullis-http` maps them.

use portcullis_store::StoreError;

/// Why a login or grant was refused. Messages are safe to show to the caller; internals are not
/// in them (they are logged instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong password, unknown user, or a user without a password: one answer for all three.
    #[error("incorrect username or password")]
    InvalidCredentials,
    /// Too many failed logins for this account or from this address.
    #[error("too many failed login attempts; try again in {retry_after_s} seconds")]
    Locked {
        /// Seconds until the lock ends.
        retry_after_s: i64,
    },
    /// The account is disabled (only said to someone who proved the password).
    #[error("account is disabled")]
    AccountDisabled,
    /// A bad, expired, revoked or reused grant (refresh token, code).
    #[error("{0}")]
    InvalidGrant(String),
    /// Client authentication failed.
    #[error("{0}")]
    InvalidClient(String),
    /// The client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// A required parameter is missing or malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// Unknown `grant_type`.
    #[error("grant type {0:?} is not supported")]
    UnsupportedGrantType(String),
    /// Something on the server side failed; details were logged.
    #[error("{0}")]
    Internal(String),
    /// The database cannot be reached; the caller may retry later.
    #[error("{0}")]
    Unavailable(String),
}

const TRY_LATER: &str = "the server could not complete the request; try again later";

/// Counts a store failure met while serving a request.
fn count_store_error(e: &StoreError) {
    let kind = if e.is_unavailable() {
        "unavailable"
    } else {
        "error"
    };
    metrics::counter!("portcullis_store_errors_total", "op" => "request", "kind" => kind)
        .increment(1);
}

/// Errors of administrative operations (user management, the CLI).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Bad input; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => CoreError::Conflict(m),
            StoreError::NotFound(m) => CoreError::NotFound(m),
            other => CoreError::Store(other),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error during authentication");
        count_store_error(&e);
        if e.is_unavailable() {
            AuthError::Unavailable(TRY_LATER.into())
        } else {
            AuthError::Internal(TRY_LATER.into())
        }
    }
}

impl From<CoreError> for AuthError {
    fn from(e: CoreError) -> Self {
        tracing::error!(error = %e, "internal error during authentication");
        match e {
            CoreError::Store(s) if s.is_unavailable() => {
                count_store_error(&s);
                AuthError::Unavailable(TRY_LATER.into())
            }
            _ => AuthError::Internal(TRY_LATER.into()),
        }
    }
}

impl CoreError {
    /// Whether this is the database being unreachable (answer 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CoreError::Store(s) if s.is_unavailable())
    }
}
