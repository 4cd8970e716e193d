//! A real PostgreSQL restart under a running Portcullis (the private server of
//! [`PrivatePostgres`], stopped with a fast shutdown that cuts every connection, then started
//! again on the same port). While it is down: `/readyz` 503, password logins 503 (never 500),
//! `/healthz` 200, tokens already known keep verifying. When it is back, Portcullis recovers by
//! itself (no restart): ready, logins, logouts and the CLI work, nothing was lost. The proxy-cut
//! outage with two replicas and Redis is `degradation.rs`.

use std::time::Duration;

use portcullis_test_support::{Server, eventually};

use super::PrivatePostgres;
use crate::common::*;

async fn status(server: &Server, path: &str) -> u16 {
    http()
        .get(server.url(path))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restart_fails_cleanly_and_recovers_by_itself() {
    let mut pg = PrivatePostgres::start();
    let server = start(Some(config(true)), &TestBackend::postgres_at(pg.url()));
    add_user(&server, &["rita", "--password", "rita-Passw0rd"]);
    let (st, _, body) = password_login(&server, "rita", "rita-Passw0rd").await;
    assert_eq!(st, 200, "{body}");
    let kept = body["access_token"].as_str().unwrap().to_owned();

    pg.stop();
    eventually(Duration::from_secs(30), "not ready", || async {
        (status(&server, "/readyz").await == 503).then_some(())
    })
    .await
    .unwrap();
    for _ in 0..5 {
        let (st, _, body) = password_login(&server, "rita", "rita-Passw0rd").await;
        assert_eq!(st, 503, "a login while the database is down: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
    assert_eq!(status(&server, "/healthz").await, 200);
    assert!(
        is_authenticated(&server, &kept).await,
        "a token seen before the outage keeps verifying"
    );

    pg.restart();
    eventually(Duration::from_secs(30), "ready again", || async {
        (status(&server, "/readyz").await == 200).then_some(())
    })
    .await
    .unwrap();
    let fresh = eventually(Duration::from_secs(30), "logins again", || async {
        let (st, _, body) = password_login(&server, "rita", "rita-Passw0rd").await;
        (st == 200).then(|| body["access_token"].as_str().unwrap().to_owned())
    })
    .await
    .unwrap();
    assert!(is_authenticated(&server, &kept).await);
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&kept)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "logout writes to the store again");
    assert!(!is_authenticated(&server, &kept).await);
    assert!(is_authenticated(&server, &fresh).await);
    add_user(&server, &["sam", "--password", "sam-Passw0rd"]);
    assert_eq!(password_login(&server, "sam", "sam-Passw0rd").await.0, 200);

    let logs = server.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(!logs.contains("rita-Passw0rd"), "no password in the log");
}
