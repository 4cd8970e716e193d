//! The soak load of `bench/soak.sh` (`portcullis_bench::soak`), CI-sized: 20 seconds against the
//! debug binary on SQLite and on PostgreSQL, so the soak code itself is tested. Zero unexpected
//! errors, every operation of the mix ran, memory was sampled, and no error in the server's log.

use std::time::Duration;

use portcullis_bench::soak::{Mix, SoakConfig, run};

use crate::common::*;

async fn soak_on(postgres: bool) {
    let b = backend(postgres).await;
    let server = start(Some(config(true)), &b);
    let users: Vec<(String, String)> = (0..3)
        .map(|i| (unique_name("soak"), format!("soak-Passw0rd-{i}")))
        .collect();
    for (name, password) in &users {
        add_user(&server, &[name, "--password", password]);
    }
    let report = run(SoakConfig {
        base: server.base.clone(),
        pid: Some(server.pid()),
        duration: Duration::from_secs(20),
        workers: 6,
        users,
        sample_every: Duration::from_millis(500),
        // More logouts than the real mix, so a short run exercises every path many times.
        mix: Mix {
            verify: 40,
            refresh: 5,
            relogin: 2,
        },
    })
    .await
    .expect("the soak runs");
    let json = report.to_json();
    assert_eq!(report.unexpected, 0, "{json:#}");
    for op in ["login", "refresh", "verify", "logout"] {
        assert!(
            json["ops"][op]["count"].as_u64() > Some(2),
            "{op} ran: {json:#}"
        );
    }
    assert!(report.rss_kib.len() >= 10, "memory was sampled: {json:#}");
    let growth = report.rss_growth().expect("first and last windows");
    assert!(growth < 3.0, "no runaway memory in 20 s: {json:#}");
    let logs = server.logs();
    assert!(!logs.contains("\"ERROR\""), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_sqlite_ci_sized() {
    soak_on(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn soak_postgres_ci_sized() {
    soak_on(true).await;
}
