//! The browser path: first and repeat logins under `auto` and `lookup`, return addresses, and
//! the CLI's link and unlink.

use portcullis_test_upstreams::{FakeGitHub, FakeIdaas};

use super::*;

on_both_backends!(auto_first_and_repeat_login_with_private_email);

async fn auto_first_and_repeat_login_with_private_email(pg: bool) {
    let gh = FakeGitHub::start().await;
    // A private email: `/user` says null, `/user/emails` has the primary verified address.
    gh.add_user(
        101,
        "OctoCat",
        None,
        vec![("octo@private.example", true, true)],
    );
    gh.login_as(101);
    let b = backend(pg).await;
    let cfg = github(&gh, "github", "auto", Some(&callback_url("github")), "");
    let server = start(Some(yaml(&[cfg])), &b);
    let mut browser = Browser::new(&server);

    let start = browser.get(&format!("{PUBLIC}/login/github")).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    assert!(location.starts_with(&gh.auth_url()), "{location}");
    let state = start.location_param("state").unwrap();
    assert_eq!(
        start.location_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(start.location_param("code_challenge").is_some());
    assert_eq!(
        start.location_param("redirect_uri"),
        Some(callback_url("github"))
    );
    let cookie = start.set_cookie("portcullis_login_state").unwrap();
    assert_eq!(
        cookie,
        format!(
            "portcullis_login_state={state}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=600"
        ),
        "the state cookie is bound to the callback path, HttpOnly, SameSite=Lax (no Secure on http)"
    );
    assert_eq!(start.header("x-frame-options"), "DENY");

    let hops = browser.follow_from(start).await;
    let callback = &hops[2];
    assert_eq!(callback.status, 303, "{}", callback.body);
    assert_eq!(
        callback.location().as_deref(),
        Some("http://portcullis.test/account")
    );
    let session = callback.set_cookie("portcullis_session").unwrap();
    assert!(
        session.contains("; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600"),
        "{session}"
    );
    assert!(
        callback
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("portcullis_login_state=;") && c.contains("Max-Age=0")),
        "the state cookie is cleared: {:?}",
        callback.set_cookies()
    );
    signed_in_as(&hops, "octocat");
    let token_call = gh
        .requests()
        .into_iter()
        .find(|r| r.path == "/login/oauth/access_token")
        .unwrap();
    assert_eq!(
        token_call.params.get("code_verifier").map(String::len),
        Some(43),
        "PKCE verifier sent"
    );

    // The session cookie holds a real access token.
    let token = browser.cookie("portcullis_session").unwrap();
    let st = review(&server, &token).await;
    assert_eq!(st["user"]["username"], "octocat", "{st}");

    let user = show_user(&server, "octocat").unwrap();
    assert_eq!(user["email"], "octo@private.example");
    assert_eq!(user["hasPassword"], false);
    assert_eq!(user["identities"][0]["provider"], "github");
    assert_eq!(
        user["identities"][0]["uid"], "101",
        "linked by GitHub's numeric id"
    );
    assert_eq!(user["identities"][0]["username"], "OctoCat");

    // Repeat login: the same user, nothing new created.
    let mut again = Browser::new(&server);
    let hops = again.follow(&format!("{PUBLIC}/login/github")).await;
    signed_in_as(&hops, "octocat");
    assert_eq!(user_names(&server), vec!["admin", "octocat"]);
    let recs = records(&server, "octocat").await;
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["spec"]["success"], true);
        assert_eq!(r["spec"]["provider"], "github");
        assert_eq!(r["spec"]["type"], "Token");
    }
    assert_ne!(show_user(&server, "octocat").unwrap()["lastLoginAt"], "-");
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_never_adopts_an_existing_user_and_return_to_stays_local() {
    let gh = FakeGitHub::start().await;
    gh.add_user(7, "Hubot", Some("hubot@github.example"), vec![]);
    gh.login_as(7);
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
    add_user(
        &server,
        &[
            "hubot",
            "--password",
            "hubot-Passw0rd",
            "--email",
            "hubot@github.example",
        ],
    );

    let mut browser = Browser::new(&server);
    let hops = browser
        .follow(&format!(
            "{PUBLIC}/login/github?return_to=%2Fdashboard%3Ftab%3D1"
        ))
        .await;
    let callback = &hops[2];
    assert_eq!(callback.location().as_deref(), Some("/dashboard?tab=1"));
    // The local `hubot` is not adopted: the GitHub account gets `hubot-2`, without the email
    // another user has.
    let created = show_user(&server, "hubot-2").unwrap();
    assert_eq!(created["identities"][0]["uid"], "7");
    assert_eq!(created["email"], serde_json::Value::Null);
    assert_eq!(
        show_user(&server, "hubot").unwrap()["identities"],
        serde_json::json!([])
    );
    let token = browser.cookie("portcullis_session").unwrap();
    assert_eq!(review(&server, &token).await["user"]["username"], "hubot-2");

    // A return address elsewhere is ignored.
    for evil in ["%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2F"] {
        let mut b2 = Browser::new(&server);
        let hops = b2
            .follow(&format!("{PUBLIC}/login/github?return_to={evil}"))
            .await;
        assert_eq!(
            hops[2].location().as_deref(),
            Some("http://portcullis.test/account")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_logs_in_only_linked_identities() {
    let fake = FakeIdaas::start().await;
    fake.add_user("sub-1", "jane", Some("jane@idaas.example"), None);
    fake.login_as("sub-1");
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[idaas(
            &fake,
            "idaas",
            "lookup",
            &callback_url("idaas"),
            "",
        )])),
        &b,
    );

    let mut browser = Browser::new(&server);
    let hops = browser.follow(&format!("{PUBLIC}/login/idaas")).await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, 401, "{}", last.body);
    assert!(
        last.body
            .contains("No account is linked to this idaas identity"),
        "{}",
        last.body
    );
    assert!(last.body.contains("Request id: <code>"), "{}", last.body);
    assert!(last.set_cookie("portcullis_session").is_none());
    assert_eq!(user_names(&server), vec!["admin"]);
    let recs = records(&server, "idaas:sub-1").await;
    assert_eq!(recs[0]["spec"]["success"], false);
    assert_eq!(recs[0]["spec"]["provider"], "idaas");

    add_user(&server, &["jane", "--no-password"]);
    let (ok, out, err) = cli(
        &server,
        &[
            "user",
            "link",
            "jane",
            "--provider",
            "idaas",
            "--uid",
            "sub-1",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "linked identity idaas/sub-1 to user \"jane\"");
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/idaas"))
        .await;
    signed_in_as(&hops, "jane");

    // CLI errors are precise.
    add_user(&server, &["john", "--no-password"]);
    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "link",
            "john",
            "--provider",
            "idaas",
            "--uid",
            "sub-1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("identity idaas/sub-1 is already linked to user \"jane\""),
        "{err}"
    );
    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "link",
            "nobody",
            "--provider",
            "idaas",
            "--uid",
            "x",
        ],
    );
    assert!(!ok);
    assert!(err.contains("user \"nobody\" does not exist"), "{err}");
    let (ok, _, err) = cli(
        &server,
        &["user", "link", "john", "--provider", "gitlab", "--uid", "9"],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: no identity provider named \"gitlab\" is configured"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "unlink",
            "john",
            "--provider",
            "idaas",
            "--uid",
            "sub-1",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("is linked to user \"jane\", not \"john\""),
        "{err}"
    );

    let (ok, _, err) = cli(
        &server,
        &[
            "user",
            "unlink",
            "jane",
            "--provider",
            "idaas",
            "--uid",
            "sub-1",
        ],
    );
    assert!(ok, "{err}");
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/idaas"))
        .await;
    assert_eq!(hops.last().unwrap().status, 401);
}
