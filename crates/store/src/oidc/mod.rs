//! Storage for the OpenID Connect provider: ID-token signing keys, authorization codes, the
//! grants behind sessions created by the code flow, and remembered consents.
//!
//! Design: the two things that must hold across replicas are done by the database alone. A
//! signing key is inserted for a unique `(alg, generation)` pair with "on conflict do nothing",
//! so replicas that rotate at the same moment agree on one key. A code is *taken* with one
//! conditional `UPDATE ... RETURNING` (exactly one caller gets it); a later presentation marks
//! the row as replayed and returns the session reserved for it, so that session can be revoked.

mod backends;

use async_trait::async_trait;

use crate::common::RowExt;
use crate::{StoreResult, UnixMillis};

/// An ID-token signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id (`kid`), unique.
    pub kid: String,
    /// JOSE algorithm: `RS256` or `ES256`.
    pub alg: String,
    /// 1, 2, 3, ... per algorithm; unique with `alg`.
    pub generation: i64,
    /// The private key, sealed by the caller (opaque text here).
    pub private_key: String,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    /// When it was generated.
    pub created_at: UnixMillis,
    /// When it starts signing (published before that).
    pub activates_at: UnixMillis,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// An authorization code and everything it is bound to.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// SHA-256 of the code (the code itself is never stored).
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI the code was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named `redirect_uri` (then the token request must too).
    pub redirect_uri_given: bool,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// OpenID Connect nonce, copied into the ID token.
    pub nonce: Option<String>,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// The user.
    pub user: String,
    /// The browser session the user was logged in with.
    pub auth_session: String,
    /// When the user authenticated (Unix ms).
    pub auth_time: UnixMillis,
    /// The id of the session the code's exchange creates (reserved up front, so a replay can
    /// revoke it whenever it happens).
    pub session_id: String,
    /// Creation time.
    pub created_at: UnixMillis,
    /// After this the code is refused.
    pub expires_at: UnixMillis,
}

impl std::fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCode")
            .field("client_id", &self.client_id)
            .field("user", &self.user)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What taking a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeTake {
    /// First use: the code is now spent.
    Taken(Box<AuthCode>),
    /// The code was already used; it is now marked replayed. Holds the session reserved for it.
    Replayed {
        /// The session the first exchange created (or will create).
        session_id: String,
    },
    /// No such code (never issued, or pruned).
    Unknown,
}

/// The OpenID Connect grant behind a session created by the code flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcGrant {
    /// The session.
    pub session_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// When the user authenticated (Unix ms).
    pub auth_time: UnixMillis,
    /// The browser session the user was logged in with.
    pub auth_session: String,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A remembered consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The user.
    pub user: String,
    /// The client.
    pub client_id: String,
    /// Consented scopes, space-separated.
    pub scopes: String,
    /// When it was given.
    pub granted_at: UnixMillis,
}

/// Storage of the OpenID Connect provider.
#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Inserts a key unless one with the same `(alg, generation)` (or `kid`) exists; returns
    /// whether this call inserted it.
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<bool>;
    /// Every stored key, ordered by algorithm and generation.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Deletes a key; returns false when absent.
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<bool>;
    /// Stores a new code. [`crate::StoreError::Conflict`] if the hash exists.
    async fn create_auth_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Takes the code atomically (see [`CodeTake`]); expired codes are taken too, the caller
    /// checks `expires_at`.
    async fn take_auth_code(&self, code_hash: &str, now: UnixMillis) -> StoreResult<CodeTake>;
    /// Whether the code was presented again after it was taken.
    async fn auth_code_replayed(&self, code_hash: &str) -> StoreResult<bool>;
    /// Stores the grant of a session (replacing any for the same session).
    async fn put_oidc_grant(&self, grant: &OidcGrant) -> StoreResult<()>;
    /// The grant of a session.
    async fn get_oidc_grant(&self, session_id: &str) -> StoreResult<Option<OidcGrant>>;
    /// A user's consent for a client.
    async fn get_consent(&self, user: &str, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Stores a consent, replacing the previous one for the same user and client.
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// Deletes codes that expired before `codes_before`, grants whose session no longer exists
    /// and consents of users that no longer exist. Returns how many rows went.
    async fn prune_oidc(&self, codes_before: UnixMillis) -> StoreResult<u64>;
}

macro_rules! key_columns {
    () => {
        "kid, alg, generation, private_key, public_jwk, created_at, activates_at"
    };
}
macro_rules! code_columns {
    () => {
        "code_hash, client_id, redirect_uri, redirect_uri_given, code_challenge, nonce, scopes, \
         user_name, auth_session, auth_time, session_id, created_at, expires_at"
    };
}
macro_rules! grant_columns {
    () => {
        "session_id, client_id, user_name, scopes, auth_time, auth_session, created_at"
    };
}
/// Binds a grant's fields to `query`, in [`grant_columns!`] order.
macro_rules! bind_grant {
    ($query:expr, $g:expr) => {
        $query
            .bind(&$g.session_id)
            .bind(&$g.client_id)
            .bind(&$g.user)
            .bind(&$g.scopes)
            .bind($g.auth_time)
            .bind(&$g.auth_session)
            .bind($g.created_at)
    };
}
pub(crate) use {bind_grant, grant_columns};

const INSERT_KEY: &str = concat!(
    "INSERT INTO oidc_signing_keys (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
);
const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM oidc_signing_keys ORDER BY alg, generation"
);
const DELETE_KEY: &str = "DELETE FROM oidc_signing_keys WHERE kid = $1";
const INSERT_CODE: &str = concat!(
    "INSERT INTO oidc_codes (",
    code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);
const TAKE_CODE: &str = concat!(
    "UPDATE oidc_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL RETURNING ",
    code_columns!()
);
const MARK_REPLAYED: &str =
    "UPDATE oidc_codes SET replayed_at = $2 WHERE code_hash = $1 RETURNING session_id";
const IS_REPLAYED: &str =
    "SELECT replayed_at FROM oidc_codes WHERE code_hash = $1 AND replayed_at IS NOT NULL";
const PUT_GRANT: &str = concat!(
    "INSERT INTO oidc_grants (",
    grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (session_id) DO UPDATE SET \
     client_id = excluded.client_id, user_name = excluded.user_name, scopes = excluded.scopes, \
     auth_time = excluded.auth_time, auth_session = excluded.auth_session, \
     created_at = excluded.created_at"
);
const GET_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM oidc_grants WHERE session_id = $1"
);
const GET_CONSENT: &str = "SELECT user_name, client_id, scopes, granted_at FROM oidc_consents \
     WHERE user_name = $1 AND client_id = $2";
const PUT_CONSENT: &str = "INSERT INTO oidc_consents (user_name, client_id, scopes, granted_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (user_name, client_id) DO UPDATE SET \
     scopes = excluded.scopes, granted_at = excluded.granted_at";
const PRUNE_CODES: &str = "DELETE FROM oidc_codes WHERE expires_at < $1";
const PRUNE_GRANTS: &str = "DELETE FROM oidc_grants WHERE NOT EXISTS \
     (SELECT 1 FROM sessions WHERE sessions.id = oidc_grants.session_id)";
const PRUNE_CONSENTS: &str = "DELETE FROM oidc_consents WHERE NOT EXISTS \
     (SELECT 1 FROM users WHERE users.name = oidc_consents.user_name)";

fn key_from_row(r: &impl RowExt) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        kid: r.text("kid")?,
        alg: r.text("alg")?,
        generation: r.int("generation")?,
        private_key: r.text("private_key")?,
        public_jwk: r.text("public_jwk")?,
        created_at: r.int("created_at")?,
        activates_at: r.int("activates_at")?,
    })
}

fn code_from_row(r: &impl RowExt) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        code_hash: r.text("code_hash")?,
        client_id: r.text("client_id")?,
        redirect_uri: r.text("redirect_uri")?,
        redirect_uri_given: r.flag("redirect_uri_given")?,
        code_challenge: r.opt_text("code_challenge")?,
        nonce: r.opt_text("nonce")?,
        scopes: r.text("scopes")?,
        user: r.text("user_name")?,
        auth_session: r.text("auth_session")?,
        auth_time: r.int("auth_time")?,
        session_id: r.text("session_id")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn grant_from_row(r: &impl RowExt) -> StoreResult<OidcGrant> {
    Ok(OidcGrant {
        session_id: r.text("session_id")?,
        client_id: r.text("client_id")?,
        user: r.text("user_name")?,
        scopes: r.text("scopes")?,
        auth_time: r.int("auth_time")?,
        auth_session: r.text("auth_session")?,
        created_at: r.int("created_at")?,
    })
}

fn consent_from_row(r: &impl RowExt) -> StoreResult<Consent> {
    Ok(Consent {
        user: r.text("user_name")?,
        client_id: r.text("client_id")?,
        scopes: r.text("scopes")?,
        granted_at: r.int("granted_at")?,
    })
}

fn code_conflict(err: sqlx::Error) -> crate::StoreError {
    match crate::common::unique_violation(&err) {
        Some(_) => crate::StoreError::Conflict("authorization code already exists".into()),
        None => err.into(),
    }
}
