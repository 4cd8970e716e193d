//! Forced logout (OpenID RP-Initiated Logout 1.0 §2, §6; ASVS 10.6.2, 13.2.3): `SameSite=Lax`
//! sends the `portcullis_session` cookie on a cross-site top-level GET, so `GET /oauth/logout`
//! with only that cookie must not end the session. It shows a confirmation page whose POST (with
//! the CSRF token) does. ks-console's `GET /oauth/logout` with a Bearer token keeps working
//! (spec §11 item 6). The `id_token_hint` path: `oidc/flow.rs::code_flow_end_to_end`,
//! `oidc/interop.rs`.

use crate::common::*;
use crate::federation::{Browser, PUBLIC, yaml};

const ALICE: &str = "alice-Passw0rd";
const BOB: &str = "bob-Passw0rd!";

/// Signs `user` in through the sign-in form; returns the session cookie's token.
pub(crate) async fn sign_in(br: &mut Browser, user: &str, password: &str) -> String {
    let login = format!("{PUBLIC}/login");
    br.get(&login).await;
    let csrf = br.cookie("portcullis_csrf").unwrap();
    let ok = br
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", user),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    br.cookie("portcullis_session").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_without_proof_asks_and_only_the_confirmed_post_ends_the_session() {
    let b = backend(false).await;
    let server = start(Some(yaml(&[])), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    add_user(&server, &["bob", "--password", BOB]);
    let mut br = Browser::new(&server);
    let alice = sign_in(&mut br, "alice", ALICE).await;
    let logout = format!("{PUBLIC}/oauth/logout");

    // What another site's link or redirect does: a top-level GET carrying only the cookie.
    let page = br.get(&logout).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    assert!(page.body.contains("You are signed in as alice."));
    assert!(
        page.body
            .contains("<form method=\"post\" action=\"http://portcullis.test/oauth/logout\">")
    );
    let csrf = br.cookie("portcullis_csrf").unwrap();
    assert!(
        page.body
            .contains(&format!("name=\"csrf_token\" value=\"{csrf}\""))
    );
    assert!(page.set_cookie("portcullis_session").is_none());
    assert!(
        is_authenticated(&server, &alice).await,
        "a GET with only the cookie ends nothing"
    );
    // The page speaks the browser's language like the others.
    let zh = br.get(&format!("{logout}?lang=zh-CN")).await;
    assert!(zh.body.contains("退出登录？"), "{}", zh.body);
    br.get(&format!("{PUBLIC}/login?lang=en")).await;

    // The redirect parameters are checked before asking, and carried by the form.
    let evil = br
        .get(&format!(
            "{logout}?post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
        ))
        .await;
    assert_eq!(evil.status, 400);
    let own = br
        .get(&format!(
            "{logout}?post_logout_redirect_uri=http%3A%2F%2Fportcullis.test%2Flogin&state=s1"
        ))
        .await;
    assert_eq!(own.status, 200);
    assert!(
        own.body
            .contains("name=\"post_logout_redirect_uri\" value=\"http://portcullis.test/login\""),
        "{}",
        own.body
    );
    assert!(own.body.contains("name=\"state\" value=\"s1\""));

    // A POST without this browser's CSRF token (a same-site form) is not a confirmation.
    let forged = br
        .post_form(&logout, &[("csrf_token", "forged-forged-forged-xx")])
        .await;
    assert_eq!(forged.status, 200);
    assert!(forged.body.contains("Sign out?"));
    assert!(is_authenticated(&server, &alice).await);

    // The confirmation: the session ends, the cookie goes, back to the sign-in page.
    let done = br
        .post_form(
            &logout,
            &[
                ("csrf_token", &csrf),
                ("post_logout_redirect_uri", "http://portcullis.test/login"),
                ("state", "s1"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location().as_deref(),
        Some("http://portcullis.test/login?state=s1")
    );
    assert!(
        done.set_cookie("portcullis_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!is_authenticated(&server, &alice).await);

    // Without a redirect URI the confirmation lands on the sign-in page's notice.
    let alice = sign_in(&mut br, "alice", ALICE).await;
    let asked = br.get(&logout).await;
    assert_eq!(asked.status, 200);
    let done = br.post_form(&logout, &[("csrf_token", &csrf)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location().as_deref(),
        Some("http://portcullis.test/login?notice=signed_out")
    );
    assert!(!is_authenticated(&server, &alice).await);
    // A stale cookie (its session already ended) is simply forgotten, without asking.
    br.set("portcullis_session", Some(&alice), "/");
    let stale = br.get(&logout).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, r#"{"message":"success"}"#);
    assert!(br.cookie("portcullis_session").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_logout_keeps_kubesphere_semantics() {
    let b = backend(false).await;
    let server = start(Some(yaml(&[])), &b);
    add_user(&server, &["alice", "--password", ALICE]);
    add_user(&server, &["bob", "--password", BOB]);
    let bearer = |user: &'static str, password: &'static str| {
        let server = &server;
        async move {
            let (status, _, body) = password_login(server, user, password).await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }
    };

    // ks-console: GET with the Bearer token, no cookie -> revoked, KubeSphere's JSON.
    let alice = bearer("alice", ALICE).await;
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"message": "success"})
    );
    assert!(!is_authenticated(&server, &alice).await);

    // A Bearer request ends its own session; the browser session of the same user with it.
    let (alice_api, alice_cookie) = (bearer("alice", ALICE).await, bearer("alice", ALICE).await);
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&alice_api)
        .header("cookie", format!("portcullis_session={alice_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("portcullis_session=;")
    );
    assert!(!is_authenticated(&server, &alice_api).await);
    assert!(!is_authenticated(&server, &alice_cookie).await);

    // Another user's Bearer token proves nothing about the cookie's session: that one stays,
    // and the JSON client gets JSON, not a page.
    let (bob, alice_cookie) = (bearer("bob", BOB).await, bearer("alice", ALICE).await);
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(&bob)
        .header("cookie", format!("portcullis_session={alice_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["message"],
        "success"
    );
    assert!(!is_authenticated(&server, &bob).await);
    assert!(is_authenticated(&server, &alice_cookie).await);
}
