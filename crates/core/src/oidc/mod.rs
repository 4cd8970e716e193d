//! The OpenID Connect provider: authorization requests ([`authorize`], redirect URIs in
//! [`uris`], consent in `consent`), authorization codes and their exchange ([`codes`]), ID tokens
//! ([`id_token`]) signed with database-held keys ([`keys`], sealed by `seal`, or KubeSphere's
//! `signKey` via `sign_key`), scopes and claims ([`claims`]), and the token-management endpoints'
//! logic (introspection, revocation, client credentials, userinfo: [`tokens`]; client-credentials
//! tokens that are not stored: `client_tokens`).
//!
//! Main design decision: OpenID Connect is a layer over the existing sessions, not a second
//! token system. A code exchange creates an ordinary session (bound to the client) with the
//! usual KubeSphere-compatible HS256 access and refresh tokens, so TokenReview, refresh rotation
//! with reuse detection, revocation and logout all work unchanged; what OpenID Connect adds
//! (scopes, `auth_time`, the browser session the user logged in with) is kept beside the session
//! as an [`OidcGrant`](portcullis_store::OidcGrant). Only ID tokens use the asymmetric keys.
//! The one exception: client-credentials tokens (no user, no refresh) have no session row; their
//! session id carries its own proof, and revoking one logs it like a session.

pub mod authorize;
pub mod claims;
pub(crate) mod client_tokens;
pub mod codes;
mod consent;
pub mod id_token;
pub(crate) mod jws;
pub mod keys;
mod seal;
mod sign_key;
pub mod tokens;
pub mod uris;

use portcullis_config::Config;
use url::Url;

use crate::error::{AuthError, CoreError};

pub use authorize::{AuthRequest, AuthorizeError, BrowserSession, Decision, Prompt, Untrusted};
pub use claims::Scopes;
pub use codes::{CodeExchange, OidcTokens};
pub use id_token::IdTokenHint;
pub use tokens::{CLIENT_SUBJECT_PREFIX, Introspection};

/// Lifetime of an authorization code.
pub const CODE_TTL_MS: i64 = 60_000;

/// Why an OpenID Connect request was refused, with its OAuth 2.0 / OpenID Connect error code.
/// Messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// `invalid_request`.
    #[error("{0}")]
    InvalidRequest(String),
    /// `invalid_client` (401).
    #[error("{0}")]
    InvalidClient(String),
    /// `invalid_grant`.
    #[error("{0}")]
    InvalidGrant(String),
    /// `unauthorized_client`.
    #[error("{0}")]
    UnauthorizedClient(String),
    /// `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    /// `invalid_token` (401, a Bearer token at userinfo).
    #[error("{0}")]
    InvalidToken(String),
    /// `insufficient_scope` (403).
    #[error("{0}")]
    InsufficientScope(String),
    /// `server_error`; details were logged.
    #[error("{0}")]
    Internal(String),
}

impl OidcError {
    /// The OAuth error code.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::InvalidRequest(_) => "invalid_request",
            OidcError::InvalidClient(_) => "invalid_client",
            OidcError::InvalidGrant(_) => "invalid_grant",
            OidcError::UnauthorizedClient(_) => "unauthorized_client",
            OidcError::InvalidScope(_) => "invalid_scope",
            OidcError::InvalidToken(_) => "invalid_token",
            OidcError::InsufficientScope(_) => "insufficient_scope",
            OidcError::Internal(_) => "server_error",
        }
    }
}

impl From<portcullis_store::StoreError> for OidcError {
    fn from(e: portcullis_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error in the OpenID Connect provider");
        OidcError::Internal("the server could not complete the request; try again later".into())
    }
}

impl From<CoreError> for OidcError {
    fn from(e: CoreError) -> Self {
        tracing::error!(error = %e, "internal error in the OpenID Connect provider");
        OidcError::Internal("the server could not complete the request; try again later".into())
    }
}

impl From<AuthError> for OidcError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidClient(m) => OidcError::InvalidClient(m),
            AuthError::InvalidGrant(m) => OidcError::InvalidGrant(m),
            AuthError::UnauthorizedClient(m) => OidcError::UnauthorizedClient(m),
            AuthError::InvalidRequest(m) => OidcError::InvalidRequest(m),
            AuthError::InvalidCredentials | AuthError::AccountDisabled => {
                OidcError::InvalidGrant(e.to_string())
            }
            other => OidcError::Internal(other.to_string()),
        }
    }
}

/// The provider's state inside the engine: its configuration and the signing keys.
pub(crate) struct Oidc {
    pub(crate) keys: keys::KeyManager,
    issuer: arc_swap::ArcSwap<String>,
}

/// The OpenID Connect issuer: `oauthOptions.issuer` when it is an http(s) URL, else `publicURL`
/// (KubeSphere's default issuer, the bare word `kubesphere`, cannot be an OpenID issuer).
pub fn issuer_of(config: &Config) -> String {
    let public = config
        .portcullis
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    match config
        .authentication
        .oauth_options
        .issuer
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(i) if Url::parse(i).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) => {
            i.trim_end_matches('/').to_owned()
        }
        Some(i) => {
            tracing::warn!(
                issuer = i,
                "oauthOptions.issuer is not an http(s) URL; the OpenID Connect issuer is publicURL"
            );
            public
        }
        None => public,
    }
}

impl Oidc {
    pub(crate) fn new(config: &Config) -> Result<Oidc, CoreError> {
        Ok(Oidc {
            keys: keys::KeyManager::new(config)?,
            issuer: arc_swap::ArcSwap::from_pointee(issuer_of(config)),
        })
    }

    pub(crate) fn apply_config(&self, config: &Config) -> Result<(), CoreError> {
        self.keys.apply_config(config)?;
        self.issuer.store(std::sync::Arc::new(issuer_of(config)));
        Ok(())
    }
}

impl crate::Engine {
    /// The OpenID Connect issuer in force.
    pub fn oidc_issuer(&self) -> String {
        self.oidc.issuer.load().as_ref().clone()
    }

    /// The JWKS document: every published ID-token verification key.
    pub async fn jwks(&self) -> Result<serde_json::Value, CoreError> {
        let ring = self
            .oidc
            .keys
            .ring(self.store.as_ref(), self.now_ms())
            .await?;
        Ok(ring.jwks())
    }

    /// Starts the signing-key and code maintenance job (key generation, rotation and expiry, and
    /// pruning of used codes); it stops when the handle is dropped.
    pub fn spawn_oidc_jobs(self: &std::sync::Arc<Self>) -> crate::BackgroundJobs {
        let engine = std::sync::Arc::clone(self);
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let now = engine.now_ms();
                if let Err(e) = engine.oidc.keys.ring(engine.store.as_ref(), now).await {
                    tracing::warn!(error = %e, "refreshing the ID-token signing keys failed; will retry");
                }
                if n.is_multiple_of(20) && engine.take_job_lease("oidc_prune", 900_000).await {
                    // Used codes are kept an hour past expiry so a late replay still revokes.
                    if let Err(e) = engine.store.prune_oidc(now - 3_600_000).await {
                        tracing::warn!(error = %e, "pruning OpenID Connect rows failed; will retry");
                    }
                }
                n = n.wrapping_add(1);
            }
        });
        crate::BackgroundJobs(vec![handle])
    }
}
