//! `kill -9` under load, on SQLite and on PostgreSQL. Five clients run at once: two create users
//! by federated login (fake GitHub, `mappingMethod: auto`: a user, an identity link and a login
//! record each), three log in with passwords, refresh, and log out every third session. Each
//! client keeps what the server *acknowledged* (a 2xx answer). Once enough is acknowledged the
//! server is killed with SIGKILL in the middle of that load and restarted on the same database.
//! Then: SQLite's `PRAGMA integrity_check` is `ok`; every acknowledged user, link and login record
//! is there; every token whose logout was acknowledged is refused by TokenReview; every token of
//! a session that was never logged out is still accepted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use portcullis_test_support::{Server, eventually};
use portcullis_test_upstreams::FakeGitHub;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use super::sqlite_integrity;
use crate::common::*;
use crate::federation::{PUBLIC, callback_url, github, records, show_user, yaml};

/// GitHub ids of the users the federated clients log in as.
const FIRST_GH_ID: u64 = 5000;
const GH_USERS: u64 = 400;
/// Acknowledged operations before the kill.
const ACKS_BEFORE_KILL: usize = 60;

/// What one client saw acknowledged, and anything unexpected before the kill.
#[derive(Debug, Default)]
struct Acked {
    /// `(user name, GitHub id)` of users created by an acknowledged federated login.
    created: Vec<(String, u64)>,
    /// Acknowledged successful logins per user.
    logins: BTreeMap<String, usize>,
    /// Tokens of sessions never logged out: must verify after the restart.
    valid: Vec<String>,
    /// Tokens of sessions whose logout was acknowledged: must be refused.
    revoked: Vec<String>,
    /// Failures before the kill (there must be none).
    unexpected: Vec<String>,
}

struct Load {
    base: String,
    http: reqwest::Client,
    killed: AtomicBool,
    acks: AtomicUsize,
    next_gh: AtomicU64,
}

impl Load {
    fn ack(&self) {
        self.acks.fetch_add(1, Ordering::SeqCst);
    }

    /// An error: unexpected unless the server has been killed.
    fn failed(&self, acked: &mut Acked, what: String) {
        if !self.killed.load(Ordering::SeqCst) {
            acked.unexpected.push(what);
        }
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<(String, String), String> {
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        match (
            body["access_token"].as_str(),
            body["refresh_token"].as_str(),
        ) {
            (Some(a), Some(r)) if status == 200 => Ok((a.to_owned(), r.to_owned())),
            _ => Err(format!("HTTP {status}: {body}")),
        }
    }

    async fn logout(&self, access: &str) -> Result<(), String> {
        let resp = self
            .http
            .get(format!("{}/oauth/logout", self.base))
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(format!("logout: HTTP {s}")),
        }
    }

    /// A whole federated login as GitHub user `id`; the session token when the callback
    /// succeeded. Never panics: the server may die at any step.
    async fn federated_login(&self, id: u64) -> Result<String, String> {
        let get = |url: String, cookie: Option<String>| {
            let mut req = self.http.get(url);
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            async move { req.send().await.map_err(|e| e.to_string()) }
        };
        let location = |r: &reqwest::Response| {
            r.headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| format!("HTTP {} without a Location", r.status()))
        };
        let cookie = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|c| c.starts_with(&format!("{name}=")))
                .and_then(|c| c.split(';').next())
                .map(str::to_owned)
        };
        let start = get(format!("{}/login/github", self.base), None).await?;
        let state = cookie(&start, "portcullis_login_state").ok_or("no login state cookie")?;
        let at_github = get(format!("{}&login_as={id}", location(&start)?), None).await?;
        let back = location(&at_github)?.replace(PUBLIC, &self.base);
        let done = get(back, Some(state)).await?;
        if done.status() != 303 {
            return Err(format!("callback: HTTP {}", done.status()));
        }
        let session = cookie(&done, "portcullis_session").ok_or("no session cookie")?;
        Ok(session.trim_start_matches("portcullis_session=").to_owned())
    }
}

/// Creates users by federated login until the server dies.
async fn creator(load: Arc<Load>) -> Acked {
    let mut acked = Acked::default();
    loop {
        let id = load.next_gh.fetch_add(1, Ordering::SeqCst);
        if id >= FIRST_GH_ID + GH_USERS {
            break;
        }
        match load.federated_login(id).await {
            Ok(token) => {
                let name = format!("fed{id}");
                *acked.logins.entry(name.clone()).or_default() += 1;
                acked.created.push((name, id));
                acked.valid.push(token);
                load.ack();
            }
            Err(e) => {
                load.failed(&mut acked, format!("federated login {id}: {e}"));
                break;
            }
        }
    }
    acked
}

/// Logs in, refreshes and logs out every third session, as `user`, until the server dies.
async fn password_client(load: Arc<Load>, user: String, password: String) -> Acked {
    let mut acked = Acked::default();
    for n in 0.. {
        let form = [
            ("grant_type", "password"),
            ("username", user.as_str()),
            ("password", password.as_str()),
        ];
        let (access, refresh) = match load.token(&form).await {
            Ok(t) => t,
            Err(e) => {
                load.failed(&mut acked, format!("login {user}: {e}"));
                break;
            }
        };
        *acked.logins.entry(user.clone()).or_default() += 1;
        load.ack();
        let mut tokens = vec![access];
        let refreshed = load
            .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .await;
        match refreshed {
            Ok((access, _)) => {
                tokens.push(access);
                load.ack();
            }
            Err(e) => {
                load.failed(&mut acked, format!("refresh {user}: {e}"));
                acked.valid.extend(tokens);
                break;
            }
        }
        if n % 3 != 0 {
            acked.valid.extend(tokens);
            continue;
        }
        // A logout that is not acknowledged may or may not have happened: not checked.
        match load.logout(&tokens[0]).await {
            Ok(()) => {
                acked.revoked.extend(tokens);
                load.ack();
            }
            Err(e) => {
                load.failed(&mut acked, format!("logout {user}: {e}"));
                break;
            }
        }
    }
    acked
}

async fn kill_under_load_then_check(postgres: bool) {
    let gh = FakeGitHub::start().await;
    for id in FIRST_GH_ID..FIRST_GH_ID + GH_USERS {
        gh.add_user(id, &format!("fed{id}"), None, vec![]);
    }
    let b = backend(postgres).await;
    let cfg = yaml(&[github(
        &gh,
        "github",
        "auto",
        Some(&callback_url("github")),
        "",
    )]);
    let server = start(Some(cfg.clone()), &b);
    let users: Vec<(String, String)> = (0..3)
        .map(|i| (format!("pw{i}"), format!("pw-Passw0rd-{i}")))
        .collect();
    for (name, password) in &users {
        add_user(&server, &[name, "--password", password]);
    }

    let load = Arc::new(Load {
        base: server.base.clone(),
        http: http(),
        killed: AtomicBool::new(false),
        acks: AtomicUsize::new(0),
        next_gh: AtomicU64::new(FIRST_GH_ID),
    });
    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(creator(load.clone())));
    }
    for (name, password) in users {
        tasks.push(tokio::spawn(password_client(load.clone(), name, password)));
    }
    eventually(Duration::from_secs(120), "acknowledged load", || async {
        (load.acks.load(Ordering::SeqCst) >= ACKS_BEFORE_KILL).then_some(())
    })
    .await
    .unwrap();
    load.killed.store(true, Ordering::SeqCst);
    let dir = server.stop(); // SIGKILL, by pid, with requests in flight
    let mut all = Acked::default();
    for t in tasks {
        let a = t.await.unwrap();
        all.created.extend(a.created);
        for (user, n) in a.logins {
            *all.logins.entry(user).or_default() += n;
        }
        all.valid.extend(a.valid);
        all.revoked.extend(a.revoked);
        all.unexpected.extend(a.unexpected);
    }
    assert!(all.unexpected.is_empty(), "{:#?}", all.unexpected);
    assert!(!all.created.is_empty() && !all.revoked.is_empty() && !all.valid.is_empty());

    let db = dir.path().join("portcullis.db");
    if !postgres {
        assert_eq!(sqlite_integrity(&db).await, "ok", "right after the kill");
    }
    let server = Server::start_in(options(Some(cfg), &b), dir).expect("restarts");

    let listed = server.cli(&["user", "list", "-o", "json"]).unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    for (name, id) in &all.created {
        assert!(names.contains(&name.as_str()), "{name} was lost");
        let user = show_user(&server, name).unwrap();
        let linked = user["identities"].as_array().unwrap().iter().any(|i| {
            i["provider"] == "github" && i["uid"].as_str() == Some(id.to_string().as_str())
        });
        assert!(linked, "{name}'s link was lost: {user}");
    }
    for (user, n) in &all.logins {
        let successes = records(&server, user)
            .await
            .iter()
            .filter(|r| r["spec"]["success"] == true)
            .count();
        assert!(
            successes >= *n,
            "{user}: {successes} records for {n} logins"
        );
    }
    for token in &all.revoked {
        assert!(
            !is_authenticated(&server, token).await,
            "a token whose logout was acknowledged is accepted again"
        );
    }
    for token in &all.valid {
        assert!(
            is_authenticated(&server, token).await,
            "an acknowledged, never revoked token is refused"
        );
    }
    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    let dir = server.stop();
    if !postgres {
        assert_eq!(sqlite_integrity(&db).await, "ok", "after the restart");
    }
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_under_load_sqlite_loses_nothing_acknowledged() {
    kill_under_load_then_check(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_under_load_postgres_loses_nothing_acknowledged() {
    kill_under_load_then_check(true).await;
}
