//! Credential stuffing: many names from one address meet the per-address limit; one name from
//! many addresses meets the account lock, which a stranger cannot stretch beyond
//! `authenticateRateLimiterDuration`.

use std::time::Duration;

use portcullis_test_support::eventually;

use super::{client_from, login_with};
use crate::common::*;

/// The core settings (3 tries per 10 minutes) with a per-address limit of 6.
fn stuffing_config(portcullis_extra: &str) -> String {
    format!(
        "{}portcullis:\n  ipMaxFailures: 6\n{portcullis_extra}",
        config(true)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn many_names_from_one_address_meet_the_address_limit() {
    let b = backend(false).await;
    let mut server = start(Some(stuffing_config("")), &b);
    add_user(&server, &["alice", "--password", "alice-Passw0rd"]);
    let attacker = client_from("127.0.0.2");
    // Six different names, each tried once: no account reaches its own limit of 3. A forged
    // X-Forwarded-For does not help: the peer is not a trusted proxy, so the header is ignored.
    for i in 0..6 {
        let name = format!("user{i}");
        let forged = format!("198.51.100.{i}");
        let (status, _, body) = login_with(
            &attacker,
            &server,
            &name,
            "Winter2024!",
            &[("X-Forwarded-For", &forged), ("X-Real-IP", &forged)],
        )
        .await;
        assert_eq!(status, 400, "attempt {i}: {body}");
    }
    // The seventh name is refused before any password check, with Retry-After; so is a real
    // user's right password from that address.
    let (status, retry, _) = login_with(&attacker, &server, "user6", "x", &[]).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| (1..=600).contains(&r)), "{retry:?}");
    let (status, _, _) = login_with(&attacker, &server, "alice", "alice-Passw0rd", &[]).await;
    assert_eq!(
        status, 429,
        "the address is blocked whoever logs in from it"
    );

    // Real users elsewhere are unaffected, and alice's account itself was never locked.
    let colleague = client_from("127.0.0.3");
    let (status, _, body) = login_with(&colleague, &server, "alice", "alice-Passw0rd", &[]).await;
    assert_eq!(status, 200, "{body}");

    // After the window the address may try again.
    server.advance_clock(Duration::from_secs(601)).unwrap();
    eventually(
        Duration::from_secs(10),
        "the address limit expires",
        || async {
            let (status, _, _) =
                login_with(&attacker, &server, "alice", "alice-Passw0rd", &[]).await;
            (status == 200).then_some(())
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_name_from_many_addresses_locks_only_for_the_window() {
    let b = backend(false).await;
    // Behind a trusted proxy (the test's 127.0.0.1): the client address is X-Forwarded-For.
    let mut server = start(
        Some(stuffing_config("  trustedProxies: [\"127.0.0.1\"]\n")),
        &b,
    );
    add_user(&server, &["bob", "--password", "bob-Passw0rd!"]);
    let proxy = client_from("127.0.0.1");
    let from = |n: u32| format!("203.0.113.{n}");
    for n in 1..=3 {
        let (status, _, _) = login_with(
            &proxy,
            &server,
            "bob",
            "guess",
            &[("X-Forwarded-For", &from(n))],
        )
        .await;
        assert_eq!(status, 400);
    }
    // Locked for every address, even with the right password.
    let (status, retry, _) = login_with(
        &proxy,
        &server,
        "bob",
        "bob-Passw0rd!",
        &[("X-Forwarded-For", &from(50))],
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| (590..=600).contains(&r)), "{retry:?}");

    // The attacker keeps guessing from fresh addresses during the lock, at its start and half
    // way through: refused without a password check, and the lock is not extended.
    for n in 4..10 {
        let (status, _, _) = login_with(
            &proxy,
            &server,
            "bob",
            "guess",
            &[("X-Forwarded-For", &from(n))],
        )
        .await;
        assert_eq!(status, 429);
    }
    server.advance_clock(Duration::from_secs(300)).unwrap();
    eventually(Duration::from_secs(10), "the clock moved", || async {
        let (status, retry, _) = login_with(
            &proxy,
            &server,
            "bob",
            "guess",
            &[("X-Forwarded-For", &from(10))],
        )
        .await;
        (status == 429 && retry.is_some_and(|r| r <= 300)).then_some(())
    })
    .await
    .unwrap();
    for n in 11..20 {
        let (status, _, _) = login_with(
            &proxy,
            &server,
            "bob",
            "guess",
            &[("X-Forwarded-For", &from(n))],
        )
        .await;
        assert_eq!(status, 429);
    }

    // One window after the lock began, bob is back, whatever was tried meanwhile.
    server.advance_clock(Duration::from_secs(301)).unwrap();
    eventually(
        Duration::from_secs(10),
        "the lock ends with its window",
        || async {
            let (status, _, _) = login_with(
                &proxy,
                &server,
                "bob",
                "bob-Passw0rd!",
                &[("X-Forwarded-For", &from(60))],
            )
            .await;
            (status == 200).then_some(())
        },
    )
    .await
    .unwrap();
}
