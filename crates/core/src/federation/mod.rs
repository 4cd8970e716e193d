//! Federated login: logging users in through external identity providers (GitHub, Aliyun IDaaS,
//! and any plugin), in the two shapes KubeSphere deployments need.
//!
//! * The **browser path** ([`start_federated_login`](crate::Engine::start_federated_login), then
//!   [`finish_browser_login`](crate::Engine::finish_browser_login)): a server-side login state
//!   (random id = OAuth `state` = cookie value, PKCE verifier, nonce, return address, 10 minutes,
//!   taken once) binds the callback to the browser that started it.
//! * The **ks-console path** ([`finish_console_login`](crate::Engine::finish_console_login)):
//!   ks-console's server calls the callback with `code` (or CAS `ticket`) and
//!   `state=<provider name>`, no cookie, and wants the token JSON. Allowed only for providers
//!   whose `redirectURL` is not Portcullis' own callback, so it can never be used to skip the
//!   browser path's state check.
//!
//! Both end in the same mapping ([`mapping`]): find the link, else apply `mappingMethod`
//! (`auto` creates the user and link in one transaction, never adopting an existing user;
//! `lookup` refuses; `manual` opens a pending registration confirmed on a page or, for the
//! console, through KubeSphere's `system:pre-registration` tokens, [`preregistration`]).
//!
//! Main design decision: core holds the *created* providers ([`ProviderSet`], swapped atomically
//! by the engine) but never names a concrete one; the binary builds the set from a
//! [`ProviderRegistry`](portcullis_idp::ProviderRegistry). Every failure is a
//! [`FederationError`] whose message is safe to show, plus a failed login record naming the
//! identity provider; upstream details go to the log.

mod account_link;
mod groups;
mod links;
mod login_state;
pub mod mapping;
pub mod preregistration;
mod provider_set;
mod provisioning;
mod reason;

use portcullis_idp::ProviderError;

pub use login_state::{LoginStart, check_return_to};
pub use mapping::FederatedLogin;
pub use preregistration::{ConfirmedRegistration, PRE_REGISTRATION_USER};
pub use provider_set::{ProviderEntry, ProviderSet, points_at_callback};
pub use provisioning::derive_user_name;
pub use reason::Reason;

/// How long a browser login may take at the identity provider.
pub const LOGIN_STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// How long a pending registration (`mappingMethod: manual`) stays confirmable.
pub const REGISTRATION_TTL_MS: i64 = 30 * 60 * 1000;

/// Login-record type of federated logins (KubeSphere's `Token`).
pub const LOGIN_TYPE: &str = "Token";

/// Why a federated login failed. Every message is safe to show to the person logging in (it
/// names no secret and no upstream internals); the HTTP layer picks the status from the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// No identity provider of that name is configured.
    #[error("{0}")]
    UnknownProvider(Reason),
    /// The provider is configured with `disabled: true`, or could not be created.
    #[error("{0}")]
    ProviderUnavailable(Reason),
    /// The request is wrong: state missing, mismatched, expired or replayed; no code; a path
    /// this provider does not allow. The caller's fault (HTTP 400).
    #[error("{0}")]
    InvalidRequest(Reason),
    /// The identity provider or the mapping refused the person: consent denied, a bad or reused
    /// code, no linked account under `lookup`.
    #[error("{0}")]
    Denied(Reason),
    /// The local account is disabled.
    #[error("{0}")]
    AccountDisabled(Reason),
    /// A registration input (user name, email) is invalid; the form can be corrected.
    #[error("{0}")]
    InvalidInput(Reason),
    /// A registration clashes with an existing user name or email, or was already completed.
    #[error("{0}")]
    Conflict(Reason),
    /// The identity provider is unreachable, timed out, or answered garbage (HTTP 502).
    #[error("{0}")]
    Upstream(Reason),
    /// Something on this server failed; details were logged.
    #[error("{0}")]
    Internal(Reason),
}

impl FederationError {
    /// What exactly failed.
    pub fn reason(&self) -> &Reason {
        match self {
            FederationError::UnknownProvider(r)
            | FederationError::ProviderUnavailable(r)
            | FederationError::InvalidRequest(r)
            | FederationError::Denied(r)
            | FederationError::AccountDisabled(r)
            | FederationError::InvalidInput(r)
            | FederationError::Conflict(r)
            | FederationError::Upstream(r)
            | FederationError::Internal(r) => r,
        }
    }

    /// A server-side failure with this (English, generic) message.
    pub fn internal(message: &str) -> Self {
        FederationError::Internal(Reason::Internal(message.to_owned()))
    }
}

const LOGIN_FAILED: &str = "the server could not complete the login; try again later";

impl From<portcullis_store::StoreError> for FederationError {
    fn from(e: portcullis_store::StoreError) -> Self {
        tracing::error!(error = %e, "store error during a federated login");
        FederationError::internal(LOGIN_FAILED)
    }
}

impl From<crate::CoreError> for FederationError {
    fn from(e: crate::CoreError) -> Self {
        tracing::error!(error = %e, "internal error during a federated login");
        FederationError::internal(LOGIN_FAILED)
    }
}

impl From<crate::AuthError> for FederationError {
    fn from(e: crate::AuthError) -> Self {
        FederationError::internal(&e.to_string())
    }
}

/// Turns a provider's error into a [`FederationError`] for the provider `name`, logging the
/// upstream details (which may quote upstream text) instead of showing them.
pub(crate) fn provider_failure(name: &str, e: &ProviderError) -> (FederationError, String) {
    let detail = e.to_string();
    let provider = name.to_owned();
    let err = match e {
        ProviderError::BadCredentials(m) => FederationError::Denied(Reason::ProviderRefused {
            provider,
            detail: m.clone(),
        }),
        ProviderError::Misconfigured(_) => {
            tracing::error!(provider = name, error = %detail, "identity provider refused Portcullis' configuration");
            FederationError::Upstream(Reason::ProviderRejectedConfig { provider })
        }
        _ => {
            tracing::warn!(provider = name, error = %detail, "identity provider failed");
            FederationError::Upstream(Reason::ProviderFailed { provider })
        }
    };
    (err, detail)
}
