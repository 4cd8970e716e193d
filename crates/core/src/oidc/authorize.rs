//! The authorization endpoint's logic (RFC 6749 §4.1, OpenID Connect Core §3.1.2): checking an
//! authorization request, then deciding what the browser gets: the login page, the consent page,
//! or a redirect back to the client with a code or an error.
//!
//! Until the client and its redirect URI are established, every problem is an error *page*
//! ([`AuthorizeError::Page`]): redirecting to an unverified URI would be an open redirect. After
//! that, problems go back to the client ([`AuthorizeError::Redirect`]) with `state` and `iss`.

use std::collections::BTreeMap;

use portcullis_config::{GrantMethod, OAuthClient};
use portcullis_store::{Session, User, UserState};

use super::claims::Scopes;
use super::codes::pkce_shape_ok;
use super::uris::{error_redirect, redirect_allowed, with_query};
use crate::engine::Engine;

/// The internal parameter that carries "the login must be newer than this" (Unix ms) from a
/// `prompt=login` request through the login page and back.
pub const AUTH_AFTER_PARAM: &str = "portcullis_auth_after";

/// The `prompt` values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown.
    pub none: bool,
    /// `login`: authenticate again, whatever the current session.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client: OAuthClient,
    /// Where the answer goes (checked against the client's registration).
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri`.
    pub redirect_uri_given: bool,
    /// `state`, returned unchanged.
    pub state: Option<String>,
    /// The scopes that will be granted (requested and supported).
    pub scopes: Scopes,
    /// `nonce`, copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age_s: Option<i64>,
    /// The login must be newer than this (after `prompt=login`).
    pub auth_after_ms: Option<i64>,
    /// The request's parameters, to rebuild the request after the login page.
    pub params: BTreeMap<String, String>,
}

/// Why an authorization request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown to the user as a page: the client or redirect URI cannot be trusted.
    Page(Untrusted),
    /// Sent back to the client's redirect URI.
    Redirect {
        /// The client's checked redirect URI.
        redirect_uri: String,
        /// `state` of the request.
        state: Option<String>,
        /// The OAuth error code.
        error: &'static str,
        /// `error_description`.
        description: String,
    },
}

/// Why an authorization request cannot be answered with a redirect (the page says it in the
/// browser's language; `Display` is the English of logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// No `client_id`.
    NoClientId,
    /// The `client_id` names no configured client.
    UnknownClient,
    /// The `redirect_uri` is not one of the client's.
    RedirectUriNotRegistered,
    /// No `redirect_uri`, and the client has no single one to default to.
    NoRedirectUri,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoClientId => "The request has no client_id.",
            Self::UnknownClient => "The client_id is unknown: no such client is configured.",
            Self::RedirectUriNotRegistered => "The redirect_uri is not registered for this client.",
            Self::NoRedirectUri => "The request has no redirect_uri.",
        })
    }
}

/// A browser's logged-in session (from the session cookie).
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The user, active.
    pub user: User,
    /// The session; `created_at` is when the user authenticated.
    pub session: Session,
}

/// What the browser gets.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Log in, then come back to the authorization endpoint with these parameters.
    Login {
        /// Parameters of the authorization request to resume.
        resume: BTreeMap<String, String>,
    },
    /// Show the consent page.
    Consent,
    /// Redirect to this URL (the client's redirect URI with a code or an error).
    Redirect(String),
}

impl Engine {
    /// Checks an authorization request (query or form parameters; duplicates already refused).
    pub fn check_authorization_request(
        &self,
        params: BTreeMap<String, String>,
    ) -> Result<AuthRequest, AuthorizeError> {
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let page = AuthorizeError::Page;
        let client_id = get("client_id").ok_or(page(Untrusted::NoClientId))?;
        let settings = self.settings();
        let client = settings
            .client(client_id)
            .cloned()
            .ok_or(page(Untrusted::UnknownClient))?;
        let scope_text = get("scope").unwrap_or("");
        let requested = Scopes::parse(scope_text);
        let (redirect_uri, given) = match get("redirect_uri") {
            Some(uri) if redirect_allowed(&client, uri) => (uri.to_owned(), true),
            Some(_) => return Err(page(Untrusted::RedirectUriNotRegistered)),
            None => {
                let fixed: Vec<&String> = client
                    .redirect_uris
                    .iter()
                    .filter(|u| !u.contains('*'))
                    .collect();
                match fixed.as_slice() {
                    [only] if !requested.has("openid") => ((*only).clone(), false),
                    _ => return Err(page(Untrusted::NoRedirectUri)),
                }
            }
        };
        let state = get("state").map(str::to_owned);
        let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description: description.to_owned(),
        };
        if get("request").is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported",
            ));
        }
        if get("request_uri").is_some() {
            return Err(fail(
                "request_uri_not_supported",
                "request_uri is not supported",
            ));
        }
        match get("response_type") {
            None => return Err(fail("invalid_request", "response_type is missing")),
            Some("code") => {}
            Some(_) => {
                return Err(fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if get("response_mode").is_some_and(|m| m != "query") {
            return Err(fail(
                "invalid_request",
                "only response_mode=query is supported",
            ));
        }
        if client.grant_method == GrantMethod::Deny {
            return Err(fail(
                "access_denied",
                "this client may not obtain authorizations",
            ));
        }
        if !client.scope_restrictions.is_empty()
            && let Some(s) = requested
                .iter()
                .find(|s| !client.scope_restrictions.iter().any(|r| r == s))
        {
            return Err(fail(
                "invalid_scope",
                &format!("scope {s:?} is not allowed for this client"),
            ));
        }
        let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
            (None, None) => None,
            (Some(c), Some("S256")) if pkce_shape_ok(c) => Some(c.to_owned()),
            (Some(_), Some("S256")) => {
                return Err(fail("invalid_request", "code_challenge is malformed"));
            }
            (None, Some(_)) => return Err(fail("invalid_request", "code_challenge is missing")),
            (Some(_), _) => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method must be S256 (plain is not supported)",
                ));
            }
        };
        if code_challenge.is_none() && client.secret.is_none() {
            return Err(fail(
                "invalid_request",
                "a public client must use PKCE: send code_challenge with code_challenge_method=S256",
            ));
        }
        let mut prompt = Prompt::default();
        for p in get("prompt")
            .unwrap_or("")
            .split(' ')
            .filter(|p| !p.is_empty())
        {
            match p {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => {} // one account per browser: nothing to select
                _ => return Err(fail("invalid_request", "unknown prompt value")),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
        let number = |k: &str| -> Result<Option<i64>, AuthorizeError> {
            get(k)
                .map(|v| {
                    v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        fail(
                            "invalid_request",
                            &format!("{k} must be a non-negative integer"),
                        )
                    })
                })
                .transpose()
        };
        let max_age_s = number("max_age")?;
        let auth_after_ms = number(AUTH_AFTER_PARAM)?;
        let nonce = get("nonce").map(str::to_owned);
        if nonce.as_ref().is_some_and(|n| n.len() > 512)
            || state.as_ref().is_some_and(|s| s.len() > 2048)
        {
            return Err(fail("invalid_request", "nonce or state is too long"));
        }
        Ok(AuthRequest {
            scopes: requested.supported(),
            client,
            redirect_uri,
            redirect_uri_given: given,
            state,
            nonce,
            code_challenge,
            prompt,
            max_age_s,
            auth_after_ms,
            params,
        })
    }

    /// The browser session behind a session cookie's access token: valid, with an active user.
    pub async fn browser_session(&self, token: &str) -> Option<BrowserSession> {
        let principal = self.authenticate_bearer(token).await.ok()?;
        let session = self.store.get_session(&principal.session_id).await.ok()??;
        if session.revoked_at.is_some() {
            return None;
        }
        let user = self.store.get_user(&session.user).await.ok()??;
        (user.state != UserState::Disabled).then_some(BrowserSession { user, session })
    }

    /// Decides what the browser gets for a checked request. `consented` is true when the user
    /// just allowed the request on the consent page.
    pub async fn authorize(
        &self,
        req: &AuthRequest,
        browser: Option<&BrowserSession>,
        consented: bool,
    ) -> Result<Decision, AuthorizeError> {
        let now = self.now_ms();
        let login_needed = match browser {
            None => true,
            Some(b) => {
                let auth = b.session.created_at;
                req.prompt.login
                    || req
                        .max_age_s
                        .is_some_and(|m| now - auth > m.saturating_mul(1000))
                    || req.auth_after_ms.is_some_and(|t| auth < t)
            }
        };
        let redirect = |error: &'static str, description: &str| {
            Decision::Redirect(self.error_location(req, error, description))
        };
        let Some(browser) = browser.filter(|_| !login_needed) else {
            if req.prompt.none {
                return Ok(redirect("login_required", "the user must log in"));
            }
            let mut resume = req.params.clone();
            if req.prompt.login {
                let rest: Vec<&str> = resume
                    .get("prompt")
                    .map(|p| p.split(' ').filter(|v| *v != "login").collect())
                    .unwrap_or_default();
                resume.insert("prompt".into(), rest.join(" "));
                resume.insert(AUTH_AFTER_PARAM.into(), now.to_string());
            }
            resume.retain(|_, v| !v.is_empty());
            return Ok(Decision::Login { resume });
        };
        if !consented
            && self
                .needs_consent(req, &browser.user.name)
                .await
                .map_err(|e| internal(req, e))?
        {
            if req.prompt.none {
                return Ok(redirect("consent_required", "the user must consent"));
            }
            return Ok(Decision::Consent);
        }
        let code = self
            .issue_code(req, browser)
            .await
            .map_err(|e| internal(req, e))?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &req.state {
            pairs.push(("state", s));
        }
        let iss = self.oidc_issuer();
        pairs.push(("iss", &iss));
        Ok(Decision::Redirect(with_query(&req.redirect_uri, &pairs)))
    }

    /// The client's redirect URI carrying an error, `state` and `iss` (RFC 9207).
    pub fn error_location(&self, req: &AuthRequest, error: &str, description: &str) -> String {
        error_redirect(
            &req.redirect_uri,
            req.state.as_deref(),
            error,
            description,
            &self.oidc_issuer(),
        )
    }
}

fn internal(req: &AuthRequest, e: impl std::fmt::Display) -> AuthorizeError {
    tracing::error!(error = %e, "authorization failed on the server side");
    AuthorizeError::Redirect {
        redirect_uri: req.redirect_uri.clone(),
        state: req.state.clone(),
        error: "server_error",
        description: "the server could not complete the request".into(),
    }
}
