//! Every way a federated login can fail ends in a clear error and a failed login record, never
//! a panic and never a half-created user: state mismatch, replay and expiry; upstream 500, HTML,
//! malformed JSON, a user without an id, a timeout, an unreachable upstream; GitHub's
//! `bad_verification_code` with HTTP 200; denied consent; a disabled user.

use std::time::Duration;

use portcullis_test_support::{Server, ServerOptions, eventually};
use portcullis_test_upstreams::{FakeGitHub, FakeIdaas, Mode};

use super::*;

fn with_code(callback: &str, code: &str) -> String {
    let mut url = url::Url::parse(callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                code.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn state_mismatch_replay_and_expiry() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    gh.login_as(101);
    let b = backend(false).await;
    let mut server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "auto",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );

    // Two browsers start logins; each one's callback carries its own state.
    let mut alice = Browser::new(&server);
    let mut mallory = Browser::new(&server);
    let alice_cb = alice.until_callback("github").await;
    let mallory_cb = mallory.until_callback("github").await;
    let alice_state = alice.cookie("portcullis_login_state").unwrap();

    // Login CSRF: Mallory's callback (his code) opened in Alice's browser is refused.
    let crossed = alice.get(&mallory_cb).await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);
    assert!(
        crossed
            .body
            .contains("does not match the login started in this browser"),
        "{}",
        crossed.body
    );
    assert!(crossed.set_cookie("portcullis_session").is_none());
    // The callback without a state at all.
    alice.set(
        "portcullis_login_state",
        Some(&alice_state),
        "/oauth/callback",
    );
    let no_state = alice
        .get(&format!("{PUBLIC}/oauth/callback/github?code=abc"))
        .await;
    assert_eq!(no_state.status, 400);
    assert!(
        no_state.body.contains("has no state parameter"),
        "{}",
        no_state.body
    );
    assert_eq!(user_names(&server), vec!["admin"]);

    // Mallory's own login still works; replaying it fails.
    let ok = mallory.get(&mallory_cb).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let mallory_state = url::Url::parse(&mallory_cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    mallory.set(
        "portcullis_login_state",
        Some(&mallory_state),
        "/oauth/callback",
    );
    let replay = mallory.get(&mallory_cb).await;
    assert_eq!(replay.status, 400);
    assert!(
        replay.body.contains("already completed or is unknown"),
        "{}",
        replay.body
    );
    // Without the cookie (an attacker replaying the URL) it is no better.
    let replay = Browser::new(&server).get(&mallory_cb).await;
    assert_eq!(replay.status, 400, "{}", replay.body);

    // A state older than 10 minutes is refused; the clock is the server's. Two hours on, so
    // Mallory's one-hour token shows when the server has seen the new time.
    let mallory_token = mallory.cookie("portcullis_session").unwrap();
    server.advance_clock(Duration::from_secs(2 * 3600)).unwrap();
    eventually(Duration::from_secs(10), "the server's clock moves", || {
        let (server, token) = (&server, &mallory_token);
        async move { (!is_authenticated(server, token).await).then_some(()) }
    })
    .await
    .unwrap();
    alice.set(
        "portcullis_login_state",
        Some(&alice_state),
        "/oauth/callback",
    );
    let late = alice.get(&alice_cb).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert!(late.body.contains("This login expired"), "{}", late.body);

    assert_eq!(user_names(&server), vec!["admin", "octocat"]);
    let failures = records(&server, "github:unknown").await;
    assert_eq!(failures.len(), 5, "{failures:#?}");
    assert!(
        failures
            .iter()
            .all(|r| r["spec"]["success"] == false && r["spec"]["provider"] == "github")
    );
}

/// What goes wrong, how to make the fake do it, the status and a part of the login record's reason.
type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, u16, &'a str);

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_end_in_clear_errors() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    gh.login_as(101);
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[github(
            &gh,
            "github",
            "auto",
            Some(&callback_url("github")),
            "",
        )])),
        &b,
    );

    let cases: [Case<'_>; 6] = [
        (
            "token endpoint 500",
            Box::new(|| gh.set_token_mode(Mode::Error500)),
            502,
            "HTTP 500",
        ),
        (
            "token endpoint HTML",
            Box::new(|| gh.set_token_mode(Mode::Html)),
            502,
            "HTML page",
        ),
        (
            "malformed JSON",
            Box::new(|| gh.set_api_mode(Mode::Garbage)),
            502,
            "malformed JSON",
        ),
        (
            "user without id",
            Box::new(|| gh.set_api_mode(Mode::NoUserId)),
            502,
            "without a numeric `id`",
        ),
        (
            "user API 500",
            Box::new(|| gh.set_api_mode(Mode::Error500)),
            502,
            "HTTP 500",
        ),
        (
            "consent denied",
            Box::new(|| gh.deny_consent()),
            401,
            "denied access",
        ),
    ];
    for (what, set_up, status, reason) in cases {
        gh.set_mode(Mode::Normal);
        gh.login_as(101);
        set_up();
        let hops = Browser::new(&server)
            .follow(&format!("{PUBLIC}/login/github"))
            .await;
        let last = hops.last().unwrap();
        assert_eq!(last.status, status, "{what}: {}", last.body);
        assert!(
            last.header("content-type").starts_with("text/html"),
            "{what}"
        );
        assert!(last.body.contains("Request id:"), "{what}");
        if status == 502 {
            assert!(
                last.body.contains("did not answer correctly"),
                "{what}: {}",
                last.body
            );
        }
        let recs = records(&server, "github:unknown").await;
        let reason_text = recs[0]["spec"]["reason"].as_str().unwrap().to_owned();
        assert!(
            reason_text.contains(reason),
            "{what}: the record says {reason_text:?}"
        );
        assert!(!reason_text.contains("gho_"), "no token in records");
        assert_eq!(
            user_names(&server),
            vec!["admin"],
            "{what}: no user was created"
        );
    }

    // GitHub answers a wrong or used code with HTTP 200 and `bad_verification_code`.
    gh.set_mode(Mode::Normal);
    gh.login_as(101);
    let mut browser = Browser::new(&server);
    let cb = browser.until_callback("github").await;
    let hop = browser.get(&with_code(&cb, "not-a-real-code")).await;
    assert_eq!(hop.status, 401, "{}", hop.body);
    assert!(
        hop.body.contains("did not confirm your identity"),
        "{}",
        hop.body
    );
    assert!(hop.body.contains("bad_verification_code"), "{}", hop.body);
    assert_eq!(user_names(&server), vec!["admin"]);

    // And then everything works again.
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "octocat");
    let logs = server.logs();
    assert!(!logs.contains("gho_"), "no upstream token in the logs");
    assert!(!logs.contains("code_verifier="), "no verifier in the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_timeout_fails_only_that_login() {
    let slow = FakeGitHub::start().await;
    slow.add_user(1, "slowpoke", None, vec![]);
    slow.login_as(1);
    slow.set_token_mode(Mode::Slow(Duration::from_secs(20)));
    let fake = FakeIdaas::start().await;
    fake.add_user("s1", "quick", None, None);
    fake.login_as("s1");
    // A provider whose upstream is not even listening does not stop the server either.
    let dead = format!(
        "    - name: dead\n      type: AliyunIDaaSProvider\n      mappingMethod: auto\n      provider:\n        clientID: c\n        clientSecret: s\n        redirectURL: \"{}\"\n        endpoint:\n          authURL: \"http://127.0.0.1:9/authorize\"\n          tokenURL: \"http://127.0.0.1:9/token\"\n          userInfoURL: \"http://127.0.0.1:9/userinfo\"\n",
        callback_url("dead")
    );
    let cfg = yaml(&[
        github(&slow, "github", "auto", Some(&callback_url("github")), ""),
        idaas(&fake, "idaas", "auto", &callback_url("idaas"), ""),
        dead,
    ]);
    let b = backend(false).await;
    let mut opts = ServerOptions::new(bin(), Some(cfg));
    opts.backend = b.backend.clone();
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    opts.env
        .push(("PORTCULLIS_UPSTREAM_TIMEOUT".into(), "1s".into()));
    let server = Server::start(opts).unwrap();

    let started = std::time::Instant::now();
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, 502, "{}", last.body);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout applied"
    );
    let recs = records(&server, "github:unknown").await;
    assert!(
        recs[0]["spec"]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{recs:#?}"
    );

    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/idaas"))
        .await;
    signed_in_as(&hops, "quick");

    // The unreachable provider: its login start works (no network), the callback fails clearly.
    let mut browser = Browser::new(&server);
    let start = browser.get(&format!("{PUBLIC}/login/dead")).await;
    assert_eq!(start.status, 302);
    let state = start.location_param("state").unwrap();
    let hop = browser
        .get(&format!(
            "{PUBLIC}/oauth/callback/dead?code=c&state={state}"
        ))
        .await;
    assert_eq!(hop.status, 502, "{}", hop.body);
    let recs = records(&server, "dead:unknown").await;
    assert!(
        recs[0]["spec"]["reason"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{recs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_users_are_refused_on_every_path() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    gh.login_as(101);
    let b = backend(false).await;
    let console = format!("{CONSOLE}/oauth/redirect/gh-console");
    let server = start(
        Some(yaml(&[
            github(&gh, "github", "auto", Some(&callback_url("github")), ""),
            github(&gh, "gh-console", "lookup", Some(&console), ""),
        ])),
        &b,
    );
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "octocat");
    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "link",
            "octocat",
            "--provider",
            "gh-console",
            "--uid",
            "101",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&server, &["user", "disable", "octocat"]);
    assert!(ok, "{err}");

    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, 403, "{}", last.body);
    assert!(
        last.body.contains("The account “octocat” is disabled"),
        "{}",
        last.body
    );
    assert!(last.set_cookie("portcullis_session").is_none());

    let code = gh.issue_code(101, Some(&console), "", None);
    let resp = http()
        .get(server.url(&format!(
            "/oauth/callback/gh-console?code={code}&state=gh-console"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");

    let recs = records(&server, "octocat").await;
    assert_eq!(recs[0]["spec"]["success"], false);
    assert_eq!(recs[0]["spec"]["reason"], "account is disabled");
    assert_eq!(recs[1]["spec"]["provider"], "github");
}
