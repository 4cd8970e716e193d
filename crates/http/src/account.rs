//! My account (`GET /account`) and its forms: revoke a session or all of them, unlink an
//! identity, link another identity provider, change the password, sign out.
//!
//! Every form is a POST with the CSRF token, acts on the user of the session cookie only, and
//! answers with a 303 back to the page (`?done=` names the notice to show) or the page again
//! with the error. Without a valid session the browser is sent to the sign-in page.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use portcullis_core::{AccountError, CoreError, PasswordChangeError, Principal};
use serde_json::json;

use crate::AppState;
use crate::federated::{CALLBACK_PATH, html_error, session_user};
use crate::oauth::request_context;
use crate::pages::{
    LINK_COOKIE, LOGIN_STATE_COOKIE, SESSION_COOKIE, clear_cookie, public_path, redirect,
    set_cookie,
};
use crate::request::{FormParams, require_form};
use crate::ui::csrf::csrf_ok;
use crate::ui::reasons::password_problem_text;
use crate::ui::{View, format_time};

/// How many login records the page lists.
const HISTORY: i64 = 10;
/// Notices the page shows for `?done=`.
const DONE: &[&str] = &["session_revoked", "unlinked", "linked"];

fn to_sign_in(state: &AppState, notice: Option<&str>) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    match notice {
        Some(n) => q.append_pair("notice", n),
        None => q.append_pair("return_to", &public_path(&public, "/account")),
    };
    let target = format!("{}?{}", public_path(&public, "/login"), q.finish());
    redirect(StatusCode::SEE_OTHER, &target)
}

fn back(state: &AppState, done: &str) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let target = format!("{}?done={done}", public_path(&public, "/account"));
    redirect(StatusCode::SEE_OTHER, &target)
}

/// Renders the page for `who`, with an optional notice and error.
async fn render(
    state: &AppState,
    view: &View,
    who: &Principal,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    password_error: Option<String>,
) -> Response {
    let engine = state.engine();
    let account = match engine.account_overview(&who.username, HISTORY).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(request_id = %view.request_id, error = %e, "reading an account failed");
            let e = portcullis_core::FederationError::internal("reading the account failed");
            return html_error(state, view, &e);
        }
    };
    let providers = engine.providers();
    let label = |name: &str| {
        providers
            .get(name)
            .map(|p| p.label().to_owned())
            .unwrap_or_else(|| name.to_owned())
    };
    let via = |provider: &str| {
        if provider.is_empty() {
            view.text("via_password", &[])
        } else {
            label(provider)
        }
    };
    let public = state.config().portcullis.public_url.clone();
    let identities: Vec<_> = account
        .identities
        .iter()
        .map(|i| {
            json!({
                "provider": i.provider,
                "provider_label": label(&i.provider),
                "uid": i.upstream_uid,
                "upstream": i.upstream_username.as_deref().unwrap_or(&i.upstream_uid),
                "linked": format_time(i.created_at),
            })
        })
        .collect();
    // Links, not a form: the provider's login is on another origin, and `form-action 'self'`
    // forbids a form submission that redirects there. The CSRF token rides in the query.
    let linkable: Vec<_> = crate::login_pages::provider_links(state, None)
        .into_iter()
        .filter_map(|p| {
            let name = p["name"].as_str().unwrap_or("").to_owned();
            if account.identities.iter().any(|i| i.provider == name) {
                return None;
            }
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", &name)
                .append_pair("csrf_token", &view.csrf)
                .finish();
            let href = format!("{}?{q}", public_path(&public, "/account/identities/link"));
            Some(json!({ "name": name, "label": p["label"], "href": href }))
        })
        .collect();
    let sessions: Vec<_> = account
        .sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "current": who.session_id == s.id,
                "started": format_time(s.created_at),
                "last_seen": format_time(s.last_seen_at),
                "ip": s.source_ip,
                "agent": s.user_agent.chars().take(80).collect::<String>(),
                "via": via(&s.provider),
            })
        })
        .collect();
    let logins: Vec<_> = account
        .logins
        .iter()
        .map(|r| {
            json!({
                "at": format_time(r.at),
                "success": r.success,
                "via": via(&r.provider),
                "ip": r.source_ip,
            })
        })
        .collect();
    let url = |p: &str| public_path(&public, p);
    let ctx = json!({
        "user": { "name": account.user.name, "email": account.user.email },
        "identities": identities,
        "linkable": linkable,
        "sessions": sessions,
        "logins": logins,
        "has_password": account.user.password_hash.is_some(),
        "notice": notice,
        "error": error,
        "password_error": password_error,
        "urls": {
            "sign_out": url("/account/sign-out"),
            "unlink": url("/account/identities/unlink"),
            "link": url("/account/identities/link"),
            "revoke": url("/account/sessions/revoke"),
            "revoke_all": url("/account/sessions/revoke-all"),
            "password": url("/account/password"),
        },
    });
    state
        .ui()
        .render(state, view, status, "account.html", "account_title", ctx)
}

/// `GET /account` (`?done=` shows a notice).
pub async fn account_page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    view: View,
    headers: HeaderMap,
) -> Response {
    let Some(who) = session_user(&state, &headers).await else {
        return to_sign_in(&state, None);
    };
    let notice = query
        .get("done")
        .filter(|d| DONE.contains(&d.as_str()))
        .map(|d| view.text(&format!("notice_{d}"), &[]));
    render(&state, &view, &who, StatusCode::OK, notice, None, None).await
}

/// The checks every account form shares: a readable form, the CSRF token, a valid session.
async fn form_of(
    state: &AppState,
    view: &View,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Principal, FormParams), Response> {
    let Some(who) = session_user(state, headers).await else {
        return Err(to_sign_in(state, None));
    };
    let form = match require_form(headers).and_then(|()| FormParams::parse(body)) {
        Ok(f) => f,
        Err(_) => {
            let e = view.text("err_form", &[]);
            return Err(render(
                state,
                view,
                &who,
                StatusCode::BAD_REQUEST,
                None,
                Some(e),
                None,
            )
            .await);
        }
    };
    if !csrf_ok(headers, &form) {
        let e = view.text("err_csrf", &[]);
        return Err(render(
            state,
            view,
            &who,
            StatusCode::FORBIDDEN,
            None,
            Some(e),
            None,
        )
        .await);
    }
    Ok((who, form))
}

/// The page again with an error from an account operation.
async fn refused(state: &AppState, view: &View, who: &Principal, e: AccountError) -> Response {
    let (status, key) = match e {
        AccountError::NoSuchSession
        | AccountError::NoSuchIdentity
        | AccountError::Core(CoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "err_not_found"),
        AccountError::OnlyWayIn => (StatusCode::CONFLICT, "err_unlink_last"),
        other => {
            tracing::error!(request_id = %view.request_id, error = %other, "an account operation failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "err_internal")
        }
    };
    render(
        state,
        view,
        who,
        status,
        None,
        Some(view.text(key, &[])),
        None,
    )
    .await
}

/// `POST /account/sessions/revoke` (`session`): ends one of the user's sessions; ending the
/// current one signs this browser out.
pub async fn revoke_session(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, form) = match form_of(&state, &view, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let id = form.get("session").unwrap_or("");
    match state.engine().revoke_own_session(&who.username, id).await {
        Ok(()) if id == who.session_id => signed_out(&state, "signed_out"),
        Ok(()) => back(&state, "session_revoked"),
        Err(e) => refused(&state, &view, &who, e).await,
    }
}

/// `POST /account/sessions/revoke-all`: ends every session of the user, this one included.
pub async fn revoke_all(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, _) = match form_of(&state, &view, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match state.engine().revoke_user(&who.username).await {
        Ok(_) => signed_out(&state, "signed_out_everywhere"),
        Err(e) => refused(&state, &view, &who, e.into()).await,
    }
}

/// `POST /account/sign-out`: ends this browser's session.
pub async fn sign_out(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, _) = match form_of(&state, &view, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match state.engine().revoke_session(&who.session_id).await {
        Ok(_) => signed_out(&state, "signed_out"),
        Err(e) => refused(&state, &view, &who, e.into()).await,
    }
}

/// To the sign-in page with a notice, forgetting the session cookie.
pub(crate) fn signed_out(state: &AppState, notice: &str) -> Response {
    let public = state.config().portcullis.public_url.clone();
    let mut resp = to_sign_in(state, Some(notice));
    resp.headers_mut().append(
        header::SET_COOKIE,
        clear_cookie(SESSION_COOKIE, "/", &public),
    );
    resp
}

/// `POST /account/identities/unlink` (`provider`, `uid`).
pub async fn unlink(
    State(state): State<AppState>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, form) = match form_of(&state, &view, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let provider = form.get("provider").unwrap_or("");
    let uid = form.get("uid").unwrap_or("");
    match state
        .engine()
        .unlink_own_identity(&who.username, provider, uid)
        .await
    {
        Ok(()) => back(&state, "unlinked"),
        Err(e) => refused(&state, &view, &who, e).await,
    }
}

/// `GET /account/identities/link?provider=&csrf_token=`: starts a login at the provider whose
/// callback links the identity to this user instead of logging in (the link cookie marks it).
pub async fn link(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    view: View,
    headers: HeaderMap,
) -> Response {
    let Some(who) = session_user(&state, &headers).await else {
        return to_sign_in(&state, None);
    };
    let params = FormParams::parse(query.unwrap_or_default().as_bytes());
    let Ok(params) = params else {
        let e = view.text("err_form", &[]);
        return render(
            &state,
            &view,
            &who,
            StatusCode::BAD_REQUEST,
            None,
            Some(e),
            None,
        )
        .await;
    };
    if !csrf_ok(&headers, &params) {
        let e = view.text("err_csrf", &[]);
        return render(
            &state,
            &view,
            &who,
            StatusCode::FORBIDDEN,
            None,
            Some(e),
            None,
        )
        .await;
    }
    let public = state.config().portcullis.public_url.clone();
    let provider = params.get("provider").unwrap_or("");
    let back_to = public_path(&public, "/account");
    match state
        .engine()
        .start_federated_login(provider, Some(&back_to), &public)
        .await
    {
        Ok(start) => {
            let mut resp = redirect(StatusCode::SEE_OTHER, start.authorization_url.as_str());
            for name in [LOGIN_STATE_COOKIE, LINK_COOKIE] {
                resp.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(
                        name,
                        &start.state,
                        CALLBACK_PATH,
                        Some(start.max_age_s),
                        &public,
                    ),
                );
            }
            resp
        }
        Err(e) => html_error(&state, &view, &e),
    }
}

/// `POST /account/password` (`current`, `new`, `repeat`): changes the password of a local
/// account; every session ends, so the browser goes to the sign-in page.
pub async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    view: View,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, form) = match form_of(&state, &view, &headers, &body).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let new = form.get("new").unwrap_or("");
    if form.get("repeat").unwrap_or("") != new {
        let e = view.text("password_mismatch", &[]);
        return render(
            &state,
            &view,
            &who,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some(e),
        )
        .await;
    }
    let ctx = request_context(&state, peer, &headers);
    let current = form.get("current").unwrap_or("");
    let result = state
        .engine()
        .change_own_password(&who.username, current, new, &ctx)
        .await;
    let (status, message) = match result {
        Ok(_) => return signed_out(&state, "password_changed"),
        Err(PasswordChangeError::WrongPassword) => {
            (StatusCode::FORBIDDEN, view.text("password_wrong", &[]))
        }
        Err(PasswordChangeError::NoPassword) => {
            (StatusCode::BAD_REQUEST, view.text("password_none", &[]))
        }
        Err(PasswordChangeError::Locked(s)) => {
            let until = state.engine().now_ms() + s * 1000;
            let minutes = ((s + 59) / 60).max(1).to_string();
            let text = view.text(
                "err_locked",
                &[("until", &format_time(until)), ("minutes", &minutes)],
            );
            (StatusCode::TOO_MANY_REQUESTS, text)
        }
        Err(PasswordChangeError::Invalid(p)) => (
            StatusCode::BAD_REQUEST,
            password_problem_text(view.locale, &p),
        ),
        Err(PasswordChangeError::Core(e)) => {
            tracing::error!(request_id = %view.request_id, error = %e, "changing a password failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                view.text("err_internal", &[]),
            )
        }
    };
    render(&state, &view, &who, status, None, None, Some(message)).await
}
