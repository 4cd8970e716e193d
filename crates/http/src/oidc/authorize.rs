//! `GET|POST /oauth/authorize` and `POST /oauth/authorize/consent`.
//!
//! The browser's login is the `portcullis_session` cookie (an access token of a session created
//! by a password or identity-provider login). Without a usable one the browser is sent to the
//! login page with `return_to` set to this request, rebuilt as a GET on `/oauth/authorize`. The
//! consent page posts the request's parameters back with a CSRF token and the user's choice.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use portcullis_core::oidc::{AuthRequest, AuthorizeError, BrowserSession, Decision};

use super::{csrf_ok, csrf_token, parse_params, with_cookie};
use crate::AppState;
use crate::pages::{SESSION_COOKIE, cookie, escape, page, public_path, redirect, request_id};
use crate::request::{FormParams, require_form};

/// An error page (never a redirect: used when the client or redirect URI is not trusted).
pub(crate) fn fail_page(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<p>{}</p>\n<p>Request id: <code>{}</code></p>",
        escape(message),
        escape(&request_id(headers))
    );
    page(status, "Request refused", &body)
}

fn error_response(state: &AppState, headers: &HeaderMap, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(m) => fail_page(headers, StatusCode::BAD_REQUEST, &m),
        AuthorizeError::Redirect {
            redirect_uri,
            state: st,
            error,
            description,
        } => {
            let iss = state.engine().oidc_issuer();
            let loc = portcullis_core::oidc::uris::error_redirect(
                &redirect_uri,
                st.as_deref(),
                error,
                &description,
                &iss,
            );
            redirect(StatusCode::FOUND, &loc)
        }
    }
}

/// `GET /oauth/authorize`.
pub async fn authorize_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(params) => run(&state, params, &headers).await,
        Err(m) => fail_page(&headers, StatusCode::BAD_REQUEST, &m),
    }
}

/// `POST /oauth/authorize` (form-encoded, OpenID Connect Core §3.1.2.1).
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if require_form(&headers).is_err() {
        let m = "The request body must be application/x-www-form-urlencoded.";
        return fail_page(&headers, StatusCode::BAD_REQUEST, m);
    }
    match parse_params(&body) {
        Ok(params) => run(&state, params, &headers).await,
        Err(m) => fail_page(&headers, StatusCode::BAD_REQUEST, &m),
    }
}

async fn browser(state: &AppState, headers: &HeaderMap) -> Option<BrowserSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    state.engine().browser_session(&token).await
}

async fn run(state: &AppState, params: BTreeMap<String, String>, headers: &HeaderMap) -> Response {
    let engine = state.engine();
    let req = match engine.check_authorization_request(params) {
        Ok(r) => r,
        Err(e) => return error_response(state, headers, e),
    };
    let session = browser(state, headers).await;
    let decision = engine.authorize(&req, session.as_ref(), false).await;
    respond(state, headers, &req, session.as_ref(), decision)
}

fn respond(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    session: Option<&BrowserSession>,
    decision: Result<Decision, AuthorizeError>,
) -> Response {
    match decision {
        Ok(Decision::Redirect(location)) => redirect(StatusCode::FOUND, &location),
        Ok(Decision::Login { resume }) => {
            let public = state.config().portcullis.public_url.clone();
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(resume.iter())
                .finish();
            let back = format!("{}?{query}", public_path(&public, "/oauth/authorize"));
            let login = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &back)
                .finish();
            let target = format!("{}?{login}", public_path(&public, super::login::LOGIN_PATH));
            redirect(StatusCode::FOUND, &target)
        }
        Ok(Decision::Consent) => match session {
            Some(s) => consent_page(state, headers, req, s),
            None => fail_page(headers, StatusCode::UNAUTHORIZED, "You are not logged in."),
        },
        Err(e) => error_response(state, headers, e),
    }
}

fn describe(scope: &str) -> &str {
    match scope {
        "openid" => "Know who you are (your user name)",
        "profile" => "See your name",
        "email" => "See your email address",
        "groups" => "See the groups you belong to",
        "offline_access" => "Stay signed in to it while you are away",
        other => other,
    }
}

fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    session: &BrowserSession,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let (csrf, set) = csrf_token(state, headers);
    let mut hidden = String::new();
    for (k, v) in &req.params {
        hidden.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(k),
            escape(v)
        ));
    }
    let items: String = req
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>\n", escape(describe(s))))
        .collect();
    let body = format!(
        "<p>Signed in as <strong>{}</strong>.</p>\n\
         <p>The application <strong>{}</strong> asks to:</p>\n<ul>\n{items}</ul>\n\
         <form method=\"post\" action=\"{}\">\n{hidden}\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n\
         <p><button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p>\n</form>",
        escape(&session.user.name),
        escape(&req.client.name),
        escape(&public_path(&public, "/oauth/authorize/consent")),
        escape(&csrf),
    );
    with_cookie(page(StatusCode::OK, "Allow access?", &body), set)
}

/// `POST /oauth/authorize/consent`: the consent page's answer.
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let bad = |m: &str| fail_page(&headers, StatusCode::BAD_REQUEST, m);
    let form = match require_form(&headers).and_then(|()| FormParams::parse(&body)) {
        Ok(f) => f,
        Err(_) => return bad("The form could not be read."),
    };
    if !csrf_ok(&headers, &form) {
        let m = "The form has expired or did not come from this site; start again from the application.";
        return fail_page(&headers, StatusCode::FORBIDDEN, m);
    }
    let Ok(mut params) = parse_params(&body) else {
        return bad("The form could not be read.");
    };
    let decision = params.remove("decision");
    params.remove("csrf_token");
    let engine = state.engine();
    let req = match engine.check_authorization_request(params) {
        Ok(r) => r,
        Err(e) => return error_response(&state, &headers, e),
    };
    let Some(session) = browser(&state, &headers).await else {
        // Logged out meanwhile: start over through the login page.
        let d = engine.authorize(&req, None, false).await;
        return respond(&state, &headers, &req, None, d);
    };
    if decision.as_deref() != Some("allow") {
        let loc = engine.error_location(&req, "access_denied", "the user denied the request");
        return redirect(StatusCode::FOUND, &loc);
    }
    if let Err(e) = engine.remember_consent(&req, &session.user.name).await {
        tracing::error!(error = %e, "storing a consent failed");
        let loc = engine.error_location(&req, "server_error", "the consent could not be stored");
        return redirect(StatusCode::FOUND, &loc);
    }
    let d = engine.authorize(&req, Some(&session), true).await;
    respond(&state, &headers, &req, Some(&session), d)
}
