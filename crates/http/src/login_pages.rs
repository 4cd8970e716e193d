//! The sign-in page (`GET|POST /login`, also served at `/oauth/login` where the authorization
//! endpoint sends browsers) and the confirm page of `mappingMethod: manual`
//! (`GET|POST /login/confirm`).
//!
//! Sign in: a user name or email and password form (CSRF-checked; the login goes through the
//! engine exactly like the password grant: lockout, login records, `multipleLogin`) and one
//! "Log In with ..." link per enabled, visible identity provider that can take the browser path,
//! in configuration order. Success sets the session cookie and returns the browser to
//! `return_to` (a place on this server only) or `/account`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use portcullis_core::federation::{Reason, check_return_to, points_at_callback};
use portcullis_core::{AuthError, FederatedLogin, FederationError, PasswordLogin};
use portcullis_store::PendingRegistration;
use serde_json::json;

use crate::AppState;
use crate::federated::{CONFIRM_PATH, html_error, signed_in, status_of};
use crate::oauth::request_context;
use crate::pages::{REGISTRATION_COOKIE, clear_cookie, cookie, public_path};
use crate::request::{FormParams, require_form};
use crate::ui::csrf::csrf_ok;
use crate::ui::{View, format_time};

/// Where the sign-in form posts.
pub const SIGN_IN_PATH: &str = "/login";

/// Notices another page may ask the sign-in page to show (`?notice=`).
const NOTICES: &[&str] = &["signed_out", "password_changed", "signed_out_everywhere"];

/// The "Log In with ..." links: enabled, visible providers that can take the browser path.
pub(crate) fn provider_links(state: &AppState, return_to: Option<&str>) -> Vec<serde_json::Value> {
    let public = state.config().portcullis.public_url.clone();
    let providers = state.engine().providers();
    let mut links = Vec::new();
    for entry in providers.entries() {
        let usable = !entry.config.disabled
            && !entry.config.hidden
            && entry
                .provider
                .as_ref()
                .is_ok_and(|p| p.as_oauth().is_some())
            && entry
                .option_str("redirectURL")
                .is_none_or(|r| points_at_callback(&r, &public, entry.name()));
        if !usable {
            continue;
        }
        let mut href = public_path(&public, &format!("/login/{}", entry.name()));
        if let Some(r) = return_to {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", r)
                .finish();
            href = format!("{href}?{q}");
        }
        links.push(json!({ "name": entry.name(), "label": entry.label(), "href": href }));
    }
    links
}

/// Renders the sign-in page.
fn sign_in(
    state: &AppState,
    view: &View,
    status: StatusCode,
    return_to: Option<&str>,
    login: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let ctx = json!({
        "action": public_path(&public, SIGN_IN_PATH),
        "return_to": return_to,
        "login": login,
        "error": error,
        "notice": notice,
        "providers": provider_links(state, return_to),
    });
    let resp = state
        .ui()
        .render(state, view, status, "login.html", "login_title", ctx);
    // Back to an authorization request: its client's redirect URI ends the form's redirects.
    match return_to.and_then(redirect_uri_of) {
        Some(uri) => crate::ui::allow_form_target(resp, &uri),
        None => resp,
    }
}

/// The `redirect_uri` of an authorization request URL (`return_to` of the OIDC login).
fn redirect_uri_of(return_to: &str) -> Option<String> {
    let query = return_to.split_once("/oauth/authorize?")?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
}

/// `GET /login` and `GET /oauth/login` (`?return_to=`, `?notice=`, `?lang=`).
pub async fn sign_in_page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    view: View,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let return_to = query
        .get("return_to")
        .and_then(|r| check_return_to(r, &public));
    let notice = query
        .get("notice")
        .filter(|n| NOTICES.contains(&n.as_str()))
        .map(|n| view.text(&format!("notice_{n}"), &[]));
    sign_in(
        &state,
        &view,
        StatusCode::OK,
        return_to.as_deref(),
        "",
        None,
        notice,
    )
}

/// The message of a refused password login, in the page's language.
fn login_error(state: &AppState, view: &View, e: &AuthError) -> (StatusCode, String) {
    match e {
        AuthError::Locked { retry_after_s } => {
            let until = state.engine().now_ms() + retry_after_s * 1000;
            let minutes = ((retry_after_s + 59) / 60).max(1).to_string();
            let text = view.text(
                "err_locked",
                &[("until", &format_time(until)), ("minutes", &minutes)],
            );
            (StatusCode::TOO_MANY_REQUESTS, text)
        }
        AuthError::AccountDisabled => (StatusCode::FORBIDDEN, view.text("err_disabled", &[])),
        AuthError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            view.text("err_internal", &[]),
        ),
        // The database could not be reached: not the user's credentials (a 401 here told users
        // their password was wrong while the server could not check it).
        AuthError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            view.text("err_internal", &[]),
        ),
        _ => (StatusCode::UNAUTHORIZED, view.text("err_credentials", &[])),
    }
}

/// `POST /login` and `POST /oauth/login`: the password login.
pub async fn sign_in_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let Ok(fields) = require_form(&headers).and_then(|()| FormParams::parse(&body)) else {
        let e = view.text("err_form", &[]);
        return sign_in(
            &state,
            &view,
            StatusCode::BAD_REQUEST,
            None,
            "",
            Some(e),
            None,
        );
    };
    let return_to = fields
        .get("return_to")
        .and_then(|r| check_return_to(r, &public));
    let login = fields.get("username").unwrap_or("");
    let show = |status: StatusCode, message: String| {
        sign_in(
            &state,
            &view,
            status,
            return_to.as_deref(),
            login,
            Some(message),
            None,
        )
    };
    if !csrf_ok(&headers, &fields) {
        return show(StatusCode::FORBIDDEN, view.text("err_csrf", &[]));
    }
    let password = fields.get("password").unwrap_or("");
    if login.trim().is_empty() || password.is_empty() {
        return show(StatusCode::BAD_REQUEST, view.text("err_missing", &[]));
    }
    let attempt = PasswordLogin {
        login,
        password,
        client_id: "",
        login_type: "Token",
    };
    let ctx = request_context(&state, peer, &headers);
    match state.engine().password_login(&attempt, &ctx).await {
        Ok(tokens) => signed_in(&tokens, return_to.as_deref(), &public),
        Err(e) => {
            let (status, message) = login_error(&state, &view, &e);
            show(status, message)
        }
    }
}

fn confirm_form(
    state: &AppState,
    view: &View,
    status: StatusCode,
    reg: &PendingRegistration,
    name: &str,
    email: &str,
    error: Option<String>,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let providers = state.engine().providers();
    let label = providers
        .get(&reg.provider)
        .map(|p| p.label().to_owned())
        .unwrap_or_else(|| reg.provider.clone());
    let upstream = reg
        .upstream_username
        .as_deref()
        .unwrap_or(&reg.upstream_uid);
    let ctx = json!({
        "action": public_path(&public, CONFIRM_PATH),
        "provider": label,
        "upstream": upstream,
        "registration_csrf": reg.csrf_token,
        "name": name,
        "email": email,
        "error": error,
    });
    state
        .ui()
        .render(state, view, status, "confirm.html", "confirm_title", ctx)
}

async fn registration(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<PendingRegistration, FederationError> {
    let expired = || FederationError::InvalidRequest(Reason::NoRegistration);
    let id = cookie(headers, REGISTRATION_COOKIE).ok_or_else(expired)?;
    state
        .engine()
        .pending_registration(&id)
        .await?
        .ok_or_else(expired)
}

/// `GET /login/confirm`: the registration form, prefilled with the upstream's name and email.
pub async fn confirm_page(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
) -> Response {
    match registration(&state, &headers).await {
        Ok(reg) => {
            let email = reg.proposed_email.clone().unwrap_or_default();
            let name = reg.proposed_name.clone();
            confirm_form(&state, &view, StatusCode::OK, &reg, &name, &email, None)
        }
        Err(e) => html_error(&state, &view, &e),
    }
}

/// `POST /login/confirm`: creates the account (name and email validated, the registration's
/// CSRF token checked by the engine) and signs the browser in; a correctable mistake (invalid
/// characters, a name or email taken) shows the form again with the input and the message.
pub async fn confirm_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let Ok(form) = require_form(&headers).and_then(|()| FormParams::parse(&body)) else {
        let e = FederationError::InvalidRequest(Reason::FormUnreadable);
        return html_error(&state, &view, &e);
    };
    let reg = match registration(&state, &headers).await {
        Ok(r) => r,
        Err(e) => return html_error(&state, &view, &e),
    };
    let name = form.get("name").unwrap_or("");
    let email = form.get("email").filter(|e| !e.trim().is_empty());
    let ctx = request_context(&state, peer, &headers);
    let result = state
        .engine()
        .confirm_registration(
            &reg.id,
            form.get("csrf_token").unwrap_or(""),
            name,
            email,
            &ctx,
        )
        .await;
    match result {
        Ok(done) => {
            let FederatedLogin::LoggedIn { tokens, .. } = &done.login else {
                let e = FederationError::internal("unexpected registration outcome");
                return html_error(&state, &view, &e);
            };
            let mut resp = signed_in(tokens, done.return_to.as_deref(), &public);
            resp.headers_mut().append(
                header::SET_COOKIE,
                clear_cookie(REGISTRATION_COOKIE, CONFIRM_PATH, &public),
            );
            resp
        }
        Err(e @ (FederationError::InvalidInput(_) | FederationError::Conflict(_))) => {
            let status = status_of(&e);
            let email = email.unwrap_or("");
            let message = view.reason(e.reason());
            confirm_form(&state, &view, status, &reg, name, email, Some(message))
        }
        Err(e) => html_error(&state, &view, &e),
    }
}
