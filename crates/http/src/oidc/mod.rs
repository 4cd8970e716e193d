//! The OpenID Connect provider's endpoints: discovery and JWKS ([`discovery`]), the
//! authorization endpoint with its consent page ([`authorize`]), a minimal password login page
//! for it ([`login`]), the code and client-credentials grants ([`token`], dispatched from
//! `oauth::token`), userinfo, introspection and revocation ([`endpoints`]), and the
//! RP-initiated-logout additions to `oauth::logout` ([`logout`]).
//!
//! Design decision: like every handler here these are thin; the protocol decisions are in
//! `portcullis_core::oidc`. This module owns only the mapping of [`OidcError`] to OAuth JSON
//! errors, client authentication from a request, and the pages.

pub mod authorize;
pub mod discovery;
pub mod endpoints;
pub mod login;
pub mod logout;
pub mod token;

use std::collections::BTreeMap;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use portcullis_config::OAuthClient;
use portcullis_core::OidcError;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{FormParams, basic_credentials};

pub use crate::ui::csrf::CSRF_COOKIE;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route(
            "/oauth/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/oauth/keys", get(discovery::keys))
        .route(
            "/oauth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/oauth/authorize/consent", post(authorize::consent))
        .route(
            login::LOGIN_PATH,
            get(crate::login_pages::sign_in_page).post(crate::login_pages::sign_in_submit),
        )
        .route(
            "/oauth/userinfo",
            get(endpoints::userinfo).post(endpoints::userinfo),
        )
        .route("/oauth/introspect", post(endpoints::introspect))
        .route("/oauth/revoke", post(endpoints::revoke))
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        let (status, challenge) = match &e {
            OidcError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, true),
            OidcError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, false),
            OidcError::InsufficientScope(_) => (StatusCode::FORBIDDEN, false),
            OidcError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, false),
            _ => (StatusCode::BAD_REQUEST, false),
        };
        ApiError::OAuth {
            status,
            code: e.code(),
            description: e.to_string(),
            retry_after: None,
            challenge,
        }
    }
}

/// The client credentials of a request: `Authorization: Basic` or `client_id`/`client_secret`
/// in the form, not both (RFC 6749 §2.3.1). A public client sends only `client_id`.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let basic = basic_credentials(headers)?;
    match (basic, form.get("client_id"), form.get("client_secret")) {
        (Some(_), _, Some(_)) => Err(ApiError::invalid_request(
            "use one client authentication method, not both",
        )),
        (Some((id, secret)), form_id, None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(ApiError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok((Some(id), Some(secret)))
        }
        (None, id, secret) => Ok((id.map(str::to_owned), secret.map(str::to_owned))),
    }
}

/// The authenticated client of a request; unlike the KubeSphere 3.1 password grant, the OpenID
/// Connect endpoints always need a configured client.
pub(crate) fn require_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<OAuthClient, ApiError> {
    let (id, secret) = client_credentials(headers, form)?;
    state
        .engine()
        .authenticate_client(id.as_deref(), secret.as_deref())?
        .ok_or_else(|| OidcError::InvalidClient("client authentication is required".into()).into())
}

/// Parses a query string or form body into a map, refusing a parameter sent twice (the error
/// is that parameter's name).
pub fn parse_params(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(k.into_owned());
        }
    }
    Ok(map)
}
