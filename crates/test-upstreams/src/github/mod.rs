//! [`FakeGitHub`]: GitHub's OAuth app flow and user API as documented, quirks included.
//!
//! Behaviour emulated (docs.github.com, "Authorizing OAuth apps" and "Troubleshooting OAuth app access token
//! request errors"; crates-and-peers.md §B.4):
//! * `GET /login/oauth/authorize` redirects back with `code` and `state` for the chosen user, or with
//!   `error=access_denied` when the user refuses, or `error=redirect_uri_mismatch` to the registered callback.
//!   PKCE: only `S256`. The user is chosen with a `login_as=<id>` query parameter or [`FakeGitHub::login_as`].
//! * `POST /login/oauth/access_token` answers form-encoded unless `Accept: application/json`; errors
//!   (`incorrect_client_credentials`, `bad_verification_code`, `redirect_uri_mismatch`) come with **HTTP 200**;
//!   codes are single-use; `token_type` is lower-case `bearer`; `scope` is comma-separated. A failed PKCE check is
//!   answered as `bad_verification_code` (GitHub does not document its answer; this is an assumption).
//! * `GET /user` and `GET /user/emails` (also under `/api/v3`, as on GitHub Enterprise) need a `User-Agent`
//!   (403 without) and `Authorization: Bearer` or `token`; `email` is `null` for a private address;
//!   `/user/emails` needs the `user` or `user:email` scope (404 otherwise).
//! * `GET /user/orgs` and `GET /user/teams` (also under `/api/v3`) list the user's organisations and teams set
//!   with [`FakeGitHub::set_orgs`] and [`FakeGitHub::set_teams`], in the order given, in GitHub's documented shapes
//!   (organisation: `login`, `id`, `node_id`, `url`, ...; team: `id`, `slug`, `name`, ..., `organization: {login,
//!   ...}`). They need a token granted `read:org` (or, as GitHub documents, `write:org`, `admin:org`, `user`; for
//!   teams also `repo`), 403 with GitHub's JSON message otherwise (the orgs message is GitHub's; GitHub does not
//!   document the teams one, so it is an assumption). Pagination as GitHub: `per_page` (default 30, at most 100)
//!   and `page` (default 1) query parameters, and a `Link` header with `prev`, `next`, `last` and `first`
//!   relations on the request's own host. Their failure mode is set with [`FakeGitHub::set_groups_mode`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};

use crate::common::{Codes, Grant, Mode, RecordedRequest, Server};

mod endpoints;
mod groups;

use endpoints::{access_token, authorize, emails, user};
use groups::{orgs, teams};

/// A GitHub account known to the fake.
#[derive(Debug, Clone)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
    emails: Vec<(String, bool, bool)>,
    orgs: Vec<String>,
    teams: Vec<(String, String)>,
}

/// Who "logs in" at the next authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    User(u64),
    Deny,
}

#[derive(Debug)]
struct GhState {
    client_id: String,
    client_secret: String,
    callback: Option<String>,
    users: BTreeMap<u64, User>,
    consent: Option<Consent>,
    codes: Codes,
    tokens: BTreeMap<String, (u64, Vec<String>)>,
    token_mode: Mode,
    api_mode: Mode,
    groups_mode: Mode,
    requests: Vec<RecordedRequest>,
}

/// A fake GitHub (OAuth endpoints and REST user API on one port). Cheap to clone; dropping the last clone stops it.
#[derive(Debug, Clone)]
pub struct FakeGitHub {
    server: Arc<Server>,
    state: Arc<Mutex<GhState>>,
}

impl FakeGitHub {
    /// Starts a fake on `127.0.0.1:0` with client id `fake-github-client`, secret `fake-github-secret`, no
    /// registered callback (any `redirect_uri` is accepted) and no users.
    pub async fn start() -> FakeGitHub {
        let state = Arc::new(Mutex::new(GhState {
            client_id: "fake-github-client".into(),
            client_secret: "fake-github-secret".into(),
            callback: None,
            users: BTreeMap::new(),
            consent: None,
            codes: Codes::default(),
            tokens: BTreeMap::new(),
            token_mode: Mode::Normal,
            api_mode: Mode::Normal,
            groups_mode: Mode::Normal,
            requests: Vec::new(),
        }));
        let api = Router::new()
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams));
        let router = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .merge(api.clone())
            .nest("/api/v3", api)
            .with_state(state.clone());
        FakeGitHub {
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
        format!("{}/login/oauth/authorize", self.base_url())
    }
    /// The `endpoint.tokenURL` to configure.
    pub fn token_url(&self) -> String {
        format!("{}/login/oauth/access_token", self.base_url())
    }
    /// The `endpoint.userInfoURL` to configure (`/user`, as on api.github.com).
    pub fn user_info_url(&self) -> String {
        format!("{}/user", self.base_url())
    }
    /// A GitHub Enterprise style `endpoint.userInfoURL` (`/api/v3/user`).
    pub fn enterprise_user_info_url(&self) -> String {
        format!("{}/api/v3/user", self.base_url())
    }
    /// The registered client id.
    pub fn client_id(&self) -> String {
        self.lock().client_id.clone()
    }
    /// The registered client secret.
    pub fn client_secret(&self) -> String {
        self.lock().client_secret.clone()
    }
    /// Replaces the registered client id and secret.
    pub fn set_client(&self, id: &str, secret: &str) {
        let mut s = self.lock();
        s.client_id = id.into();
        s.client_secret = secret.into();
    }
    /// Registers the app's callback URL: `redirect_uri` must then start with it (GitHub's rule), and an authorize
    /// request without `redirect_uri` comes back to it.
    pub fn set_callback_url(&self, url: Option<&str>) {
        self.lock().callback = url.map(str::to_owned);
    }

    /// Adds (or replaces) a user: numeric `id`, `login`, the public `email` shown on `/user` (None = private) and
    /// the `/user/emails` list as `(address, primary, verified)`.
    pub fn add_user(
        &self,
        id: u64,
        login: &str,
        email: Option<&str>,
        emails: Vec<(&str, bool, bool)>,
    ) {
        let emails = emails
            .into_iter()
            .map(|(e, p, v)| (e.to_owned(), p, v))
            .collect();
        let user = User {
            id,
            login: login.into(),
            name: None,
            email: email.map(str::to_owned),
            emails,
            orgs: Vec::new(),
            teams: Vec::new(),
        };
        self.lock().users.insert(id, user);
    }
    /// Sets a user's display `name`.
    pub fn set_name(&self, id: u64, name: &str) {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.name = Some(name.into());
        }
    }
    /// Renames a user's `login`; the numeric id stays, as on GitHub.
    pub fn rename_user(&self, id: u64, new_login: &str) {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.login = new_login.into();
        }
    }
    /// Sets the organisations user `id` belongs to (their `login`s), listed by `/user/orgs` in this order.
    pub fn set_orgs(&self, id: u64, orgs: &[&str]) {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.orgs = orgs.iter().map(|o| (*o).to_owned()).collect();
        }
    }
    /// Sets the teams user `id` belongs to as `(organisation login, team slug)`, listed by `/user/teams` in this
    /// order.
    pub fn set_teams(&self, id: u64, teams: &[(&str, &str)]) {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.teams = teams
                .iter()
                .map(|(o, t)| ((*o).to_owned(), (*t).to_owned()))
                .collect();
        }
    }
    /// From now on, authorizations without a `login_as` parameter log in as user `id`.
    pub fn login_as(&self, id: u64) {
        self.lock().consent = Some(Consent::User(id));
    }
    /// From now on, authorizations without a `login_as` parameter are refused by the user (`error=access_denied`).
    pub fn deny_consent(&self) {
        self.lock().consent = Some(Consent::Deny);
    }
    /// Sets the mode of the token endpoint and of the whole user API.
    pub fn set_mode(&self, mode: Mode) {
        let mut s = self.lock();
        s.token_mode = mode;
        s.api_mode = mode;
        s.groups_mode = mode;
    }
    /// Sets the mode of the token endpoint only.
    pub fn set_token_mode(&self, mode: Mode) {
        self.lock().token_mode = mode;
    }
    /// Sets the mode of the whole user API: `/user`, `/user/emails`, `/user/orgs`, `/user/teams`.
    pub fn set_api_mode(&self, mode: Mode) {
        let mut s = self.lock();
        s.api_mode = mode;
        s.groups_mode = mode;
    }
    /// Sets the mode of `/user/orgs` and `/user/teams` only.
    pub fn set_groups_mode(&self, mode: Mode) {
        self.lock().groups_mode = mode;
    }
    /// Mints a code for user `id` without the browser step, as `/login/oauth/authorize` would.
    pub fn issue_code(
        &self,
        id: u64,
        redirect_uri: Option<&str>,
        scope: &str,
        pkce_challenge: Option<&str>,
    ) -> String {
        let mut s = self.lock();
        let grant = Grant {
            user: id.to_string(),
            client_id: s.client_id.clone(),
            redirect_uri: redirect_uri.map(str::to_owned),
            scope: scope.into(),
            challenge: pkce_challenge.map(str::to_owned),
        };
        s.codes.issue(grant)
    }
    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, GhState> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<GhState>) -> MutexGuard<'_, GhState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}
