//! OpenID Connect RP-Initiated Logout 1.0 on top of `oauth::logout` (KubeSphere's endpoint):
//! parameters from the query or a POSTed form, a verified `id_token_hint` (a token this server
//! signed; expired is fine, forged, `alg: none` or HMAC-signed is refused), `client_id`, and a
//! `post_logout_redirect_uri` that must be registered for *that* client. Ends the session the ID
//! token belongs to and the browser session it came from.
//!
//! The browser's own session (the `portcullis_session` cookie, which `SameSite=Lax` sends on a
//! cross-site top-level GET) ends only when the request proves it comes from its user (§2, §6
//! of the spec: the OP asks when it cannot tell): a valid `id_token_hint` or Bearer token of the
//! same user, or the POST of the confirmation page with this browser's CSRF token. Otherwise the
//! user sees that page and nothing of theirs is ended.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use portcullis_core::TokenType;
use portcullis_core::oidc::IdTokenHint;
use url::Url;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{SESSION_COOKIE, clear_cookie, cookie, public_path};
use crate::request::{FormParams, require_form};
use crate::ui::View;
use crate::ui::csrf::csrf_ok;

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

/// Whether the request is the confirmation page's POST: a form carrying this browser's CSRF
/// token.
pub fn confirmed(headers: &HeaderMap, body: &Bytes) -> bool {
    !body.is_empty()
        && require_form(headers).is_ok()
        && FormParams::parse(body).is_ok_and(|form| csrf_ok(headers, &form))
}

/// What a logout request proves about who sent it.
pub struct Proof<'a> {
    /// `sub` of a verified `id_token_hint`.
    pub hint_user: Option<&'a str>,
    /// The user of a valid Bearer access token.
    pub bearer_user: Option<&'a str>,
    /// The confirmation page's POST (CSRF token checked).
    pub confirmed: bool,
}

/// What became of the browser's session cookie.
pub enum CookieSession {
    /// No cookie.
    None,
    /// The session was ended (or was already invalid): delete the cookie with this header.
    Ended(HeaderValue),
    /// A live session of this user that the request did not prove to be its own.
    Unproven(String),
}

/// Ends the browser's session when `proof` shows the request is its user's.
pub async fn cookie_session(
    state: &AppState,
    headers: &HeaderMap,
    proof: &Proof<'_>,
) -> Result<CookieSession, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(CookieSession::None);
    };
    let engine = state.engine();
    let public = state.config().portcullis.public_url.clone();
    let clear = || CookieSession::Ended(clear_cookie(SESSION_COOKIE, "/", &public));
    let Ok(claims) = engine.verify(&token, TokenType::AccessToken).await else {
        // Nothing live to end: just forget the cookie.
        return Ok(clear());
    };
    let user = claims.username.as_str();
    if proof.confirmed || proof.hint_user == Some(user) || proof.bearer_user == Some(user) {
        engine.revoke_session(&claims.sid).await?;
        return Ok(clear());
    }
    Ok(CookieSession::Unproven(claims.username))
}

/// The parameters the confirmation form sends back.
const KEPT: [&str; 3] = ["post_logout_redirect_uri", "state", "client_id"];

/// "Sign out?": a POST form back to `/oauth/logout` with the CSRF token and the request's
/// redirect parameters.
pub fn confirm_page(
    state: &AppState,
    view: &View,
    user: &str,
    client: Option<&str>,
    params: &HashMap<String, String>,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let kept: Vec<(&str, &str)> = KEPT
        .iter()
        .filter_map(|k| {
            let v = match *k {
                "client_id" => client?,
                _ => params.get(*k)?.as_str(),
            };
            (!v.is_empty()).then_some((*k, v))
        })
        .collect();
    let ctx = serde_json::json!({
        "user": user,
        "client": client,
        "params": kept,
        "action": public_path(&public, "/oauth/logout"),
        "stay": public_path(&public, "/account"),
    });
    state.ui().render(
        state,
        view,
        StatusCode::OK,
        "logout.html",
        "logout_title",
        ctx,
    )
}
