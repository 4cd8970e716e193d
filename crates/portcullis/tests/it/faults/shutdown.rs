//! SIGTERM while PostgreSQL stops answering: the database's TCP connections stay open but nothing
//! comes back (a frozen host, a black-holed network path). Requests that were talking to it hang,
//! holding their pooled connections, so neither the HTTP server's graceful shutdown, nor the last
//! flush of session activity, nor closing the pool (which waits for every connection to come back)
//! would ever finish: the process hung on SIGTERM until killed. Each of these steps now has 10 s
//! (`http_server.rs` `SHUTDOWN_GRACE`, `serve.rs` `within_shutdown_grace`), so the process exits
//! within about 30 s. docs/operations.md ("Shutdown").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use portcullis_test_support::{Backend, PgDatabase, Server, ServerOptions, eventually};

use super::pg_proxy::Proxy;
use crate::common::*;

/// Longest the test waits for the process to exit after SIGTERM: the three grace periods
/// (10 s each) with room to spare. Without them the process never exits.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

/// Clients that log in over and over until SIGTERM, so that when the database freezes some of
/// their requests are in the middle of a query (or start one on a connection the pool hands out
/// without a ping), and hang there.
const CLIENTS: usize = 8;

const POOL_STEP_WARNING: &str = "shutdown step did not finish within its grace period";

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_within_the_grace_periods_when_postgres_stops_answering() {
    let pg = PgDatabase::create()
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 must be running");
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_proxy = pg
        .url
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.backend = Backend::Postgres(via_proxy);
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    let mut server = Server::start(opts).expect("server starts");

    // A few sessions this replica has seen: their tokens verify from memory, and each review
    // leaves session activity to write at shutdown.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (status, _, body) = password_login(&server, "admin", ADMIN_PASSWORD).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }

    // Password logins under load, until SIGTERM.
    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, stop, succeeded) =
                (server.url("/oauth/token"), stop.clone(), succeeded.clone());
            tokio::spawn(async move {
                let form = [
                    ("grant_type", "password"),
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                ];
                while !stop.load(Ordering::SeqCst) {
                    let sent = http().post(&url).form(&form).send().await;
                    if sent.is_ok_and(|r| r.status() == 200) {
                        succeeded.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(30), "logins under load", || async {
        (succeeded.load(Ordering::SeqCst) >= 2 * CLIENTS).then_some(())
    })
    .await
    .unwrap();

    // The database stops answering, in the middle of that load.
    proxy.freeze();
    for t in &tokens {
        assert!(
            is_authenticated(&server, t).await,
            "a token of a session this replica has seen keeps verifying"
        );
    }

    stop.store(true, Ordering::SeqCst);
    let signalled = Instant::now();
    server.terminate().expect("SIGTERM sent");
    let status = eventually(EXIT_DEADLINE, "the server exits after SIGTERM", || {
        let exited = server.exit_status();
        async move { exited }
    })
    .await
    .unwrap_or_else(|e| panic!("{e} (the database is frozen); its log:\n{}", server.logs()));
    let took = signalled.elapsed();
    for c in clients {
        c.abort();
    }

    // The process has exited: its log is complete once the reader has seen the last line.
    eventually(Duration::from_secs(10), "the last log line", || async {
        server.logs().contains("portcullis stopped").then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; the log:\n{}", server.logs()));
    let logs = server.logs();
    assert!(
        status.success(),
        "exit status {status} after {took:?}; the log:\n{logs}"
    );
    // Proof that the shutdown met the frozen database: closing the pool waited for connections
    // that never came back, until its grace period ended.
    assert!(
        logs.lines()
            .any(|l| l.contains(POOL_STEP_WARNING) && l.contains("closing the database pool")),
        "no grace-period warning for closing the pool (exited after {took:?}); the log:\n{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    eprintln!("exited {took:?} after SIGTERM with PostgreSQL frozen");
}
