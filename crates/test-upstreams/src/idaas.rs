//! [`FakeIdaas`]: Alibaba Cloud IDaaS (EIAM 1.x) as an OAuth 2.0 provider, as KubeSphere's `AliyunIDaaSProvider`
//! uses it (spec §4.3).
//!
//! * `GET /oauth/authorize` (`response_type=code`) redirects back with `code` and `state`, or `error=access_denied`.
//!   A `code_challenge` (`S256`) is stored and checked if sent.
//! * `POST /oauth/token`: standard RFC 6749 answers; errors are JSON with HTTP 400 (`invalid_grant`) or 401
//!   (`invalid_client`); codes are single-use.
//! * `GET /api/bff/v1.2/oauth2/userinfo` with `Authorization: Bearer` answers the envelope
//!   `{success, message, code, requestId, data:{sub, ou_id, nickname, phone_number, ou_name, email, username}}`;
//!   an unknown token is `success:false` with HTTP 200.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::common::{self, Codes, Grant, Mode, RecordedRequest, Server};

#[derive(Debug, Clone)]
struct User {
    sub: String,
    username: String,
    email: Option<String>,
    nickname: Option<String>,
}

#[derive(Debug)]
struct IdState {
    client_id: String,
    client_secret: String,
    users: BTreeMap<String, User>,
    next_user: Option<String>,
    deny: bool,
    codes: Codes,
    tokens: BTreeMap<String, String>,
    userinfo_failure: Option<(String, String)>,
    token_mode: Mode,
    api_mode: Mode,
    requests: Vec<RecordedRequest>,
}

/// A fake Aliyun IDaaS instance. Cheap to clone; dropping the last clone stops it.
#[derive(Debug, Clone)]
pub struct FakeIdaas {
    server: Arc<Server>,
    state: Arc<Mutex<IdState>>,
}

impl FakeIdaas {
    /// Starts a fake on `127.0.0.1:0` with client id `fake-idaas-client`, secret `fake-idaas-secret`, no users.
    pub async fn start() -> FakeIdaas {
        let state = Arc::new(Mutex::new(IdState {
            client_id: "fake-idaas-client".into(),
            client_secret: "fake-idaas-secret".into(),
            users: BTreeMap::new(),
            next_user: None,
            deny: false,
            codes: Codes::default(),
            tokens: BTreeMap::new(),
            userinfo_failure: None,
            token_mode: Mode::Normal,
            api_mode: Mode::Normal,
            requests: Vec::new(),
        }));
        let router = Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/api/bff/v1.2/oauth2/userinfo", get(userinfo))
            .with_state(state.clone());
        FakeIdaas {
            server: Arc::new(Server::start(router).await),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
    /// The `endpoint.authURL` to configure.
    pub fn auth_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url())
    }
    /// The `endpoint.tokenURL` to configure.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }
    /// The `endpoint.userInfoURL` to configure.
    pub fn user_info_url(&self) -> String {
        format!("{}/api/bff/v1.2/oauth2/userinfo", self.base_url())
    }
    /// The registered client id.
    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }
    /// The registered client secret.
    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }
    /// Adds (or replaces) a user identified by `sub`.
    pub fn add_user(&self, sub: &str, username: &str, email: Option<&str>, nickname: Option<&str>) {
        let user = User {
            sub: sub.into(),
            username: username.into(),
            email: email.map(str::to_owned),
            nickname: nickname.map(str::to_owned),
        };
        self.lock().users.insert(sub.into(), user);
    }
    /// From now on, authorizations without a `login_as` parameter log in as `sub`.
    pub fn login_as(&self, sub: &str) {
        let mut s = self.lock();
        s.next_user = Some(sub.into());
        s.deny = false;
    }
    /// From now on, authorizations without a `login_as` parameter are refused (`error=access_denied`).
    pub fn deny_consent(&self) {
        self.lock().deny = true;
    }
    /// Makes the userinfo endpoint answer `success:false` with this `code` and `message` (None: normal).
    pub fn fail_userinfo(&self, failure: Option<(&str, &str)>) {
        self.lock().userinfo_failure = failure.map(|(c, m)| (c.to_owned(), m.to_owned()));
    }
    /// Sets the mode of the token and userinfo endpoints.
    pub fn set_mode(&self, mode: Mode) {
        let mut s = self.lock();
        s.token_mode = mode;
        s.api_mode = mode;
    }
    /// Sets the mode of the token endpoint only.
    pub fn set_token_mode(&self, mode: Mode) {
        self.lock().token_mode = mode;
    }
    /// Sets the mode of the userinfo endpoint only.
    pub fn set_api_mode(&self, mode: Mode) {
        self.lock().api_mode = mode;
    }
    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, IdState> {
        lock(&self.state)
    }
}

type St = State<Arc<Mutex<IdState>>>;

fn lock(state: &Mutex<IdState>) -> MutexGuard<'_, IdState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn authorize(State(state): St, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = common::params(q.as_deref(), b"");
    let mut s = lock(&state);
    s.requests.push(common::record(
        "GET",
        "/oauth/authorize",
        &headers,
        p.clone(),
    ));
    if p.get("client_id") != Some(&s.client_id) {
        return (StatusCode::BAD_REQUEST, "invalid client_id").into_response();
    }
    let Some(redirect) = p.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let st = p.get("state").cloned().unwrap_or_default();
    if p.get("response_type").map(String::as_str) != Some("code") {
        return common::redirect_with(
            &redirect,
            &[("error", "unsupported_response_type"), ("state", &st)],
        );
    }
    let chosen = p
        .get("login_as")
        .cloned()
        .or_else(|| (!s.deny).then(|| s.next_user.clone()).flatten());
    let Some(sub) = chosen.filter(|sub| s.users.contains_key(sub)) else {
        return common::redirect_with(&redirect, &[("error", "access_denied"), ("state", &st)]);
    };
    let grant = Grant {
        user: sub,
        client_id: s.client_id.clone(),
        redirect_uri: Some(redirect.clone()),
        scope: p.get("scope").cloned().unwrap_or_default(),
        challenge: p.get("code_challenge").cloned(),
    };
    let code = s.codes.issue(grant);
    common::redirect_with(&redirect, &[("code", &code), ("state", &st)])
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    common::json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

async fn token(
    State(state): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = common::params(q.as_deref(), &body);
    let mode = {
        let mut s = lock(&state);
        s.requests
            .push(common::record("POST", "/oauth/token", &headers, p.clone()));
        s.token_mode
    };
    if let Some(resp) = common::failure(mode).await {
        return resp;
    }
    let (client_id, secret) = common::client_credentials(&headers, &p);
    let mut s = lock(&state);
    if client_id != s.client_id || secret != s.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    if p.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code",
        );
    }
    let Some(grant) = p.get("code").and_then(|c| s.codes.take(c)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "authorization code is invalid or expired",
        );
    };
    if grant.redirect_uri.as_ref() != p.get("redirect_uri") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri does not match",
        );
    }
    if let Some(challenge) = &grant.challenge
        && !common::pkce_ok(challenge, p.get("code_verifier").map(String::as_str))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let token = common::random_token("");
    s.tokens.insert(token.clone(), grant.user);
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 1199,
                      "refresh_token": common::random_token(""), "scope": grant.scope});
    common::json(StatusCode::OK, body)
}

async fn userinfo(State(state): St, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = common::params(q.as_deref(), b"");
    let mode = {
        let mut s = lock(&state);
        s.requests.push(common::record(
            "GET",
            "/api/bff/v1.2/oauth2/userinfo",
            &headers,
            p.clone(),
        ));
        s.api_mode
    };
    if let Some(resp) = common::failure(mode).await {
        return resp;
    }
    let s = lock(&state);
    let request_id = common::random_token("");
    let failed = |code: &str, message: &str| json!({"success": false, "code": code, "message": message, "requestId": request_id, "data": null});
    if let Some((code, message)) = &s.userinfo_failure {
        return common::json(StatusCode::OK, failed(code, message));
    }
    let token = common::bearer(&headers).or_else(|| p.get("access_token").cloned());
    let Some(user) = token
        .and_then(|t| s.tokens.get(&t))
        .and_then(|sub| s.users.get(sub))
    else {
        return common::json(
            StatusCode::OK,
            failed("invalid_token", "access_token is invalid or expired"),
        );
    };
    let mut data = json!({
        "sub": user.sub, "ou_id": "ou-1", "nickname": user.nickname, "phone_number": null,
        "ou_name": "Engineering", "email": user.email, "username": user.username,
    });
    if mode == Mode::NoUserId
        && let Some(map) = data.as_object_mut()
    {
        map.remove("sub");
    }
    let body = json!({"success": true, "code": "200", "message": null, "requestId": request_id, "data": data});
    common::json(StatusCode::OK, body)
}
