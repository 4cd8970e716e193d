//! `multipleLogin: false` with federated sign-ups (spec §10 item 12). KubeSphere, where the
//! setting works, revokes by user name, so everyone onboarding at once (all of them the
//! pseudo-user `system:pre-registration`) logs everyone else out. Here a login revokes only the
//! other sessions of the real user who logged in: pre-registration tokens of different upstream
//! identities live side by side, and no pre-registration (nor a confirm-page sign-up) touches a
//! real user's sessions, even when the upstream name equals that user's name.

use portcullis_test_upstreams::{FakeGitHub, FakeIdaas};
use serde_json::json;

use super::console::{console_callback, console_code};
use super::*;

on_both_backends!(pre_registrations_do_not_revoke_each_other_or_real_users);

const BOB: &str = "bob-Passw0rd!";

/// A ks-console login at the fake IDaaS as `sub`: the token JSON.
async fn console_login(server: &Server, ida: &FakeIdaas, sub: &str) -> Value {
    let code = console_code(&ida.auth_url(), &ida.client_id(), "idaas", sub).await;
    let hop = console_callback(server, "idaas", &format!("code={code}&state=idaas")).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    hop.json()
}

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {body}"))
        .to_owned()
}

/// Asserts that each token is (or is not) accepted by TokenReview, naming it on failure.
async fn live(server: &Server, tokens: &[(&str, &str)], expected: bool) {
    for (what, token) in tokens {
        let st = review(server, token).await;
        assert_eq!(
            st["authenticated"] == true,
            expected,
            "{what}: expected authenticated={expected}, got {st}"
        );
    }
}

/// The pre-registration turns into user `name`: `POST /users` with the pre-registration token,
/// then the refresh grant; returns the user's new token JSON.
async fn register(server: &Server, pre: &Value, name: &str) -> Value {
    let resp = http()
        .post(server.url("/kapis/iam.kubesphere.io/v1alpha2/users"))
        .bearer_auth(field(pre, "access_token"))
        .json(&json!({
            "apiVersion": "iam.kubesphere.io/v1alpha2", "kind": "User",
            "metadata": {"name": name}, "spec": {}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let refresh = field(pre, "refresh_token");
    let (status, _, body) = token(
        server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(&field(&body, "access_token"))["username"], name);
    body
}

async fn pre_registrations_do_not_revoke_each_other_or_real_users(pg: bool) {
    let ida = FakeIdaas::start().await;
    // The first upstream identity calls itself "bob", like the local user bob.
    ida.add_user("sub-1", "bob", Some("bob@idaas.example"), None);
    ida.add_user("sub-2", "carol", Some("carol@idaas.example"), None);
    let gh = FakeGitHub::start().await;
    gh.add_user(77, "dora", None, vec![]);
    gh.login_as(77);
    let b = backend(pg).await;
    let console_redirect = format!("{CONSOLE}/oauth/redirect/idaas");
    let config = yaml(&[
        idaas(&ida, "idaas", "manual", &console_redirect, ""),
        github(&gh, "github", "manual", Some(&callback_url("github")), ""),
    ])
    .replace("multipleLogin: true", "multipleLogin: false");
    assert!(config.contains("multipleLogin: false"));
    let server = start(Some(config), &b);
    add_user(&server, &["bob", "--password", BOB]);

    let (status, _, body) = password_login(&server, "bob", BOB).await;
    assert_eq!(status, 200, "{body}");
    let bob1 = field(&body, "access_token");

    // Two pre-registrations of different upstream identities, one named like bob.
    let pre1 = console_login(&server, &ida, "sub-1").await;
    let pre1_access = field(&pre1, "access_token");
    assert_eq!(claims(&pre1_access)["username"], "system:pre-registration");
    assert_eq!(claims(&pre1_access)["extra"]["username"], json!(["bob"]));
    live(
        &server,
        &[("pre-registration 1", &pre1_access), ("bob", &bob1)],
        true,
    )
    .await;
    let pre2 = console_login(&server, &ida, "sub-2").await;
    let pre2_access = field(&pre2, "access_token");
    assert_eq!(claims(&pre2_access)["username"], "system:pre-registration");
    live(
        &server,
        &[
            ("pre-registration 1", &pre1_access),
            ("pre-registration 2", &pre2_access),
            ("bob", &bob1),
        ],
        true,
    )
    .await;
    // Refreshing a pre-registration before its user exists changes nothing either.
    let (status, _, body) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &field(&pre2, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(user_names(&server), vec!["admin", "bob"]);

    // A confirm-page sign-up (manual mapping, browser path) of a third identity: neither the
    // pending registration nor the new user's first session ends anyone else's session.
    let mut browser = Browser::new(&server);
    let hops = browser.follow(&format!("{PUBLIC}/login/github")).await;
    let form = hops.last().unwrap();
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("value=\"dora\""), "{}", form.body);
    live(
        &server,
        &[
            ("pre-registration 1", &pre1_access),
            ("pre-registration 2", &pre2_access),
            ("bob", &bob1),
        ],
        true,
    )
    .await;
    let done = browser
        .post_form(
            &format!("{PUBLIC}/login/confirm"),
            &[("csrf_token", &Browser::form_csrf(form)), ("name", "dora")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let dora = browser.cookie("portcullis_session").unwrap();
    assert_eq!(claims(&dora)["username"], "dora");

    // Pre-registration 1 becomes user "bobby": that is a login of bobby, which ends only
    // bobby's other sessions (none), not bob's, not the other pre-registration.
    let bobby1 = register(&server, &pre1, "bobby").await;
    let bobby1_access = field(&bobby1, "access_token");
    live(
        &server,
        &[
            ("pre-registration 2", &pre2_access),
            ("bob", &bob1),
            ("dora", &dora),
            ("bobby", &bobby1_access),
        ],
        true,
    )
    .await;

    // multipleLogin: false is in force for real users: bob's and bobby's second logins end
    // their first sessions, and only those.
    let (status, _, body) = password_login(&server, "bob", BOB).await;
    assert_eq!(status, 200, "{body}");
    let bob2 = field(&body, "access_token");
    let again = console_login(&server, &ida, "sub-1").await;
    let bobby2 = field(&again, "access_token");
    assert_eq!(
        claims(&bobby2)["username"],
        "bobby",
        "linked now: no pre-registration"
    );
    live(
        &server,
        &[
            ("bob's first session", &bob1),
            ("bobby's first session", &bobby1_access),
        ],
        false,
    )
    .await;
    live(
        &server,
        &[
            ("pre-registration 2", &pre2_access),
            ("bob's second session", &bob2),
            ("bobby's second session", &bobby2),
            ("dora", &dora),
        ],
        true,
    )
    .await;

    // The second pre-registration still completes, and ends nobody else's session.
    let carol = register(&server, &pre2, "carol").await;
    live(
        &server,
        &[
            ("carol", &field(&carol, "access_token")),
            ("bob", &bob2),
            ("bobby", &bobby2),
            ("dora", &dora),
        ],
        true,
    )
    .await;
    assert_eq!(
        user_names(&server),
        vec!["admin", "bob", "bobby", "carol", "dora"]
    );
}
