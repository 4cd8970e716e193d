//! The provider traits: [`OAuthProvider`] (redirect-based login) and [`PasswordProvider`] (user name and password),
//! the requests the server hands them, and [`Provider`], which holds either.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::error::excerpt;
use crate::{Identity, ProviderError};

/// What the server gives an [`OAuthProvider`] to build the URL the browser is sent to.
///
/// The server generates every value and binds it to the browser (a cookie); the provider only places them in the
/// URL. Build one with [`AuthorizationRequest::new`] and the `with_*` methods.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The OAuth 2.0 `state` parameter ([RFC 6749 §10.12](https://www.rfc-editor.org/rfc/rfc6749#section-10.12)),
    /// returned unchanged on the callback.
    pub state: String,
    /// A PKCE `S256` code challenge ([RFC 7636 §4.2](https://www.rfc-editor.org/rfc/rfc7636#section-4.2)): the
    /// base64url SHA-256 of the verifier. Set only when the provider [supports PKCE](OAuthProvider::supports_pkce);
    /// providers that do not support it ignore it.
    pub pkce_challenge: Option<String>,
    /// An OpenID Connect `nonce`; ignored by providers that are not OpenID Connect.
    pub nonce: Option<String>,
}

impl AuthorizationRequest {
    /// A request with the given `state` and no PKCE challenge or nonce.
    pub fn new(state: impl Into<String>) -> Self {
        AuthorizationRequest {
            state: state.into(),
            pkce_challenge: None,
            nonce: None,
        }
    }

    /// Sets the PKCE `S256` code challenge.
    pub fn with_pkce_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.pkce_challenge = Some(challenge.into());
        self
    }

    /// Sets the OpenID Connect nonce.
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }
}

/// What the server gives an [`OAuthProvider`] when the browser (or ks-console's server) comes back.
///
/// `params` is the callback's whole query: `code`, `state`, `error`, `error_description`, CAS's `ticket`, and
/// anything else. The server has already checked `state` where it could; providers need not.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CallbackRequest {
    /// The callback's query parameters.
    pub params: BTreeMap<String, String>,
    /// The PKCE verifier matching the challenge that was put in the authorization URL, if any.
    pub pkce_verifier: Option<String>,
    /// The OpenID Connect nonce that was put in the authorization URL, if any.
    pub nonce: Option<String>,
}

impl CallbackRequest {
    /// A callback with the given query parameters.
    pub fn new(params: BTreeMap<String, String>) -> Self {
        CallbackRequest {
            params,
            pkce_verifier: None,
            nonce: None,
        }
    }

    /// A callback from a raw, still percent-encoded query string (without the `?`). Of a repeated key the first
    /// value wins.
    pub fn from_query(query: &str) -> Self {
        let mut params = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            params
                .entry(k.into_owned())
                .or_insert_with(|| v.into_owned());
        }
        CallbackRequest::new(params)
    }

    /// Sets the PKCE verifier.
    pub fn with_pkce_verifier(mut self, verifier: impl Into<String>) -> Self {
        self.pkce_verifier = Some(verifier.into());
        self
    }

    /// Sets the nonce.
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// One query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Turns an `error=` callback ([RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1))
    /// into a [`ProviderError`]; `Ok(())` when there is none.
    ///
    /// `access_denied` (the user refused consent) and unknown codes are
    /// [`BadCredentials`](ProviderError::BadCredentials); `invalid_scope`, `unauthorized_client`,
    /// `invalid_client`, `unsupported_response_type`, `redirect_uri_mismatch` and `application_suspended`
    /// (GitHub) are [`Misconfigured`](ProviderError::Misconfigured); `server_error` and `temporarily_unavailable`
    /// are [`Upstream`](ProviderError::Upstream). The upstream's `error_description` is quoted, shortened.
    pub fn check_error(&self) -> Result<(), ProviderError> {
        let Some(code) = self.param("error") else {
            return Ok(());
        };
        let code = excerpt(code, 64);
        let detail = match self.param("error_description") {
            Some(d) if !d.trim().is_empty() => format!("{code}: {}", excerpt(d, 200)),
            _ => code.clone(),
        };
        Err(match code.as_str() {
            "access_denied" => ProviderError::bad_credentials(format!(
                "the user denied access at the identity provider ({detail})"
            )),
            "invalid_scope"
            | "unauthorized_client"
            | "invalid_client"
            | "unsupported_response_type"
            | "redirect_uri_mismatch"
            | "application_suspended" => ProviderError::misconfigured(format!(
                "the identity provider refused the authorization request ({detail})"
            )),
            "server_error" | "temporarily_unavailable" => ProviderError::upstream(format!(
                "the identity provider failed the authorization request ({detail})"
            )),
            _ => ProviderError::bad_credentials(format!(
                "the identity provider returned an error to the callback ({detail})"
            )),
        })
    }

    /// The authorization `code`, after [`check_error`](Self::check_error). A callback with neither `error` nor
    /// a non-empty `code` is [`BadCredentials`](ProviderError::BadCredentials).
    pub fn code(&self) -> Result<&str, ProviderError> {
        self.check_error()?;
        match self.param("code") {
            Some(code) if !code.is_empty() => Ok(code),
            _ => Err(ProviderError::bad_credentials(
                "the callback has no authorization code",
            )),
        }
    }
}

impl fmt::Debug for CallbackRequest {
    // Codes and verifiers are short-lived credentials: print parameter names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackRequest")
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .field("pkce_verifier", &self.pkce_verifier.as_ref().map(|_| "***"))
            .field("nonce", &self.nonce.is_some())
            .finish()
    }
}

/// A redirect-based identity provider: OAuth 2.0, OpenID Connect, CAS.
///
/// The Rust form of KubeSphere's `OAuthProvider` (spec §4.1), with the authorization URL built by the provider from
/// a server-chosen state (and PKCE challenge) instead of by the console. Implementations are created by an
/// [`OAuthProviderFactory`](crate::OAuthProviderFactory), shared as `Arc<dyn OAuthProvider>` and called
/// concurrently.
#[async_trait]
pub trait OAuthProvider: Send + Sync {
    /// The URL to send the browser to. Must include `req.state`, and `req.pkce_challenge` (as `code_challenge`
    /// with `code_challenge_method=S256`) when the provider [supports PKCE](Self::supports_pkce). No network I/O.
    fn authorization_url(&self, req: &AuthorizationRequest) -> Result<Url, ProviderError>;

    /// Gets the provider ready to build an authorization URL: the network I/O the URL depends
    /// on, such as OpenID Connect discovery, bounded by the upstream timeout. The server calls it
    /// before every [`authorization_url`](Self::authorization_url); a failure is classified as
    /// [`ProviderError`] documents (an unreachable upstream is [`ProviderError::Upstream`]). The
    /// default does nothing.
    async fn prepare(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether the server should generate a PKCE pair for this provider and pass the verifier to
    /// [`exchange`](Self::exchange).
    fn supports_pkce(&self) -> bool;

    /// Exchanges the callback (its `code` or `ticket`) for the user's identity at the upstream.
    ///
    /// Must turn an `error=` parameter into an error (see [`CallbackRequest::check_error`], which
    /// [`CallbackRequest::code`] calls), never return an identity without a user id, and classify failures as
    /// [`ProviderError`] documents.
    async fn exchange(&self, callback: &CallbackRequest) -> Result<Identity, ProviderError>;

    /// The options `/kapis/config.kubesphere.io/v1alpha2/configs/oauth` may publish for this provider (spec §3.8):
    /// the configured options minus secrets, with defaulted endpoints filled in. See
    /// [`ProviderOptions::public_map`](crate::ProviderOptions::public_map).
    fn public_options(&self) -> Map<String, Value>;
}

/// A user-name-and-password identity provider (LDAP): KubeSphere's "generic provider" (spec §4.1).
#[async_trait]
pub trait PasswordProvider: Send + Sync {
    /// Checks the password and returns the identity.
    ///
    /// A wrong password or an unknown user is [`ProviderError::BadCredentials`] (the server then tries the next
    /// source); any other error aborts the login.
    async fn authenticate(&self, username: &str, password: &str)
    -> Result<Identity, ProviderError>;

    /// The options that may be published for this provider, secrets removed; see
    /// [`OAuthProvider::public_options`].
    fn public_options(&self) -> Map<String, Value>;
}

/// A created provider instance: either kind, shared.
#[non_exhaustive]
#[derive(Clone)]
pub enum Provider {
    /// A redirect-based provider.
    OAuth(Arc<dyn OAuthProvider>),
    /// A user-name-and-password provider.
    Password(Arc<dyn PasswordProvider>),
}

impl Provider {
    /// The OAuth provider, if this is one.
    pub fn as_oauth(&self) -> Option<&Arc<dyn OAuthProvider>> {
        match self {
            Provider::OAuth(p) => Some(p),
            Provider::Password(_) => None,
        }
    }

    /// The password provider, if this is one.
    pub fn as_password(&self) -> Option<&Arc<dyn PasswordProvider>> {
        match self {
            Provider::Password(p) => Some(p),
            Provider::OAuth(_) => None,
        }
    }

    /// The publishable options of either kind.
    pub fn public_options(&self) -> Map<String, Value> {
        match self {
            Provider::OAuth(p) => p.public_options(),
            Provider::Password(p) => p.public_options(),
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::OAuth(_) => f.write_str("Provider::OAuth(..)"),
            Provider::Password(_) => f.write_str("Provider::Password(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_errors_are_classified() {
        let denied = CallbackRequest::from_query(
            "error=access_denied&error_description=The+user+has+denied",
        );
        let e = denied.code().unwrap_err();
        assert!(e.is_bad_credentials(), "{e}");
        assert!(e.to_string().contains("denied access"), "{e}");
        assert!(e.to_string().contains("The user has denied"), "{e}");

        let mismatch = CallbackRequest::from_query("error=redirect_uri_mismatch&state=x");
        assert!(mismatch.check_error().unwrap_err().is_misconfigured());
        let broken = CallbackRequest::from_query("error=temporarily_unavailable");
        assert!(broken.check_error().unwrap_err().is_upstream());
    }

    #[test]
    fn callback_code() {
        let cb =
            CallbackRequest::from_query("code=abc&state=s&code=second").with_pkce_verifier("v");
        assert_eq!(cb.code().unwrap(), "abc");
        assert_eq!(cb.param("state"), Some("s"));
        assert!(!format!("{cb:?}").contains("abc"));
        assert!(
            CallbackRequest::from_query("state=s")
                .code()
                .unwrap_err()
                .is_bad_credentials()
        );
    }
}
