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

use super::parse_params;
use crate::AppState;
use crate::pages::{SESSION_COOKIE, cookie, public_path, redirect};
use crate::request::{FormParams, require_form};
use crate::ui::View;
use crate::ui::csrf::csrf_ok;
use crate::ui::reasons::untrusted_key;

/// The page for a parameter sent twice.
fn duplicate_page(state: &AppState, view: &View, name: &str) -> Response {
    let args = [("name", name)];
    fail_page(
        state,
        view,
        StatusCode::BAD_REQUEST,
        "refused_duplicate_param",
        &args,
    )
}

/// An error page (never a redirect: used when the client or redirect URI is not trusted). The
/// message is the catalog text `key` in the page's language; the log line names the key.
fn fail_page(
    state: &AppState,
    view: &View,
    status: StatusCode,
    key: &str,
    args: &[(&str, &str)],
) -> Response {
    tracing::warn!(request_id = %view.request_id, status = status.as_u16(), reason = key, "authorization request refused; error page shown");
    let ctx = serde_json::json!({
        "headline": view.text("kind_refused", &[]),
        "message": view.text(key, args),
        "todo": view.text("todo_app", &[]),
    });
    state
        .ui()
        .render(state, view, status, "error.html", "refused_title", ctx)
}

fn error_response(state: &AppState, view: &View, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(why) => fail_page(
            state,
            view,
            StatusCode::BAD_REQUEST,
            untrusted_key(why),
            &[],
        ),
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
    view: View,
    headers: HeaderMap,
) -> Response {
    match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(mut params) => {
            // The language switch of the consent page (`?lang=`) is not an OAuth parameter.
            params.remove("lang");
            run(&state, &view, params, &headers).await
        }
        Err(name) => duplicate_page(&state, &view, &name),
    }
}

/// `POST /oauth/authorize` (form-encoded, OpenID Connect Core §3.1.2.1).
pub async fn authorize_post(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if require_form(&headers).is_err() {
        return fail_page(
            &state,
            &view,
            StatusCode::BAD_REQUEST,
            "refused_not_form",
            &[],
        );
    }
    match parse_params(&body) {
        Ok(params) => run(&state, &view, params, &headers).await,
        Err(name) => duplicate_page(&state, &view, &name),
    }
}

async fn browser(state: &AppState, headers: &HeaderMap) -> Option<BrowserSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    state.engine().browser_session(&token).await
}

async fn run(
    state: &AppState,
    view: &View,
    params: BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let engine = state.engine();
    let req = match engine.check_authorization_request(params) {
        Ok(r) => r,
        Err(e) => return error_response(state, view, e),
    };
    let session = browser(state, headers).await;
    let decision = engine.authorize(&req, session.as_ref(), false).await;
    respond(state, view, &req, session.as_ref(), decision)
}

fn respond(
    state: &AppState,
    view: &View,
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
            Some(s) => consent_page(state, view, req, s),
            None => fail_page(
                state,
                view,
                StatusCode::UNAUTHORIZED,
                "refused_not_logged_in",
                &[],
            ),
        },
        Err(e) => error_response(state, view, e),
    }
}

/// The catalog key describing a scope, or the scope itself when it has none.
fn describe(view: &View, scope: &str) -> String {
    match scope {
        "openid" | "profile" | "email" | "groups" | "offline_access" => {
            view.text(&format!("scope_{scope}"), &[])
        }
        other => other.to_owned(),
    }
}

fn consent_page(
    state: &AppState,
    view: &View,
    req: &AuthRequest,
    session: &BrowserSession,
) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let params: Vec<(&String, &String)> = req.params.iter().collect();
    let scopes: Vec<String> = req.scopes.iter().map(|s| describe(view, s)).collect();
    let ctx = serde_json::json!({
        "user": session.user.name,
        "client": req.client.name,
        "scopes": scopes,
        "params": params,
        "action": public_path(&public, "/oauth/authorize/consent"),
    });
    let page = state.ui().render(
        state,
        view,
        StatusCode::OK,
        "consent.html",
        "consent_title",
        ctx,
    );
    // Allow (or Deny) ends in a redirect to the client, which `form-action` governs too.
    crate::ui::allow_form_target(page, &req.redirect_uri)
}

/// `POST /oauth/authorize/consent`: the consent page's answer.
pub async fn consent(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let unreadable = || fail_page(&state, &view, StatusCode::BAD_REQUEST, "err_form", &[]);
    let form = match require_form(&headers).and_then(|()| FormParams::parse(&body)) {
        Ok(f) => f,
        Err(_) => return unreadable(),
    };
    if !csrf_ok(&headers, &form) {
        return fail_page(&state, &view, StatusCode::FORBIDDEN, "refused_csrf", &[]);
    }
    let Ok(mut params) = parse_params(&body) else {
        return unreadable();
    };
    let decision = params.remove("decision");
    params.remove("csrf_token");
    let engine = state.engine();
    let req = match engine.check_authorization_request(params) {
        Ok(r) => r,
        Err(e) => return error_response(&state, &view, e),
    };
    let Some(session) = browser(&state, &headers).await else {
        // Logged out meanwhile: start over through the login page.
        let d = engine.authorize(&req, None, false).await;
        return respond(&state, &view, &req, None, d);
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
    respond(&state, &view, &req, Some(&session), d)
}
