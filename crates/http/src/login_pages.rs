//! The plain pages of the browser login: `GET /login` (one button per provider),
//! `GET|POST /login/confirm` (the registration form of `mappingMethod: manual`) and the
//! `GET /account` placeholder. The full pages come later; these stay minimal and script-free.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use portcullis_core::federation::{check_return_to, points_at_callback};
use portcullis_core::{FederatedLogin, FederationError};
use portcullis_store::PendingRegistration;

use crate::AppState;
use crate::federated::{CONFIRM_PATH, html_error, signed_in, status_of};
use crate::oauth::request_context;
use crate::pages::{
    REGISTRATION_COOKIE, SESSION_COOKIE, clear_cookie, cookie, escape, page, public_path,
};
use crate::request::FormParams;

/// `GET /login`: a "Log In with ..." link per enabled, visible identity provider that can take
/// the browser path, in configuration order.
pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let return_to = query
        .get("return_to")
        .and_then(|r| check_return_to(r, &public));
    let providers = state.engine().providers();
    let mut items = String::new();
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
        if let Some(r) = &return_to {
            let q: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", r)
                .finish();
            href = format!("{href}?{q}");
        }
        items.push_str(&format!(
            "<li><a href=\"{}\">Log In with {}</a></li>\n",
            escape(&href),
            escape(entry.label())
        ));
    }
    let body = if items.is_empty() {
        "<p>No identity provider is available for logging in here.</p>".to_owned()
    } else {
        format!("<ul>\n{items}</ul>")
    };
    page(StatusCode::OK, "Log in", &body)
}

/// `GET /account`: who the session cookie belongs to.
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let who = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => state.engine().authenticate_bearer(&token).await.ok(),
        None => None,
    };
    match who {
        Some(p) => page(
            StatusCode::OK,
            "Account",
            &format!("<p>Signed in as {}</p>", escape(&p.username)),
        ),
        None => page(
            StatusCode::UNAUTHORIZED,
            "Account",
            &format!(
                "<p>You are not signed in.</p>\n<p><a href=\"{}\">Log in</a></p>",
                escape(&public_path(&public, "/login"))
            ),
        ),
    }
}

fn confirm_form(
    state: &AppState,
    reg: &PendingRegistration,
    name: &str,
    email: &str,
    error: Option<&str>,
) -> String {
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
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    format!(
        "<p>You logged in with {} as {}. Choose the name of your account.</p>\n{error}\
         <form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n\
         <p><label>User name <input name=\"name\" value=\"{}\" required maxlength=\"63\"></label></p>\n\
         <p><label>Email <input name=\"email\" type=\"email\" value=\"{}\"></label></p>\n\
         <p><button type=\"submit\">Create account</button></p>\n</form>",
        escape(&label),
        escape(upstream),
        escape(&public_path(&public, CONFIRM_PATH)),
        escape(&reg.csrf_token),
        escape(name),
        escape(email),
    )
}

async fn registration(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<PendingRegistration, FederationError> {
    let expired = || {
        FederationError::InvalidRequest(
            "there is no registration in progress in this browser (it expired or was completed); log in again"
                .into(),
        )
    };
    let id = cookie(headers, REGISTRATION_COOKIE).ok_or_else(expired)?;
    state
        .engine()
        .pending_registration(&id)
        .await?
        .ok_or_else(expired)
}

/// `GET /login/confirm`: the registration form, prefilled with the upstream's name and email.
pub async fn confirm_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let public = state.config().portcullis.public_url.clone();
    match registration(&state, &headers).await {
        Ok(reg) => {
            let email = reg.proposed_email.clone().unwrap_or_default();
            let body = confirm_form(&state, &reg, &reg.proposed_name, &email, None);
            page(StatusCode::OK, "Create your account", &body)
        }
        Err(e) => html_error(&e, &headers, &public),
    }
}

/// `POST /login/confirm`: creates the account (name and email validated, CSRF token checked)
/// and signs the browser in; a correctable mistake shows the form again with the message.
pub async fn confirm_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let form = match crate::request::require_form(&headers).and_then(|()| FormParams::parse(&body))
    {
        Ok(f) => f,
        Err(_) => {
            let e = FederationError::InvalidRequest("the form could not be read".into());
            return html_error(&e, &headers, &public);
        }
    };
    let reg = match registration(&state, &headers).await {
        Ok(r) => r,
        Err(e) => return html_error(&e, &headers, &public),
    };
    let name = form.get("name").unwrap_or("");
    let email = form.get("email");
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
                let e = FederationError::Internal("unexpected registration outcome".into());
                return html_error(&e, &headers, &public);
            };
            let mut resp = signed_in(tokens, done.return_to.as_deref(), &public);
            resp.headers_mut().append(
                header::SET_COOKIE,
                clear_cookie(REGISTRATION_COOKIE, CONFIRM_PATH, &public),
            );
            resp
        }
        Err(e @ (FederationError::InvalidInput(_) | FederationError::Conflict(_))) => {
            let body = confirm_form(
                &state,
                &reg,
                name,
                email.unwrap_or(""),
                Some(&e.to_string()),
            );
            page(status_of(&e), "Create your account", &body)
        }
        Err(e) => html_error(&e, &headers, &public),
    }
}
