//! The fake GitHub's HTTP endpoints: OAuth (`/login/oauth/*`) and REST (`/user`, `/user/emails`); the group
//! lists are in `groups`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Consent, GhState, User, lock};
use crate::common::{self, Grant, Mode};

const DOCS: &str = "https://docs.github.com/rest";

pub(super) type St = State<Arc<Mutex<GhState>>>;

pub(super) async fn authorize(
    State(state): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = common::params(q.as_deref(), b"");
    let mut s = lock(&state);
    s.requests.push(common::record(
        "GET",
        "/login/oauth/authorize",
        &headers,
        p.clone(),
    ));
    if p.get("client_id") != Some(&s.client_id) {
        return common::html(StatusCode::NOT_FOUND, "<h1>404 Not Found</h1>");
    }
    let state_param = p.get("state").cloned().unwrap_or_default();
    let redirect = match (p.get("redirect_uri"), &s.callback) {
        (Some(r), Some(cb)) if !r.starts_with(cb.as_str()) => {
            let desc =
                "The redirect_uri MUST match the registered callback URL for this application.";
            let extra = [
                ("error", "redirect_uri_mismatch"),
                ("error_description", desc),
                ("state", &state_param),
            ];
            return common::redirect_with(cb, &extra);
        }
        (Some(r), _) => r.clone(),
        (None, Some(cb)) => cb.clone(),
        (None, None) => {
            return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
        }
    };
    if let Some(method) = p.get("code_challenge_method")
        && method != "S256"
    {
        let extra = [
            ("error", "invalid_request"),
            ("error_description", "Only S256 is supported"),
            ("state", &state_param),
        ];
        return common::redirect_with(&redirect, &extra);
    }
    let consent = match p.get("login_as").map(|v| v.parse::<u64>()) {
        Some(Ok(id)) => Some(Consent::User(id)),
        Some(Err(_)) => Some(Consent::Deny),
        None => s.consent,
    };
    let user = match consent {
        Some(Consent::User(id)) if s.users.contains_key(&id) => id,
        Some(Consent::Deny) => {
            let desc = "The user has denied your application access.";
            let extra = [
                ("error", "access_denied"),
                ("error_description", desc),
                ("state", &state_param),
            ];
            return common::redirect_with(&redirect, &extra);
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "fake GitHub: no such user to log in as",
            )
                .into_response();
        }
    };
    let grant = Grant {
        user: user.to_string(),
        client_id: s.client_id.clone(),
        redirect_uri: p.get("redirect_uri").cloned(),
        scope: p.get("scope").cloned().unwrap_or_default(),
        challenge: p.get("code_challenge").cloned(),
    };
    let code = s.codes.issue(grant);
    common::redirect_with(&redirect, &[("code", &code), ("state", &state_param)])
}

pub(super) async fn access_token(
    State(state): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = common::params(q.as_deref(), &body);
    let mode = {
        let mut s = lock(&state);
        s.requests.push(common::record(
            "POST",
            "/login/oauth/access_token",
            &headers,
            p.clone(),
        ));
        s.token_mode
    };
    if let Some(resp) = common::failure(mode).await {
        return resp;
    }
    let wants_json =
        common::header_str(&headers, "accept").is_some_and(|a| a.contains("application/json"));
    let (client_id, secret) = common::client_credentials(&headers, &p);
    let mut s = lock(&state);
    if client_id != s.client_id || secret != s.client_secret {
        let desc = "The client_id and/or client_secret passed are incorrect.";
        return token_answer(
            wants_json,
            &[
                ("error", "incorrect_client_credentials"),
                ("error_description", desc),
            ],
        );
    }
    let bad_code = [
        ("error", "bad_verification_code"),
        (
            "error_description",
            "The code passed is incorrect or expired.",
        ),
    ];
    let Some(grant) = p.get("code").and_then(|c| s.codes.take(c)) else {
        return token_answer(wants_json, &bad_code);
    };
    if grant.client_id != client_id {
        return token_answer(wants_json, &bad_code);
    }
    if let (Some(sent), Some(granted)) = (p.get("redirect_uri"), &grant.redirect_uri)
        && sent != granted
    {
        let desc = "The redirect_uri MUST match the registered callback URL for this application.";
        return token_answer(
            wants_json,
            &[
                ("error", "redirect_uri_mismatch"),
                ("error_description", desc),
            ],
        );
    }
    if let Some(challenge) = &grant.challenge
        && !common::pkce_ok(challenge, p.get("code_verifier").map(String::as_str))
    {
        return token_answer(wants_json, &bad_code);
    }
    let scopes: Vec<String> = grant
        .scope
        .split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    let token = common::random_token("gho_");
    let scope = scopes.join(",");
    s.tokens.insert(
        token.clone(),
        (grant.user.parse().unwrap_or_default(), scopes),
    );
    token_answer(
        wants_json,
        &[
            ("access_token", &token),
            ("scope", &scope),
            ("token_type", "bearer"),
        ],
    )
}

fn token_answer(wants_json: bool, fields: &[(&str, &str)]) -> Response {
    if wants_json {
        let map: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).into(), json!(v)))
            .collect();
        common::json(StatusCode::OK, Value::Object(map))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        (
            [(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
        )
            .into_response()
    }
}

/// Which failure mode an API endpoint obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModeOf {
    /// `/user`, `/user/emails`.
    User,
    /// `/user/orgs`, `/user/teams`.
    Groups,
}

/// Common checks of the REST API: records the request (with its `query` parameters), applies the mode, checks
/// `User-Agent` and the token. `Ok` carries the user and the token's scopes.
pub(super) async fn api_user(
    state: &Mutex<GhState>,
    path: &str,
    query: BTreeMap<String, String>,
    headers: &HeaderMap,
    mode_of: ModeOf,
) -> Result<(User, Vec<String>, Mode), Response> {
    let mode = {
        let mut s = lock(state);
        s.requests.push(common::record("GET", path, headers, query));
        match mode_of {
            ModeOf::User => s.api_mode,
            ModeOf::Groups => s.groups_mode,
        }
    };
    if let Some(resp) = common::failure(mode).await {
        return Err(resp);
    }
    if common::header_str(headers, "user-agent").is_none_or(|ua| ua.trim().is_empty()) {
        let msg = "Request forbidden by administrative rules. Please make sure your request has a User-Agent header \
                   (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).";
        return Err((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain")],
            msg,
        )
            .into_response());
    }
    let Some(token) = common::bearer(headers) else {
        return Err(common::json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Requires authentication", "documentation_url": DOCS, "status": "401"}),
        ));
    };
    let s = lock(state);
    let found = s
        .tokens
        .get(&token)
        .and_then(|(id, scopes)| Some((s.users.get(id)?.clone(), scopes.clone())));
    match found {
        Some((user, scopes)) => Ok((user, scopes, mode)),
        None => Err(common::json(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}),
        )),
    }
}

pub(super) async fn user(
    State(state): St,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let (u, _, mode) = match api_user(&state, uri.path(), query(&uri), &headers, ModeOf::User).await
    {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let mut body = json!({
        "login": u.login, "id": u.id, "node_id": format!("U_{}", u.id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", u.id),
        "html_url": format!("https://github.com/{}", u.login), "type": "User", "site_admin": false,
        "name": u.name, "company": null, "email": u.email, "created_at": "2011-01-25T18:44:36Z",
    });
    if mode == Mode::NoUserId
        && let Some(map) = body.as_object_mut()
    {
        map.remove("id");
    }
    common::json(StatusCode::OK, body)
}

pub(super) async fn emails(
    State(state): St,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let (u, scopes, _) =
        match api_user(&state, uri.path(), query(&uri), &headers, ModeOf::User).await {
            Ok(found) => found,
            Err(resp) => return resp,
        };
    if !scopes.iter().any(|s| s == "user" || s == "user:email") {
        return common::json(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found", "documentation_url": DOCS, "status": "404"}),
        );
    }
    let list: Vec<Value> = u
        .emails
        .iter()
        .map(|(e, primary, verified)| {
            let visibility = if *primary {
                json!(if u.email.as_deref() == Some(e) {
                    "public"
                } else {
                    "private"
                })
            } else {
                Value::Null
            };
            json!({"email": e, "primary": primary, "verified": verified, "visibility": visibility})
        })
        .collect();
    common::json(StatusCode::OK, Value::Array(list))
}

/// The query parameters of a request URI.
pub(super) fn query(uri: &axum::http::Uri) -> BTreeMap<String, String> {
    common::params(uri.query(), b"")
}
