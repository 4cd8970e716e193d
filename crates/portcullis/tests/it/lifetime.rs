//! `portcullis.sessionMaxLifetime` (ASVS 3.3.2, 10.4.8): however often a client refreshes, a
//! session ends at its absolute lifetime and the user signs in again. Time is the injected clock
//! (`PORTCULLIS_TEST_CLOCK_FILE`).

use std::time::Duration;

use portcullis_test_support::{Server, eventually};
use serde_json::Value;

use crate::common::*;
use crate::federation::claims;

const CAROL: &str = "carol-Passw0rd";
const PROBE: &str = "probe-Passw0rd";

fn iat(token: &str) -> i64 {
    claims(token)["iat"].as_i64().unwrap()
}

/// Waits until the server's clock reads at least `at_least_s`, probing with a login's `iat`.
async fn wait_for_clock(server: &Server, at_least_s: i64) {
    eventually(
        Duration::from_secs(10),
        "the server clock to move",
        || async {
            let (status, _, body) = password_login(server, "probe", PROBE).await;
            assert_eq!(status, 200, "{body}");
            (iat(body["access_token"].as_str().unwrap()) >= at_least_s).then_some(())
        },
    )
    .await
    .unwrap();
}

async fn refresh(server: &Server, refresh_token: &str) -> (u16, Value) {
    let (status, _, body) = token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshes_cannot_extend_a_session_past_its_maximum_lifetime() {
    // Tokens live 1 h, no inactivity timeout, sessions at most 3 h.
    let yaml = format!(
        "{}portcullis:\n  sessionMaxLifetime: 3h\n",
        config(true).replace(
            "accessTokenInactivityTimeout: 30m",
            "accessTokenInactivityTimeout: 0s"
        )
    );
    let b = backend(false).await;
    let mut server = start(Some(yaml), &b);
    add_user(&server, &["carol", "--password", CAROL]);
    add_user(&server, &["probe", "--password", PROBE]);
    let (status, _, body) = password_login(&server, "carol", CAROL).await;
    assert_eq!(status, 200, "{body}");
    let start = iat(body["access_token"].as_str().unwrap());
    let end = start + 3 * 3600;
    let mut refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let mut access = String::new();

    // Every 50 minutes a refresh, each one a fresh hour of token life ...
    for step in 1..=3 {
        server.advance_clock(Duration::from_secs(50 * 60)).unwrap();
        wait_for_clock(&server, start + step * 50 * 60).await;
        let (status, body) = refresh(&server, &refresh_token).await;
        assert_eq!(status, 200, "refresh {step}: {body}");
        refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        access = body["access_token"].as_str().unwrap().to_owned();
    }
    // ... except that at 150 minutes the tokens end with the session, at 180, not at 210.
    let access_claims = claims(&access);
    assert_eq!(access_claims["exp"].as_i64(), Some(end), "{access_claims}");
    assert_eq!(
        claims(&refresh_token)["exp"].as_i64(),
        Some(end),
        "the refresh token too"
    );
    assert!(is_authenticated(&server, &access).await);

    // At 200 minutes the access token would still live without the limit (issued at 150 for an
    // hour); it has expired, and the refresh grant is refused: sign in again.
    server.advance_clock(Duration::from_secs(50 * 60)).unwrap();
    wait_for_clock(&server, start + 200 * 60).await;
    assert_eq!(review(&server, &access).await["error"], "token has expired");
    let (status, body) = refresh(&server, &refresh_token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"], "the refresh token has expired",
        "its exp was cut at the session's end"
    );
    // A new sign-in starts a new session with a new lifetime.
    let (status, _, body) = password_login(&server, "carol", CAROL).await;
    assert_eq!(status, 200);
    assert!(is_authenticated(&server, body["access_token"].as_str().unwrap()).await);
}
