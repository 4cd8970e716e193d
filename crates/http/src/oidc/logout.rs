//! OpenID Connect RP-Initiated Logout 1.0 on top of `oauth::logout` (KubeSphere's endpoint):
//! parameters from the query or a POSTed form, a verified `id_token_hint` (a token this server
//! signed; expired is fine, forged, `alg: none` or HMAC-signed is refused), `client_id`, and a
//! `post_logout_redirect_uri` that must be registered for *that* client. Ends the session the ID
//! token belongs to, the browser session it came from, and the browser's session cookie.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use portcullis_core::oidc::IdTokenHint;
use url::Url;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{SESSION_COOKIE, clear_cookie, cookie};
use crate::request::require_form;

/// Adds the parameters of a form body (POST) that the query does not have.
pub fn merge_form(params: &mut HashMap<String, String>, headers: &HeaderMap, body: &Bytes) {
    if body.is_empty() || require_form(headers).is_err() {
        return;
    }
    for (k, v) in url::form_urlencoded::parse(body) {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
}

/// The verified `id_token_hint`, if one was sent.
pub async fn hint(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<Option<IdTokenHint>, ApiError> {
    let Some(token) = params.get("id_token_hint").filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(state.engine().verify_id_token_hint(token).await?))
}

/// The client the logout is for: the hint's audience, or `client_id` (they must agree).
pub fn client_of(
    hint: Option<&IdTokenHint>,
    params: &HashMap<String, String>,
) -> Result<Option<String>, ApiError> {
    let given = params.get("client_id").filter(|c| !c.is_empty());
    match (hint, given) {
        (Some(h), Some(c)) if &h.client_id != c => Err(ApiError::invalid_request(
            "client_id does not match the audience of id_token_hint",
        )),
        (Some(h), _) => Ok(Some(h.client_id.clone())),
        (None, c) => Ok(c.cloned()),
    }
}

/// `uri` if it exactly matches one of the client's `postLogoutRedirectURIs` (or, when it has
/// none, of its `redirectURIs`).
pub fn client_redirect(state: &AppState, client_id: &str, uri: &str) -> Result<Url, ApiError> {
    let settings = state.engine().settings();
    let client = settings
        .client(client_id)
        .ok_or_else(|| ApiError::invalid_request("client_id names no configured client"))?;
    let list = if client.post_logout_redirect_uris.is_empty() {
        &client.redirect_uris
    } else {
        &client.post_logout_redirect_uris
    };
    if list.iter().any(|r| !r.contains('*') && r == uri) {
        Url::parse(uri).map_err(|_| {
            ApiError::invalid_request("post_logout_redirect_uri is not an absolute URL")
        })
    } else {
        Err(ApiError::invalid_request(
            "post_logout_redirect_uri is not registered for this client",
        ))
    }
}

/// Revokes the browser's session (cookie) and the hint's sessions. Returns the `Set-Cookie`
/// that deletes the session cookie when the browser had one.
pub async fn end_sessions(
    state: &AppState,
    headers: &HeaderMap,
    hint: Option<&IdTokenHint>,
) -> Result<Option<HeaderValue>, ApiError> {
    let engine = state.engine();
    if let Some(h) = hint {
        engine.end_session_of(h).await?;
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    engine.logout(&token).await?;
    let public = state.config().portcullis.public_url.clone();
    Ok(Some(clear_cookie(SESSION_COOKIE, "/", &public)))
}
