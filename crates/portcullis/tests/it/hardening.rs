//! Small checks of claims docs/security.md makes that had no test of their own: the refresh
//! grant after a logout (spec §10 item 13), the lockout of the password-change form (§10 item
//! 18), non-ASCII passwords (ASVS 2.1.4), methods a route does not serve (13.2.1) and
//! `Referrer-Policy` on pages (3.4.x, codes in URLs).

use crate::common::*;
use crate::federation::{Browser, PUBLIC, yaml};

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_is_dead_after_logout() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    add_user(&server, &["ivy", "--password", "ivy-Passw0rd"]);
    let (_, _, body) = password_login(&server, "ivy", "ivy-Passw0rd").await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, body) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the refresh token has been revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_change_form_is_under_the_account_lockout() {
    let b = backend(false).await;
    // yaml(): authenticateRateLimiterMaxTries 5.
    let server = start(Some(yaml(&[])), &b);
    const PW: &str = "jay-Passw0rd";
    add_user(&server, &["jay", "--password", PW]);
    let mut br = Browser::new(&server);
    let login = format!("{PUBLIC}/login");
    br.get(&login).await;
    let csrf = br.cookie("portcullis_csrf").unwrap();
    let ok = br
        .post_form(
            &login,
            &[("csrf_token", &csrf), ("username", "jay"), ("password", PW)],
        )
        .await;
    assert_eq!(ok.status, 303);
    let change = |current: &'static str| {
        [
            ("csrf_token", csrf.clone()),
            ("current", current.to_owned()),
            ("new", "jay-New-Passw0rd".to_owned()),
            ("repeat", "jay-New-Passw0rd".to_owned()),
        ]
    };
    let url = format!("{PUBLIC}/account/password");
    for _ in 0..5 {
        let form = change("wrong-guess");
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(br.post_form(&url, &pairs).await.status, 403);
    }
    // Locked: even the right current password is not checked now.
    let form = change(PW);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let locked = br.post_form(&url, &pairs).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.body.contains("Too many failed attempts"));
    // And so is the sign-in of that account, with the right password.
    let (status, _, _) = password_login(&server, "jay", PW).await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn non_ascii_passwords_work_exactly() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let pw = "Pässwörd-密码-🔑 ok";
    add_user(&server, &["kim", "--password", pw]);
    let (status, _, body) = password_login(&server, "kim", pw).await;
    assert_eq!(status, 200, "{body}");
    // Another normalisation (decomposed "ä") is another password.
    let decomposed = "Pa\u{308}sswörd-密码-🔑 ok";
    let (status, _, _) = password_login(&server, "kim", decomposed).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn unserved_methods_are_405_and_pages_send_no_referrer() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let c = http();
    for (method, path) in [
        (reqwest::Method::GET, "/oauth/token"),
        (reqwest::Method::DELETE, "/oauth/token"),
        (reqwest::Method::PUT, "/oauth/authenticate"),
        (reqwest::Method::GET, "/oauth/authenticate"),
        (reqwest::Method::DELETE, "/oauth/logout"),
        (reqwest::Method::PUT, "/login"),
        (reqwest::Method::POST, "/oauth/keys"),
    ] {
        let resp = c
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method} {path}");
    }
    let page = c.get(server.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
}
