//! `GET|POST /oauth/login`: the plain password form the authorization endpoint sends browsers to.
//!
//! A successful login creates an ordinary session (lockout, login records and `multipleLogin`
//! apply, exactly as for the password grant), sets the `portcullis_session` cookie and returns
//! the browser to `return_to` (only a place on this server). The form carries a CSRF token that
//! must match the `portcullis_csrf` cookie (double submit); the cookies are `SameSite=Lax`, so a
//! cross-site form cannot log a victim in. The page also links to the identity-provider logins
//! of `/login` with the same `return_to`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::federation::check_return_to;
use portcullis_core::{AuthError, PasswordLogin};

use super::{csrf_ok, csrf_token, with_cookie};
use crate::AppState;
use crate::federated::signed_in;
use crate::oauth::request_context;
use crate::pages::{escape, page, public_path};
use crate::request::{FormParams, require_form};

/// Where the form lives.
pub const LOGIN_PATH: &str = "/oauth/login";

fn form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: Option<&str>,
    login: &str,
    error: Option<&str>,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let (csrf, set) = csrf_token(state, headers);
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let back = return_to
        .map(|r| {
            format!(
                "<input type=\"hidden\" name=\"return_to\" value=\"{}\">\n",
                escape(r)
            )
        })
        .unwrap_or_default();
    let mut others = public_path(&public, "/login");
    if let Some(r) = return_to {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", r)
            .finish();
        others = format!("{others}?{q}");
    }
    let body = format!(
        "{error}<form method=\"post\" action=\"{}\">\n{back}\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n\
         <p><label>User name or email <input name=\"username\" value=\"{}\" required autocomplete=\"username\"></label></p>\n\
         <p><label>Password <input name=\"password\" type=\"password\" required autocomplete=\"current-password\"></label></p>\n\
         <p><button type=\"submit\">Log in</button></p>\n</form>\n\
         <p><a href=\"{}\">Log in with an identity provider</a></p>",
        escape(&public_path(&public, LOGIN_PATH)),
        escape(&csrf),
        escape(login),
        escape(&others),
    );
    with_cookie(page(status, "Log in", &body), set)
}

/// `GET /oauth/login?return_to=...`.
pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let return_to = query
        .get("return_to")
        .and_then(|r| check_return_to(r, &public));
    form(
        &state,
        &headers,
        StatusCode::OK,
        return_to.as_deref(),
        "",
        None,
    )
}

/// `POST /oauth/login`.
pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let Ok(fields) = require_form(&headers).and_then(|()| FormParams::parse(&body)) else {
        return form(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            None,
            "",
            Some("The form could not be read."),
        );
    };
    let return_to = fields
        .get("return_to")
        .and_then(|r| check_return_to(r, &public));
    let login = fields.get("username").unwrap_or("");
    let show = |status: StatusCode, message: &str| {
        form(
            &state,
            &headers,
            status,
            return_to.as_deref(),
            login,
            Some(message),
        )
    };
    if !csrf_ok(&headers, &fields) {
        return show(
            StatusCode::FORBIDDEN,
            "The form has expired or did not come from this site; please try again.",
        );
    }
    let attempt = PasswordLogin {
        login,
        password: fields.get("password").unwrap_or(""),
        client_id: "",
        login_type: "Token",
    };
    let ctx = request_context(&state, peer, &headers);
    match state.engine().password_login(&attempt, &ctx).await {
        Ok(tokens) => signed_in(&tokens, return_to.as_deref(), &public),
        Err(e @ AuthError::Locked { .. }) => show(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        Err(AuthError::Internal(m)) => show(StatusCode::INTERNAL_SERVER_ERROR, &m),
        Err(e) => show(StatusCode::UNAUTHORIZED, &e.to_string()),
    }
}
