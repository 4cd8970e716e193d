//! Fault test (issue 7): two replicas on PostgreSQL (through a TCP proxy the test can cut) and a
//! private `redis-server` (the test's own process, killed and restarted), under a bounded load.
//! The shared system services are never stopped.
//!
//! Documented degradation (docs/operations.md): Redis down -> everything keeps working,
//! revocations reach the other replicas by store polling, `portcullis_redis_errors_total`
//! counts, and the subscription comes back by itself. PostgreSQL down -> `/readyz` 503, logins
//! 503 (never 500, never a panic), tokens already seen by a replica keep verifying there; full
//! recovery when it returns, with nothing lost or corrupted.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_test_support::{PgDatabase, Server, ServerOptions, eventually};

use crate::common::*;
use crate::faults::pg_proxy::Proxy;

/// A private `redis-server` on a fixed loopback port, stopped by its own pid.
pub(crate) struct PrivateRedis {
    pub(crate) port: u16,
    /// TLS options; when set, the port speaks only TLS.
    tls: Vec<String>,
    /// Other options (the ACL of the default user).
    extra: Vec<String>,
    child: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> PrivateRedis {
        Self::start_with(Vec::new())
    }

    /// Plain TCP, where the default user needs one of `passwords` (`AUTH password`).
    pub(crate) fn start_with_passwords(passwords: &[&str]) -> PrivateRedis {
        let mut acl = vec!["--user".to_owned(), "default".into(), "on".into()];
        acl.extend(passwords.iter().map(|p| format!(">{p}")));
        acl.extend(["~*".into(), "&*".into(), "+@all".into()]);
        let mut r = PrivateRedis {
            port: free_port(),
            tls: Vec::new(),
            extra: acl,
            child: None,
        };
        r.restart();
        r
    }

    /// TLS only on the port, with the server certificate and key (PEM files) `cert` and `key`;
    /// clients need not present certificates.
    pub(crate) fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> PrivateRedis {
        let arg = |p: &std::path::Path| p.display().to_string();
        Self::start_with(vec![
            "--tls-cert-file".into(),
            arg(cert),
            "--tls-key-file".into(),
            arg(key),
            "--tls-auth-clients".into(),
            "no".into(),
        ])
    }

    fn start_with(tls: Vec<String>) -> PrivateRedis {
        let mut r = PrivateRedis {
            port: free_port(),
            tls,
            extra: Vec::new(),
            child: None,
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        let port = self.port.to_string();
        let listen = if self.tls.is_empty() {
            vec!["--port", &port]
        } else {
            vec!["--port", "0", "--tls-port", &port]
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1"])
            .args(&self.tls)
            .args(&self.extra)
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_replica(db_url: &str, redis_port: u16) -> Server {
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.backend = portcullis_test_support::Backend::Postgres(db_url.to_string());
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    opts.env.push((
        "PORTCULLIS_REDIS".into(),
        format!("redis://127.0.0.1:{redis_port}/0"),
    ));
    Server::start(opts).expect("replica starts")
}

async fn status(url: String) -> u16 {
    http()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Runs `n` requests, `width` at a time, each produced by `make(i)`; returns their statuses.
async fn load<F, Fut>(n: usize, width: usize, make: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + width).min(n))
            .map(|j| tokio::spawn(make(j)))
            .collect();
        for t in batch {
            out.push(t.await.unwrap());
        }
        i += width;
    }
    out
}

async fn login_status(server: &Server, user: &str, password: &str) -> u16 {
    password_login(server, user, password).await.0
}

fn subscriptions(server: &Server) -> usize {
    server
        .logs()
        .matches("listening for revocation notices on Redis")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_then_postgres_outage_degrades_and_recovers() {
    let pg = PgDatabase::create().await.unwrap();
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = pg
        .url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let mut redis = PrivateRedis::start();
    let mut a = start_replica(&via_proxy, redis.port);
    let mut b = start_replica(&via_proxy, redis.port);
    add_user(&a, &["pia", "--password", "pia-Passw0rd"]);
    for s in [&a, &b] {
        eventually(Duration::from_secs(10), "subscribed", || async {
            (subscriptions(s) == 1).then_some(())
        })
        .await
        .unwrap();
    }
    let (st, _, body) = password_login(&a, "pia", "pia-Passw0rd").await;
    assert_eq!(st, 200, "{body}");
    let kept = body["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&b, &kept).await);

    // --- Redis down: logins and reviews unaffected; revocations travel by store polling. ---
    redis.stop();
    let (a_url, b_url, tok) = (
        a.url("/oauth/authenticate"),
        b.url("/oauth/authenticate"),
        kept.clone(),
    );
    let statuses = load(200, 20, |i| {
        let url = if i % 2 == 0 { a_url.clone() } else { b_url.clone() };
        let tok = tok.clone();
        async move {
            let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": tok}});
            let r = http().post(url).json(&body).send().await.unwrap();
            let ok = r.json::<serde_json::Value>().await.unwrap()["status"]["authenticated"] == true;
            if ok { 200 } else { 401 }
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for _ in 0..3 {
        assert_eq!(login_status(&b, "pia", "pia-Passw0rd").await, 200);
    }
    let (_, _, body) = password_login(&a, "pia", "pia-Passw0rd").await;
    let dropped = body["access_token"].as_str().unwrap().to_string();
    assert!(is_authenticated(&b, &dropped).await);
    http()
        .get(a.url("/oauth/logout"))
        .bearer_auth(&dropped)
        .send()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "logout reaches B by polling",
        || async { (!is_authenticated(&b, &dropped).await).then_some(()) },
    )
    .await
    .unwrap();
    assert!(metric(&a, "portcullis_redis_errors_total{op=\"publish\"}").await >= Some(1.0));
    assert_eq!(
        status(a.url("/readyz")).await,
        200,
        "Redis is not needed to be ready"
    );

    // --- Redis back: both replicas subscribe again by themselves. ---
    redis.restart();
    for s in [&a, &b] {
        eventually(Duration::from_secs(30), "resubscribed", || async {
            (subscriptions(s) >= 2).then_some(())
        })
        .await
        .unwrap();
    }

    // --- PostgreSQL down: not ready, logins 503, known tokens still verify, no panic. ---
    proxy.cut();
    for s in [&a, &b] {
        eventually(Duration::from_secs(20), "not ready", || async {
            (status(s.url("/readyz")).await == 503).then_some(())
        })
        .await
        .unwrap();
    }
    let (a_tok, b_tok) = (a.url("/oauth/token"), b.url("/oauth/token"));
    let statuses = load(40, 20, |i| {
        let url = if i % 2 == 0 {
            a_tok.clone()
        } else {
            b_tok.clone()
        };
        async move {
            let form = [
                ("grant_type", "password"),
                ("username", "pia"),
                ("password", "pia-Passw0rd"),
            ];
            let r = http().post(url).form(&form).send().await.unwrap();
            r.status().as_u16()
        }
    })
    .await;
    let errors: Vec<String> = a
        .logs()
        .lines()
        .filter(|l| l.contains("\"ERROR\""))
        .map(str::to_owned)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 503),
        "logins during the outage: {statuses:?}\n{}",
        errors.join("\n")
    );
    // The sign-in page says the server cannot check the password now, not that it is wrong.
    let csrf = "csrf-token-during-the-outage";
    let page = http()
        .post(a.url("/login"))
        .header("cookie", format!("portcullis_csrf={csrf}"))
        .form(&[
            ("csrf_token", csrf),
            ("username", "pia"),
            ("password", "pia-Passw0rd"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 503);
    let body = page.text().await.unwrap();
    assert!(body.contains("try again later"), "{body}");
    assert!(!body.contains("Incorrect user name or password"), "{body}");
    let statuses = load(200, 20, |i| {
        let url = if i % 2 == 0 {
            a.url("/healthz")
        } else {
            b.url("/healthz")
        };
        async move { status(url).await }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        is_authenticated(&b, &kept).await,
        "a token B has seen keeps verifying on B"
    );
    assert!(
        !is_authenticated(&b, &dropped).await,
        "a revoked one stays refused"
    );
    assert!(
        metric(
            &a,
            "portcullis_store_errors_total{op=\"request\",kind=\"unavailable\"}"
        )
        .await
            >= Some(1.0)
    );
    assert!(a.is_running() && b.is_running(), "no replica crashed");

    // --- PostgreSQL back: ready and serving again by itself, nothing lost. ---
    proxy.restore();
    for s in [&a, &b] {
        eventually(Duration::from_secs(30), "ready again", || async {
            (status(s.url("/readyz")).await == 200).then_some(())
        })
        .await
        .unwrap();
        eventually(Duration::from_secs(30), "logins again", || async {
            (login_status(s, "pia", "pia-Passw0rd").await == 200).then_some(())
        })
        .await
        .unwrap();
    }
    assert!(is_authenticated(&a, &kept).await);
    assert!(!is_authenticated(&a, &dropped).await);
    let out = a.cli(&["user", "list"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pia"));
    assert_eq!(
        login_status(&a, "pia", "wrong").await,
        400,
        "the lockout table still works"
    );

    for s in [&mut a, &mut b] {
        assert!(s.is_running());
        let logs = s.logs();
        assert!(!logs.contains("panicked"), "{logs}");
        for secret in [
            SECRET,
            "pia-Passw0rd",
            ADMIN_PASSWORD,
            kept.as_str(),
            dropped.as_str(),
        ] {
            assert!(!logs.contains(secret), "a secret or token is in the log");
        }
    }
}
