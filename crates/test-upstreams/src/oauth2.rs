//! [`FakeOAuth2`]: a plain OAuth 2.0 server that answers with the paths and the user JSON of GitLab, Gitea or
//! Google ([`Flavor`]), for the generic `OAuth2IdentityProvider` and its shipped example configurations.
//!
//! * `GET <authorize>` redirects back with `code` and `state` (or `error=access_denied`); a PKCE `S256` challenge is
//!   stored and checked when sent.
//! * `POST <token>`: RFC 6749 answers in JSON; client authentication by HTTP Basic or in the body (all three
//!   services accept both); `invalid_client` (401), `invalid_grant` (400); codes are single-use.
//! * `GET <user>` with `Authorization: Bearer`, `Authorization: token` (Gitea) or `?access_token=` (GitLab) answers
//!   the flavour's user document: GitLab `/api/v4/user` (`id` number, `username`, `name`, `email`), Gitea
//!   `/api/v1/user` (`id`, `login`, `full_name`, `email`), Google `/v1/userinfo` (`sub` string, `name`, `email`,
//!   `email_verified`). An unknown token is 401 with the flavour's error JSON.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::common::{self, Codes, Grant, Mode, RecordedRequest, Server};

/// Whose paths and JSON the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavor {
    /// gitlab.com: `/oauth/authorize`, `/oauth/token`, `/api/v4/user`.
    GitLab,
    /// A Gitea instance: `/login/oauth/authorize`, `/login/oauth/access_token`, `/api/v1/user`.
    Gitea,
    /// Google: `/o/oauth2/v2/auth`, `/token`, `/v1/userinfo` (three hosts in reality, one here).
    Google,
}

impl Flavor {
    fn paths(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Flavor::GitLab => ("/oauth/authorize", "/oauth/token", "/api/v4/user"),
            Flavor::Gitea => (
                "/login/oauth/authorize",
                "/login/oauth/access_token",
                "/api/v1/user",
            ),
            Flavor::Google => ("/o/oauth2/v2/auth", "/token", "/v1/userinfo"),
        }
    }

    fn user_json(self, u: &FakeUser) -> Value {
        match self {
            Flavor::GitLab => {
                json!({"id": u.id, "username": u.login, "name": u.name, "email": u.email,
                                     "state": "active", "web_url": format!("https://gitlab.com/{}", u.login),
                                     "confirmed_at": "2024-01-01T00:00:00.000Z"})
            }
            Flavor::Gitea => {
                json!({"id": u.id, "login": u.login, "full_name": u.name, "email": u.email,
                                    "is_admin": false, "active": true})
            }
            Flavor::Google => {
                json!({"sub": format!("1{:020}", u.id), "name": u.name, "given_name": u.name,
                                     "email": u.email, "email_verified": u.email_verified,
                                     "picture": "https://lh3.googleusercontent.com/a/x"})
            }
        }
    }
}

/// A user of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// Numeric id (Google's `sub` is derived from it).
    pub id: u64,
    /// Login name.
    pub login: String,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Whether the e-mail address is verified (Google only).
    pub email_verified: bool,
    /// Extra fields merged into the user document (for example `{"groups": ["dev"]}`).
    pub extra: Value,
}

#[derive(Debug)]
struct OState {
    flavor: Flavor,
    client_id: String,
    client_secret: String,
    users: BTreeMap<u64, FakeUser>,
    next_user: Option<u64>,
    deny: bool,
    codes: Codes,
    tokens: BTreeMap<String, u64>,
    token_mode: Mode,
    api_mode: Mode,
    requests: Vec<RecordedRequest>,
}

/// A fake OAuth 2.0 server. Cheap to clone; dropping the last clone stops it.
#[derive(Debug, Clone)]
pub struct FakeOAuth2 {
    server: Arc<Server>,
    state: Arc<Mutex<OState>>,
}

type St = State<Arc<Mutex<OState>>>;

fn lock(state: &Mutex<OState>) -> MutexGuard<'_, OState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeOAuth2 {
    /// Starts a fake of `flavor` on `127.0.0.1:0`, client `fake-oauth2-client` / `fake-oauth2-secret`, no users.
    pub async fn start(flavor: Flavor) -> FakeOAuth2 {
        let state = Arc::new(Mutex::new(OState {
            flavor,
            client_id: "fake-oauth2-client".into(),
            client_secret: "fake-oauth2-secret".into(),
            users: BTreeMap::new(),
            next_user: None,
            deny: false,
            codes: Codes::default(),
            tokens: BTreeMap::new(),
            token_mode: Mode::Normal,
            api_mode: Mode::Normal,
            requests: Vec::new(),
        }));
        let (auth, token_path, user) = flavor.paths();
        let router = Router::new()
            .route(auth, get(authorize))
            .route(token_path, post(token))
            .route(user, get(userinfo))
            .with_state(state.clone());
        FakeOAuth2 {
            server: Arc::new(Server::start(router).await),
            state,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
    /// The authorization endpoint.
    pub fn auth_url(&self) -> String {
        format!("{}{}", self.base_url(), self.lock().flavor.paths().0)
    }
    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base_url(), self.lock().flavor.paths().1)
    }
    /// The user endpoint.
    pub fn user_info_url(&self) -> String {
        format!("{}{}", self.base_url(), self.lock().flavor.paths().2)
    }
    /// The registered client id.
    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }
    /// The registered client secret.
    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }
    /// Sets the registered client credentials (to match an example configuration).
    pub fn set_client(&self, id: &str, secret: &str) {
        let mut s = self.lock();
        s.client_id = id.into();
        s.client_secret = secret.into();
    }
    /// Adds (or replaces) a user; the first one added is also who logs in by default.
    pub fn add_user(&self, user: FakeUser) {
        let mut s = self.lock();
        s.next_user.get_or_insert(user.id);
        s.users.insert(user.id, user);
    }
    /// From now on, authorizations without a `login_as` parameter log in as `id`.
    pub fn login_as(&self, id: u64) {
        let mut s = self.lock();
        s.next_user = Some(id);
        s.deny = false;
    }
    /// From now on, authorizations without a `login_as` parameter are refused (`error=access_denied`).
    pub fn deny_consent(&self) {
        self.lock().deny = true;
    }
    /// Sets the mode of the token endpoint.
    pub fn set_token_mode(&self, mode: Mode) {
        self.lock().token_mode = mode;
    }
    /// Sets the mode of the user endpoint.
    pub fn set_api_mode(&self, mode: Mode) {
        self.lock().api_mode = mode;
    }
    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, OState> {
        lock(&self.state)
    }
}

async fn authorize(State(state): St, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = common::params(q.as_deref(), b"");
    let mut s = lock(&state);
    s.requests
        .push(common::record("GET", "authorize", &headers, p.clone()));
    if p.get("client_id") != Some(&s.client_id) {
        return (StatusCode::BAD_REQUEST, "invalid client_id").into_response();
    }
    let Some(redirect) = p.get("redirect_uri").cloned() else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let st = p.get("state").cloned().unwrap_or_default();
    let chosen = match p.get("login_as") {
        Some(id) => id.parse().ok(),
        None if s.deny => None,
        None => s.next_user,
    };
    let Some(id) = chosen.filter(|id| s.users.contains_key(id)) else {
        return common::redirect_with(&redirect, &[("error", "access_denied"), ("state", &st)]);
    };
    let grant = Grant {
        user: id.to_string(),
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
            .push(common::record("POST", "token", &headers, p.clone()));
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
            "Client authentication failed",
        );
    }
    if p.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type",
        );
    }
    let Some(grant) = p.get("code").and_then(|c| s.codes.take(c)) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant is invalid",
        );
    };
    if grant.redirect_uri.as_ref() != p.get("redirect_uri") || grant.client_id != client_id {
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
    let Ok(user) = grant.user.parse::<u64>() else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "bad grant",
        );
    };
    let token = common::random_token("");
    s.tokens.insert(token.clone(), user);
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 7200,
                      "refresh_token": common::random_token(""), "scope": grant.scope,
                      "created_at": 1_700_000_000});
    common::json(StatusCode::OK, body)
}

async fn userinfo(State(state): St, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = common::params(q.as_deref(), b"");
    let mode = {
        let mut s = lock(&state);
        s.requests
            .push(common::record("GET", "user", &headers, p.clone()));
        s.api_mode
    };
    if let Some(resp) = common::failure(mode).await {
        return resp;
    }
    let s = lock(&state);
    let token = common::bearer(&headers).or_else(|| p.get("access_token").cloned());
    let Some(user) = token
        .and_then(|t| s.tokens.get(&t))
        .and_then(|id| s.users.get(id))
    else {
        let body = match s.flavor {
            Flavor::GitLab => json!({"message": "401 Unauthorized"}),
            Flavor::Gitea => {
                json!({"message": "token is required", "url": "https://gitea.example.com/api/swagger"})
            }
            Flavor::Google => {
                json!({"error": "invalid_request", "error_description": "Invalid Credentials"})
            }
        };
        return common::json(StatusCode::UNAUTHORIZED, body);
    };
    let mut doc = s.flavor.user_json(user);
    if let (Some(map), Some(extra)) = (doc.as_object_mut(), user.extra.as_object()) {
        map.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if mode == Mode::NoUserId
        && let Some(map) = doc.as_object_mut()
    {
        map.remove("id");
        map.remove("sub");
    }
    common::json(StatusCode::OK, doc)
}
