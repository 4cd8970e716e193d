//! Passwords on every path that sets or checks one: the account page's password-change form
//! under the per-account lockout (spec §10 item 18), and non-ASCII passwords (ASVS 2.1.4) set
//! with the CLI and the account page, compared exactly as typed.

use std::time::Duration;

use portcullis_test_support::{Server, eventually};
use serde_json::Value;

use crate::common::*;
use crate::federation::{Browser, PUBLIC, records, yaml};
use crate::logout::sign_in;

const ALICE: &str = "alice-Passw0rd";
const BOB: &str = "bob-Passw0rd!";
const NEW: &str = "alice-NewPassw0rd";

/// The federation tests' configuration (public URL for the pages) with `tries` failures per
/// 10 minutes per account.
fn config_with_tries(tries: u32) -> String {
    let cfg = yaml(&[]).replace(
        "authenticateRateLimiterMaxTries: 5",
        &format!(
            "authenticateRateLimiterMaxTries: {tries}\n  authenticateRateLimiterDuration: 10m0s"
        ),
    );
    assert!(cfg.contains(&format!("authenticateRateLimiterMaxTries: {tries}")));
    cfg
}

/// Posts the password-change form of the account page.
async fn change(br: &mut Browser, current: &str, new: &str) -> crate::federation::Hop {
    let csrf = br.cookie("portcullis_csrf").unwrap();
    br.post_form(
        &format!("{PUBLIC}/account/password"),
        &[
            ("csrf_token", &csrf),
            ("current", current),
            ("new", new),
            ("repeat", new),
        ],
    )
    .await
}

#[track_caller]
fn wrong_current(hop: &crate::federation::Hop) {
    assert_eq!(hop.status, 403, "{}", hop.body);
    assert!(
        hop.body.contains("The current password is incorrect."),
        "{}",
        hop.body
    );
}

#[track_caller]
fn form_locked(hop: &crate::federation::Hop) {
    assert_eq!(hop.status, 429, "{}", hop.body);
    assert!(
        hop.body.contains("Too many failed attempts."),
        "{}",
        hop.body
    );
}

#[track_caller]
fn grant_locked(got: &(u16, reqwest::header::HeaderMap, Value)) {
    let (status, headers, body) = got;
    assert_eq!(*status, 429, "{body}");
    let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "Retry-After: {retry}");
}

/// Waits until the account's lock is over: the right password logs in again.
async fn until_unlocked(server: &Server, user: &str, password: &str) {
    eventually(Duration::from_secs(10), "the lock ends", || async {
        let (status, _, _) = password_login(server, user, password).await;
        (status == 200).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_current_passwords_on_the_password_form_lock_the_account() {
    let b = backend(false).await;
    let mut server = start(Some(config_with_tries(3)), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    add_user(&server, &["bob", "--password", BOB]);
    let mut br = Browser::new(&server);
    let session = sign_in(&mut br, "alice", ALICE).await;

    // Three wrong current passwords: each refused as wrong...
    for guess in ["guess-one-1", "guess-two-2", "guess-three-3"] {
        wrong_current(&change(&mut br, guess, NEW).await);
    }
    // ...and then the account is locked: the form refuses even the right current password,
    // and the password grant and the sign-in form refuse the right password (429).
    form_locked(&change(&mut br, ALICE, NEW).await);
    grant_locked(&password_login(&server, "alice", ALICE).await);
    let mut other = Browser::new(&server);
    let login = format!("{PUBLIC}/login");
    other.get(&login).await;
    let csrf = other.cookie("portcullis_csrf").unwrap();
    let page = other
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", ALICE),
            ],
        )
        .await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.set_cookie("portcullis_session").is_none());
    // The lock is alice's alone; her session is not ended by it.
    assert_eq!(password_login(&server, "bob", BOB).await.0, 200);
    assert!(is_authenticated(&server, &session).await);
    let failed: Vec<Value> = records(&server, "alice")
        .await
        .into_iter()
        .filter(|r| r["spec"]["reason"] == "incorrect password (password change)")
        .collect();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    assert!(failed.iter().all(|r| r["spec"]["success"] == false));

    // One window later: the password was not changed while locked.
    server.advance_clock(Duration::from_secs(601)).unwrap();
    until_unlocked(&server, "alice", ALICE).await;
    // The form and the logins share one counter: two failed logins (one of them the refused
    // new password) and one wrong current password on the form lock again.
    let (status, _, body) = password_login(&server, "alice", NEW).await;
    assert_eq!(status, 400, "the new password was never set: {body}");
    assert_eq!(password_login(&server, "alice", "wrong-wrong").await.0, 400);
    wrong_current(&change(&mut br, "guess-four-4", NEW).await);
    form_locked(&change(&mut br, ALICE, NEW).await);
    grant_locked(&password_login(&server, "alice", ALICE).await);

    // After that window the right current password changes it, and every session ends.
    server.advance_clock(Duration::from_secs(601)).unwrap();
    until_unlocked(&server, "alice", ALICE).await;
    let done = change(&mut br, ALICE, NEW).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location().as_deref(),
        Some("http://portcullis.test/login?notice=password_changed")
    );
    assert!(!is_authenticated(&server, &session).await);
    assert_eq!(password_login(&server, "alice", NEW).await.0, 200);
    assert_eq!(password_login(&server, "alice", ALICE).await.0, 400);
}

/// The password composed (NFC), with its two umlauts, CJK and an emoji outside the BMP.
const UNICODE: &str = "p\u{e4}ssw\u{f6}rd-密码-🔐";
/// The same text decomposed (NFD): it looks identical but is another byte sequence.
const UNICODE_NFD: &str = "pa\u{308}sswo\u{308}rd-密码-🔐";
const CYRILLIC: &str = "\u{dc}nic\u{f6}de-пароль-パスワード";
/// The password set on the account page: a German sharp s and a key emoji.
const CHANGED: &str = "neues-Passwort-stra\u{df}e-🔑";

#[track_caller]
fn refused_login(got: (u16, reqwest::header::HeaderMap, Value), what: &str) {
    let (status, _, body) = got;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("incorrect username or password")),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_ascii_passwords_work_exactly_as_typed() {
    assert_ne!(UNICODE, UNICODE_NFD);
    assert_eq!(UNICODE.chars().count() + 2, UNICODE_NFD.chars().count());
    let b = backend(false).await;
    // Room for the wrong spellings below without meeting the lockout.
    let server = start(Some(config_with_tries(20)), &b);

    // Set with the CLI, as an argument: only the exact spelling logs in.
    add_user(&server, &["nina", "--password", UNICODE]);
    let (status, _, body) = password_login(&server, "nina", UNICODE).await;
    assert_eq!(status, 200, "{body}");
    refused_login(
        password_login(&server, "nina", UNICODE_NFD).await,
        "decomposed (NFD)",
    );
    refused_login(
        password_login(&server, "nina", "p\u{e4}ssw\u{f6}rd-密码-🔒").await,
        "another emoji",
    );
    refused_login(
        password_login(&server, "nina", "p\u{e4}ssw\u{f6}rd-密碼-🔐").await,
        "the traditional form of one character",
    );
    refused_login(
        password_login(&server, "nina", "p\u{c4}ssw\u{f6}rd-密码-🔐").await,
        "one letter upper-cased",
    );
    refused_login(
        password_login(&server, "nina", "passwORD-密码-🔐").await,
        "umlauts and case changed",
    );

    // Set with the CLI from standard input (the prompt's path).
    let out = server
        .cli_with_stdin(&["user", "add", "oskar"], Some(&format!("{CYRILLIC}\n")))
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(password_login(&server, "oskar", CYRILLIC).await.0, 200);
    refused_login(
        password_login(&server, "oskar", &CYRILLIC.replace('\u{dc}', "U\u{308}")).await,
        "decomposed Ü",
    );
    refused_login(
        password_login(&server, "oskar", &CYRILLIC.replace('а', "a")).await,
        "a Latin a for the Cyrillic а",
    );

    // The length is counted in characters, not bytes: MIN-1 three-byte characters (more
    // than MIN bytes) are too short, MIN of them are enough.
    let min = portcullis_core::password::MIN_PASSWORD_CHARS;
    let short = "密".repeat(min - 1);
    assert!(short.len() >= min);
    let out = server
        .cli(&["user", "add", "tomo", "--password", &short])
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("at least {min} characters")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enough = "密".repeat(min);
    add_user(&server, &["tomo", "--password", &enough]);
    assert_eq!(password_login(&server, "tomo", &enough).await.0, 200);

    // The sign-in form (a UTF-8 form post) and the account page: the current password must be
    // the exact spelling; a new one is stored as typed.
    let mut br = Browser::new(&server);
    let session = sign_in(&mut br, "nina", UNICODE).await;
    wrong_current(&change(&mut br, UNICODE_NFD, CHANGED).await);
    let too_short = change(&mut br, UNICODE, &"🔐".repeat(min - 1)).await;
    assert_eq!(too_short.status, 400, "{}", too_short.body);
    assert!(
        too_short
            .body
            .contains(&format!("must be at least {min} characters long")),
        "{}",
        too_short.body
    );
    let done = change(&mut br, UNICODE, CHANGED).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!is_authenticated(&server, &session).await);
    assert_eq!(password_login(&server, "nina", CHANGED).await.0, 200);
    refused_login(
        password_login(&server, "nina", UNICODE).await,
        "the old one",
    );
    refused_login(
        password_login(&server, "nina", &CHANGED.replace('\u{df}', "ss")).await,
        "ß spelt ss",
    );
    refused_login(
        password_login(&server, "nina", &CHANGED.replace('\u{df}', "\u{1e9e}")).await,
        "capital ẞ",
    );
    // The legacy JSON login reads the same password from JSON.
    let resp = http()
        .post(server.url("/kapis/iam.kubesphere.io/v1alpha2/login"))
        .json(&serde_json::json!({"username": "nina", "password": CHANGED}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Signing in through the form with the new password works too.
    sign_in(&mut Browser::new(&server), "nina", CHANGED).await;
}
