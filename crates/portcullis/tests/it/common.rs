//! Shared helpers: the standard test configuration, starting a server on a backend, and small
//! HTTP helpers.

use std::time::Duration;

use portcullis_test_support::{Backend, PgDatabase, Server, ServerOptions};
use serde_json::Value;

pub const SECRET: &str = "it-secret-0123456789abcdef";
pub const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

/// The configuration used by the core tests: 3 tries per 10 minutes, single login.
pub fn config(multiple_login: bool) -> String {
    format!(
        r#"
monitoring:
  endpoint: http://prometheus:9090
authentication:
  authenticateRateLimiterMaxTries: 3
  authenticateRateLimiterDuration: 10m0s
  loginHistoryRetentionPeriod: 168h
  loginHistoryMaximumEntries: 100
  maximumClockSkew: 10s
  multipleLogin: {multiple_login}
  jwtSecret: "{SECRET}"
  oauthOptions:
    accessTokenMaxAge: 1h
    accessTokenInactivityTimeout: 30m
"#
    )
}

/// A backend plus whatever keeps it alive (the PostgreSQL database is dropped with it).
pub struct TestBackend {
    pub backend: Backend,
    _pg: Option<PgDatabase>,
}

impl TestBackend {
    /// A PostgreSQL server the test manages itself (not a fresh shared database).
    pub fn postgres_at(url: String) -> TestBackend {
        TestBackend {
            backend: Backend::Postgres(url),
            _pg: None,
        }
    }
}

pub async fn backend(postgres: bool) -> TestBackend {
    if postgres {
        let db = PgDatabase::create()
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 must be running");
        TestBackend {
            backend: Backend::Postgres(db.url.clone()),
            _pg: Some(db),
        }
    } else {
        TestBackend {
            backend: Backend::Sqlite,
            _pg: None,
        }
    }
}

/// The options [`start`] uses (for a restart with `Server::start_in`).
pub fn options(yaml: Option<String>, backend: &TestBackend) -> ServerOptions {
    let mut opts = ServerOptions::new(bin(), yaml);
    opts.backend = backend.backend.clone();
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    opts
}

pub fn start(yaml: Option<String>, backend: &TestBackend) -> Server {
    Server::start(options(yaml, backend)).expect("server starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `POST /oauth/token` with a form; returns status, headers and JSON body.
pub async fn token(
    server: &Server,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = http()
        .post(server.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

pub async fn password_login(
    server: &Server,
    user: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    token(
        server,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
    )
    .await
}

/// TokenReview; returns the `status` object.
pub async fn review(server: &Server, token: &str) -> Value {
    let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    let resp = http()
        .post(server.url("/oauth/authenticate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "TokenReview answers 200 whatever the token"
    );
    resp.json::<Value>().await.unwrap()["status"].clone()
}

pub async fn is_authenticated(server: &Server, token: &str) -> bool {
    review(server, token).await["authenticated"] == true
}

pub fn add_user(server: &Server, args: &[&str]) {
    let mut all = vec!["user", "add"];
    all.extend_from_slice(args);
    let out = server.cli(&all).unwrap();
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of one series in the server's `/metrics` (`name{labels}` exactly as rendered, or
/// the bare name); `None` when absent.
pub async fn metric(server: &Server, series: &str) -> Option<f64> {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metric_in(&text, series)
}

/// [`metric`] on an already fetched `/metrics` text.
pub fn metric_in(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A user name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}
