//! The federated login endpoints: `GET /login/{provider}` (start, browser path) and
//! `GET /oauth/callback/{provider}` (both paths), plus the one mapping from
//! [`FederationError`] to statuses, HTML error pages and OAuth JSON errors.
//!
//! The callback chooses its path by the login-state cookie: with it, the browser path (state
//! checked against the cookie, a session cookie and a 303 on success); without it, the
//! ks-console path (token JSON, never a cookie or a redirect), which the engine allows only for
//! providers whose `redirectURL` is not this server's callback.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::federation::{Reason, points_at_callback};
use portcullis_core::{FederatedLogin, FederationError, IssuedTokens, Principal};
use url::Url;

use crate::AppState;
use crate::error::ApiError;
use crate::oauth::{request_context, token_response};
use crate::pages::{
    self, LINK_COOKIE, LOGIN_STATE_COOKIE, REGISTRATION_COOKIE, SESSION_COOKIE, clear_cookie,
    public_path, redirect, set_cookie,
};
use crate::ui::View;

/// Cookie paths (under the public URL's path).
pub(crate) const CALLBACK_PATH: &str = "/oauth/callback";
pub(crate) const CONFIRM_PATH: &str = "/login/confirm";

/// HTTP status of a federation error.
pub(crate) fn status_of(e: &FederationError) -> StatusCode {
    match e {
        FederationError::UnknownProvider(_) => StatusCode::NOT_FOUND,
        FederationError::ProviderUnavailable(_) | FederationError::AccountDisabled(_) => {
            StatusCode::FORBIDDEN
        }
        FederationError::InvalidRequest(_) | FederationError::InvalidInput(_) => {
            StatusCode::BAD_REQUEST
        }
        FederationError::Denied(_) => StatusCode::UNAUTHORIZED,
        FederationError::Conflict(_) => StatusCode::CONFLICT,
        FederationError::Upstream(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The OAuth JSON error of a federation error (the ks-console path).
fn json_error(e: &FederationError) -> ApiError {
    let code = match e {
        FederationError::UnknownProvider(_)
        | FederationError::InvalidRequest(_)
        | FederationError::InvalidInput(_)
        | FederationError::Conflict(_) => "invalid_request",
        FederationError::ProviderUnavailable(_)
        | FederationError::Denied(_)
        | FederationError::AccountDisabled(_) => "access_denied",
        FederationError::Upstream(_) => "temporarily_unavailable",
        _ => "server_error",
    };
    ApiError::OAuth {
        status: status_of(e),
        code,
        description: e.to_string(),
        retry_after: None,
        challenge: false,
    }
}

/// The catalog keys of an error page: what went wrong (headline) and what to do.
fn error_keys(e: &FederationError) -> (&'static str, &'static str) {
    match e {
        FederationError::UnknownProvider(_) => ("kind_unknown", "todo_retry"),
        FederationError::ProviderUnavailable(_) => ("kind_unavailable", "todo_provider"),
        FederationError::InvalidRequest(_) => ("kind_request", "todo_retry"),
        FederationError::Denied(_) => ("kind_denied", "todo_report"),
        FederationError::AccountDisabled(_) => ("kind_disabled", "todo_admin"),
        FederationError::InvalidInput(_) | FederationError::Conflict(_) => {
            ("kind_conflict", "todo_retry")
        }
        FederationError::Upstream(_) => ("kind_upstream", "todo_provider"),
        _ => ("kind_internal", "todo_report"),
    }
}

/// The error page of a failed browser login: what went wrong, what to do, and the request id,
/// which the log line written here carries too.
pub(crate) fn html_error(state: &AppState, view: &View, e: &FederationError) -> Response {
    let status = status_of(e);
    let (headline, todo) = error_keys(e);
    tracing::warn!(request_id = %view.request_id, status = status.as_u16(), error = %e, "browser login failed; error page shown");
    let public = state.config().portcullis.public_url.clone();
    let ctx = serde_json::json!({
        "headline": view.text(headline, &[]),
        "message": view.reason(e.reason()),
        "todo": view.text(todo, &[]),
        "back": public_path(&public, "/login"),
    });
    state
        .ui()
        .render(state, view, status, "error.html", "error_title", ctx)
}

/// The browser's landing after a successful login: the session cookie and a 303.
pub(crate) fn signed_in(tokens: &IssuedTokens, return_to: Option<&str>, public: &Url) -> Response {
    let target = return_to
        .map(str::to_owned)
        .unwrap_or_else(|| public_path(public, "/account"));
    let mut resp = redirect(StatusCode::SEE_OTHER, &target);
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &tokens.access_token,
            "/",
            tokens.expires_in,
            public,
        ),
    );
    resp
}

/// `GET /login/{provider}`: starts a browser login (`?return_to=` optional).
pub async fn start_login(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    view: View,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let return_to = query.get("return_to").map(String::as_str);
    match state
        .engine()
        .start_federated_login(&provider, return_to, &public)
        .await
    {
        Ok(start) => {
            let mut resp = redirect(StatusCode::FOUND, start.authorization_url.as_str());
            resp.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    LOGIN_STATE_COOKIE,
                    &start.state,
                    CALLBACK_PATH,
                    Some(start.max_age_s),
                    &public,
                ),
            );
            resp
        }
        Err(e) => html_error(&state, &view, &e),
    }
}

/// The callback's query as a map (of a repeated key the first value wins).
fn query_map(raw: Option<&str>) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    params
}

/// `GET /oauth/callback/{provider}`.
pub async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(provider): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let ctx = request_context(&state, peer, &headers);
    let params = query_map(raw.as_deref());
    let engine = state.engine();
    // The language switch of an error page here must not replay the callback: no query.
    let view = View::new(&state, None, &headers);
    if let Some(cookie_state) = pages::cookie(&headers, LOGIN_STATE_COOKIE) {
        if let Some(link) = pages::cookie(&headers, LINK_COOKIE)
            && portcullis_core::constant_time_eq(&link, &cookie_state)
        {
            return link_callback(
                &state,
                &view,
                &headers,
                &provider,
                &cookie_state,
                params,
                &ctx,
            )
            .await;
        }
        let result = engine
            .finish_browser_login(&provider, &cookie_state, params, &ctx)
            .await;
        let mut resp = match result {
            Ok((FederatedLogin::LoggedIn { tokens, .. }, return_to)) => {
                signed_in(&tokens, return_to.as_deref(), &public)
            }
            Ok((FederatedLogin::NeedsConfirmation(reg), _)) => {
                let mut resp = redirect(StatusCode::SEE_OTHER, &public_path(&public, CONFIRM_PATH));
                let age = (reg.expires_at - engine.now_ms()) / 1000;
                resp.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(
                        REGISTRATION_COOKIE,
                        &reg.id,
                        CONFIRM_PATH,
                        Some(age),
                        &public,
                    ),
                );
                resp
            }
            Ok(_) => html_error(
                &state,
                &view,
                &FederationError::internal("unexpected login outcome"),
            ),
            Err(e) => html_error(&state, &view, &e),
        };
        // The state is single-use whatever happened: the browser forgets it too.
        resp.headers_mut().append(
            header::SET_COOKIE,
            clear_cookie(LOGIN_STATE_COOKIE, CALLBACK_PATH, &public),
        );
        return resp;
    }
    let result = engine
        .finish_console_login(&provider, params, &public, "", &ctx)
        .await;
    match result {
        Ok(FederatedLogin::LoggedIn { tokens, .. }) | Ok(FederatedLogin::PreRegistered(tokens)) => {
            token_response(&tokens)
        }
        Ok(_) => json_error(&FederationError::internal("unexpected login outcome")).into_response(),
        Err(e) => {
            // A provider that returns browsers here gets pages: the caller is a browser that
            // lost (or never had) its login cookie, not ks-console.
            let browser = engine.providers().get(&provider).is_some_and(|p| {
                p.option_str("redirectURL")
                    .is_some_and(|r| points_at_callback(&r, &public, &provider))
            });
            if browser {
                html_error(&state, &view, &e)
            } else {
                let mut resp = json_error(&e).into_response();
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
        }
    }
}

/// The callback of a link started on the account page: the session cookie says who links.
async fn link_callback(
    state: &AppState,
    view: &View,
    headers: &HeaderMap,
    provider: &str,
    cookie_state: &str,
    params: BTreeMap<String, String>,
    ctx: &portcullis_core::RequestContext,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let engine = state.engine();
    let who = match session_user(state, headers).await {
        Some(p) => p.username,
        None => {
            let e = FederationError::InvalidRequest(Reason::LinkNeedsSession);
            return clear_link(html_error(state, view, &e), &public);
        }
    };
    let resp = match engine
        .finish_browser_link(provider, cookie_state, params, &who, ctx)
        .await
    {
        Ok(_) => redirect(
            StatusCode::SEE_OTHER,
            &format!("{}?done=linked", public_path(&public, "/account")),
        ),
        Err(e) => html_error(state, view, &e),
    };
    clear_link(resp, &public)
}

/// The user of the browser's session cookie, if it is still valid.
pub(crate) async fn session_user(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    let token = pages::cookie(headers, SESSION_COOKIE)?;
    state.engine().authenticate_bearer(&token).await.ok()
}

/// Forgets the login state and the link marker.
fn clear_link(mut resp: Response, public: &Url) -> Response {
    for (name, path) in [
        (LOGIN_STATE_COOKIE, CALLBACK_PATH),
        (LINK_COOKIE, CALLBACK_PATH),
    ] {
        resp.headers_mut()
            .append(header::SET_COOKIE, clear_cookie(name, path, public));
    }
    resp
}
