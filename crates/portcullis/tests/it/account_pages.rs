//! The sign-in and account pages over plain HTTP: CSRF checks, cookie flags, messages, the
//! language switch, and account operations that act on the caller's own account only. (The
//! same pages in a real browser: `e2e.rs`.)

use base64::Engine as _;

use crate::common::*;
use crate::federation::{Browser, PUBLIC, yaml};

const ALICE: &str = "alice-Passw0rd";
const BOB: &str = "bob-Passw0rd!";

fn sid_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_account_forms_are_checked_and_act_on_the_own_account() {
    let b = backend(false).await;
    let server = start(Some(yaml(&[])), &b);
    add_user(
        &server,
        &["alice", "--password", ALICE, "--email", "alice@example.com"],
    );
    add_user(&server, &["bob", "--password", BOB]);
    let mut br = Browser::new(&server);
    let login = format!("{PUBLIC}/login");

    let page = br.get(&login).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(
        page.body
            .contains("<label for=\"username\">User name or email</label>")
    );
    assert!(!page.body.contains("<script") && !page.body.contains("style="));
    let csrf_cookie = page.set_cookie("portcullis_csrf").unwrap();
    assert!(
        csrf_cookie.contains("Path=/; HttpOnly; SameSite=Lax"),
        "{csrf_cookie}"
    );
    let csrf = br.cookie("portcullis_csrf").unwrap();
    assert!(
        page.body
            .contains(&format!("name=\"csrf_token\" value=\"{csrf}\""))
    );
    let css = br.get(&format!("{PUBLIC}/assets/portcullis.css")).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    let theme = br.get(&format!("{PUBLIC}/assets/theme.css")).await;
    assert!(theme.body.contains("--primary: #1d4ed8"), "{}", theme.body);

    // A forged or missing CSRF token changes nothing and logs nobody in.
    let forged = br
        .post_form(
            &login,
            &[
                ("csrf_token", "forged-forged-forged-xx"),
                ("username", "alice"),
                ("password", ALICE),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        forged.body.contains("The form has expired"),
        "{}",
        forged.body
    );
    assert!(forged.set_cookie("portcullis_session").is_none());
    // Wrong password: one message; the name is kept, the password never echoed.
    let wrong = br
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", "nope-nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Incorrect user name or password."));
    assert!(wrong.body.contains("value=\"alice\"") && !wrong.body.contains("nope-nope"));
    // Reflected input is escaped.
    let xss = br
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", "<b>\"x'"),
                ("password", "p"),
            ],
        )
        .await;
    assert!(
        xss.body.contains("value=\"&lt;b&gt;&quot;x&#39;\""),
        "{}",
        xss.body
    );
    let ok = br
        .post_form(
            &login,
            &[
                ("csrf_token", &csrf),
                ("username", "alice@example.com"),
                ("password", ALICE),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(
        ok.location().as_deref(),
        Some("http://portcullis.test/account")
    );
    let session = ok.set_cookie("portcullis_session").unwrap();
    assert!(
        session.contains("; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600"),
        "{session}"
    );
    let alice_token = br.cookie("portcullis_session").unwrap();
    let account_url = format!("{PUBLIC}/account");
    let acct = br.get(&account_url).await;
    assert_eq!(acct.status, 200);
    assert!(acct.body.contains("Signed in as alice"), "{}", acct.body);
    assert!(acct.body.contains("This browser"));

    // Another user's session id reads as absent; bob stays signed in.
    let (status, _, bob) = password_login(&server, "bob", BOB).await;
    assert_eq!(status, 200);
    let bob_token = bob["access_token"].as_str().unwrap().to_owned();
    let revoke = format!("{PUBLIC}/account/sessions/revoke");
    let foreign = br
        .post_form(
            &revoke,
            &[("csrf_token", &csrf), ("session", &sid_of(&bob_token))],
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert!(is_authenticated(&server, &bob_token).await);
    // Without the CSRF token nothing happens.
    let all = format!("{PUBLIC}/account/sessions/revoke-all");
    let no_csrf = br.post_form(&all, &[]).await;
    assert_eq!(no_csrf.status, 403);
    assert!(is_authenticated(&server, &alice_token).await);
    let unlink = br
        .post_form(
            &format!("{PUBLIC}/account/identities/unlink"),
            &[("csrf_token", &csrf), ("provider", "github"), ("uid", "1")],
        )
        .await;
    assert_eq!(unlink.status, 404);

    // The language switch: ?lang= sets a cookie the next pages follow.
    let zh = br.get(&format!("{account_url}?lang=zh-CN")).await;
    assert!(zh.body.contains("<html lang=\"zh-CN\">") && zh.body.contains("我的账户"));
    assert!(
        zh.set_cookie("portcullis_lang")
            .unwrap()
            .starts_with("portcullis_lang=zh-CN;")
    );
    assert!(br.get(&account_url).await.body.contains("我的账户"));
    br.get(&format!("{account_url}?lang=en")).await;

    // Password change: checked, then every session ends.
    let pw = format!("{PUBLIC}/account/password");
    let mismatch = br
        .post_form(
            &pw,
            &[
                ("csrf_token", &csrf),
                ("current", ALICE),
                ("new", "new-Passw0rd"),
                ("repeat", "other"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("The new passwords do not match."));
    let bad_current = br
        .post_form(
            &pw,
            &[
                ("csrf_token", &csrf),
                ("current", "wrong"),
                ("new", "new-Passw0rd"),
                ("repeat", "new-Passw0rd"),
            ],
        )
        .await;
    assert_eq!(bad_current.status, 403);
    let changed = br
        .post_form(
            &pw,
            &[
                ("csrf_token", &csrf),
                ("current", ALICE),
                ("new", "new-Passw0rd"),
                ("repeat", "new-Passw0rd"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        changed.location().as_deref(),
        Some("http://portcullis.test/login?notice=password_changed")
    );
    assert!(!is_authenticated(&server, &alice_token).await);
    assert!(
        is_authenticated(&server, &bob_token).await,
        "bob is untouched"
    );
    let again = br.get(&account_url).await;
    assert_eq!(again.status, 303);
    assert!(again.location().unwrap().contains("/login?return_to="));
    let (status, _, _) = password_login(&server, "alice", "new-Passw0rd").await;
    assert_eq!(status, 200);
}
