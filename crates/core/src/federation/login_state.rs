//! The browser path: starting a login at an identity provider (a login-state row, PKCE, the
//! authorization URL) and checking the callback against it.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use portcullis_idp::{AuthorizationRequest, CallbackRequest, OAuthProvider, ProviderError};
use portcullis_store::LoginState;
use sha2::{Digest, Sha256};
use url::Url;

use super::mapping::{FederatedLogin, LoginPath};
use super::{FederationError, LOGIN_STATE_TTL_MS, ProviderEntry, Reason, points_at_callback};
use crate::engine::{Engine, RequestContext, random_id};

/// What the HTTP layer needs to send the browser to the identity provider.
#[derive(Clone)]
pub struct LoginStart {
    /// The state id: the OAuth `state` and the login-state cookie's value.
    pub state: String,
    /// Where to send the browser.
    pub authorization_url: Url,
    /// Lifetime of the state, in seconds (the cookie's `Max-Age`).
    pub max_age_s: i64,
}

/// A browser callback that passed the state checks (the login state is consumed).
pub(crate) struct CheckedCallback {
    pub entry: ProviderEntry,
    pub provider: Arc<dyn OAuthProvider>,
    pub callback: CallbackRequest,
    pub row: LoginState,
}

impl std::fmt::Debug for LoginStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginStart").finish_non_exhaustive()
    }
}

/// `return_to` if it is safe to redirect to after a login: a path on this host (`/...`, not
/// `//...` and without backslashes or control characters) or an absolute URL under `public_url`.
pub fn check_return_to(raw: &str, public_url: &Url) -> Option<String> {
    if raw.is_empty() || raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    if raw.starts_with('/') {
        return (!raw.starts_with("//")).then(|| raw.to_owned());
    }
    let url = Url::parse(raw).ok()?;
    let base = public_url.path().trim_end_matches('/');
    let under = url.path() == base || url.path().starts_with(&format!("{base}/"));
    (url.origin() == public_url.origin() && under && url.username().is_empty())
        .then(|| url.to_string())
}

fn pkce_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Engine {
    /// The usable OAuth provider `name`: configured, not `disabled`, created, redirect-based.
    pub(crate) fn usable_provider(
        &self,
        name: &str,
    ) -> Result<(ProviderEntry, Arc<dyn OAuthProvider>), FederationError> {
        let set = self.providers();
        let entry = set.get(name).ok_or_else(|| {
            FederationError::UnknownProvider(Reason::NoSuchProvider {
                provider: name.to_owned(),
            })
        })?;
        if entry.config.disabled {
            return Err(FederationError::ProviderUnavailable(
                Reason::ProviderDisabled {
                    provider: name.to_owned(),
                },
            ));
        }
        let provider = match &entry.provider {
            Ok(p) => p,
            Err(_) => {
                return Err(FederationError::ProviderUnavailable(
                    Reason::ProviderNotCreated {
                        provider: name.to_owned(),
                    },
                ));
            }
        };
        let oauth = provider.as_oauth().cloned().ok_or_else(|| {
            FederationError::InvalidRequest(Reason::PasswordProvider {
                provider: name.to_owned(),
            })
        })?;
        Ok((entry.clone(), oauth))
    }

    /// Starts a browser login at provider `name`: stores a login state (10 minutes, one use) with
    /// a PKCE verifier when the provider supports PKCE, and returns the authorization URL whose
    /// `state` is the state's id. `return_to` is kept only if [`check_return_to`] accepts it.
    ///
    /// Refused when the provider's `redirectURL` is set to anything but this server's own
    /// callback: the provider would then send the browser elsewhere with a state nobody checks.
    pub async fn start_federated_login(
        &self,
        name: &str,
        return_to: Option<&str>,
        public_url: &Url,
    ) -> Result<LoginStart, FederationError> {
        let (entry, provider) = self.usable_provider(name)?;
        if let Some(redirect) = entry.option_str("redirectURL")
            && !points_at_callback(&redirect, public_url, name)
        {
            return Err(FederationError::InvalidRequest(Reason::ConsoleOnly {
                provider: name.to_owned(),
                callback: format!(
                    "{}/oauth/callback/{name}",
                    public_url.as_str().trim_end_matches('/')
                ),
                redirect,
            }));
        }
        let now = self.now_ms();
        let id = random_id();
        let mut request = AuthorizationRequest::new(id.clone());
        let verifier = if provider.supports_pkce() {
            let (verifier, challenge) = pkce_pair();
            request = request.with_pkce_challenge(challenge);
            Some(verifier)
        } else {
            None
        };
        let nonce = random_id();
        request = request.with_nonce(nonce.clone());
        // An upstream failure here is a discovery that has not succeeded (502, retried on the
        // next login); anything else is this server's configuration of the provider.
        let unusable = |e: ProviderError| {
            tracing::error!(provider = name, error = %e, "building the authorization URL failed");
            let provider = name.to_owned();
            if e.is_upstream() {
                FederationError::Upstream(Reason::ProviderFailed { provider })
            } else {
                FederationError::ProviderUnavailable(Reason::ProviderMisconfigured { provider })
            }
        };
        provider.prepare().await.map_err(unusable)?;
        let authorization_url = provider.authorization_url(&request).map_err(unusable)?;
        let state = LoginState {
            id: id.clone(),
            provider: name.to_owned(),
            pkce_verifier: verifier,
            nonce: Some(nonce),
            return_to: return_to.and_then(|r| check_return_to(r, public_url)),
            created_at: now,
            expires_at: now + LOGIN_STATE_TTL_MS,
        };
        self.store.create_login_state(&state).await?;
        Ok(LoginStart {
            state: id,
            authorization_url,
            max_age_s: LOGIN_STATE_TTL_MS / 1000,
        })
    }

    /// Finishes a browser login: the callback's `state` must equal the login-state cookie
    /// (`cookie_state`, compared in constant time) and name a live, unused login state of this
    /// provider; then the provider exchanges the code and the identity is mapped. Returns the
    /// outcome and the checked `return_to`. Every failure is also a failed login record.
    pub async fn finish_browser_login(
        &self,
        name: &str,
        cookie_state: &str,
        params: BTreeMap<String, String>,
        ctx: &RequestContext,
    ) -> Result<(FederatedLogin, Option<String>), FederationError> {
        let checked = self
            .take_browser_state(name, cookie_state, params, ctx)
            .await?;
        let path = LoginPath::Browser {
            return_to: checked.row.return_to.clone(),
        };
        let outcome = self
            .exchange_and_map(
                &checked.entry,
                checked.provider.as_ref(),
                &checked.callback,
                path,
                ctx,
            )
            .await?;
        Ok((outcome, checked.row.return_to))
    }

    /// The checks of a browser callback shared by logins and account links: the provider is
    /// usable, `state` matches the cookie, and the login state is live, unused and this
    /// provider's (it is consumed). Failures are recorded.
    pub(crate) async fn take_browser_state(
        &self,
        name: &str,
        cookie_state: &str,
        params: BTreeMap<String, String>,
        ctx: &RequestContext,
    ) -> Result<CheckedCallback, FederationError> {
        let unknown = format!("{name}:unknown");
        let (entry, provider) = match self.usable_provider(name) {
            Ok(found) => found,
            Err(e) => return Err(self.federation_failure(name, &unknown, ctx, e, None).await),
        };
        let bad = FederationError::InvalidRequest;
        let state = match params.get("state").filter(|s| !s.is_empty()) {
            None => Some(bad(Reason::StateMissing)),
            Some(s) if !crate::constant_time_eq(s, cookie_state) => {
                Some(bad(Reason::StateMismatch))
            }
            Some(_) => None,
        };
        if let Some(e) = state {
            return Err(self.federation_failure(name, &unknown, ctx, e, None).await);
        }
        let now = self.now_ms();
        let row = match self.store.take_login_state(cookie_state).await {
            Ok(row) => row,
            Err(e) => {
                return Err(self
                    .federation_failure(name, &unknown, ctx, e.into(), None)
                    .await);
            }
        };
        let row = match row {
            None => Err(bad(Reason::StateUsed)),
            Some(r) if r.provider != name => Err(bad(Reason::StateOtherProvider)),
            Some(r) if r.expires_at <= now => Err(bad(Reason::StateExpired)),
            Some(r) => Ok(r),
        };
        let row = match row {
            Ok(r) => r,
            Err(e) => return Err(self.federation_failure(name, &unknown, ctx, e, None).await),
        };
        let mut callback = CallbackRequest::new(params);
        if let Some(v) = &row.pkce_verifier {
            callback = callback.with_pkce_verifier(v.clone());
        }
        if let Some(n) = &row.nonce {
            callback = callback.with_nonce(n.clone());
        }
        Ok(CheckedCallback {
            entry,
            provider,
            callback,
            row,
        })
    }

    /// Finishes a ks-console login (no login-state cookie): allowed only for a provider whose
    /// `redirectURL` is not this server's own callback, with `state` absent or equal to the
    /// provider's name (what ks-console sends), and a `code` or `ticket`.
    pub async fn finish_console_login(
        &self,
        name: &str,
        params: BTreeMap<String, String>,
        public_url: &Url,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<FederatedLogin, FederationError> {
        let unknown = format!("{name}:unknown");
        let (entry, provider) = match self.usable_provider(name) {
            Ok(found) => found,
            Err(e) => return Err(self.federation_failure(name, &unknown, ctx, e, None).await),
        };
        let param = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let refused = if entry
            .option_str("redirectURL")
            .is_some_and(|r| points_at_callback(&r, public_url, name))
        {
            Some(Reason::ConsoleOwnCallback {
                provider: name.to_owned(),
            })
        } else if param("state").is_some_and(|s| s != name) {
            Some(Reason::ConsoleForeignState {
                provider: name.to_owned(),
            })
        } else if param("code").is_none() && param("ticket").is_none() && param("error").is_none() {
            Some(Reason::NoCode)
        } else {
            None
        };
        if let Some(m) = refused {
            let e = FederationError::InvalidRequest(m);
            return Err(self.federation_failure(name, &unknown, ctx, e, None).await);
        }
        let callback = CallbackRequest::new(params);
        let path = LoginPath::Console { client_id };
        self.exchange_and_map(&entry, provider.as_ref(), &callback, path, ctx)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_must_stay_here() {
        let public = Url::parse("https://ks.example.com/auth").unwrap();
        let ok = |s: &str| check_return_to(s, &public);
        assert_eq!(ok("/account?x=1").as_deref(), Some("/account?x=1"));
        assert_eq!(
            ok("https://ks.example.com/auth/x").as_deref(),
            Some("https://ks.example.com/auth/x")
        );
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/auth/x",
            "https://ks.example.com/other",
            "https://u@ks.example.com/auth/x",
            "javascript:alert(1)",
            "account",
            "/a\nb",
            "",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
        let (v, c) = pkce_pair();
        assert_eq!(v.len(), 43);
        assert_ne!(v, c);
    }
}
