//! The userinfo endpoint as an OAuth 2.0 resource server (ASVS 5.0 10.3.2; RFC 6750 §3, §3.1;
//! OpenID Connect Core §5.3): it answers only for an access token whose grant includes the
//! `openid` scope. A valid token without it is `403 insufficient_scope` with a Bearer challenge
//! naming the error; a missing token is `401` with a challenge without an error code; a bad
//! token `401 invalid_token`.

use super::*;

/// `GET` or `POST /oauth/userinfo`: status, `WWW-Authenticate`, JSON body.
async fn ask(server: &Server, post: bool, bearer: Option<&str>) -> (u16, String, Value) {
    let url = server.url("/oauth/userinfo");
    let mut req = if post {
        http().post(url)
    } else {
        http().get(url)
    };
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, resp.json().await.unwrap_or(Value::Null))
}

/// The `error` attribute of a Bearer challenge (RFC 6750 §3).
fn challenge_error(challenge: &str) -> Option<&str> {
    challenge
        .split("error=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
}

#[track_caller]
fn insufficient_scope(got: (u16, String, Value), what: &str) {
    let (status, challenge, body) = got;
    assert_eq!(status, 403, "{what}: {body}");
    assert_eq!(body["error"], "insufficient_scope", "{what}: {body}");
    assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
    assert_eq!(
        challenge_error(&challenge),
        Some("insufficient_scope"),
        "{what}: {challenge}"
    );
    assert!(body.get("sub").is_none(), "{what}: no claims: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn userinfo_needs_the_openid_scope() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);

    // A code grant without openid (plain OAuth 2.0): a valid access token, but not for userinfo.
    let body = code_flow(&server, &mut browser, "app", "app-secret", "profile email").await;
    assert_eq!(body["scope"], "email profile", "{body}");
    assert!(
        body.get("id_token").is_none(),
        "no openid, no ID token: {body}"
    );
    let plain = body["access_token"].as_str().unwrap().to_owned();
    assert!(
        is_authenticated(&server, &plain).await,
        "the token itself is valid"
    );
    insufficient_scope(ask(&server, false, Some(&plain)).await, "GET, code grant");
    insufficient_scope(ask(&server, true, Some(&plain)).await, "POST, code grant");

    // A client-credentials token with another scope: the same answer.
    let (status, cc) = client_post(
        &server,
        "/oauth/token",
        "app",
        "app-secret",
        &[("grant_type", "client_credentials"), ("scope", "jobs")],
    )
    .await;
    assert_eq!(status, 200, "{cc}");
    insufficient_scope(
        ask(&server, false, cc["access_token"].as_str()).await,
        "client credentials",
    );

    // The same client and user with openid: the claims.
    let body = code_flow(&server, &mut browser, "app", "app-secret", "openid email").await;
    let with_openid = body["access_token"].as_str().unwrap().to_owned();
    let (status, _, info) = ask(&server, false, Some(&with_openid)).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    // A ks-console (password grant) token carries KubeSphere's implicit openid scope.
    let (status, console) = client_post(
        &server,
        "/oauth/token",
        "kubesphere",
        "kubesphere",
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{console}");
    let (status, _, info) = ask(&server, true, console["access_token"].as_str()).await;
    assert_eq!((status, &info["sub"]), (200, &serde_json::json!("alice")));

    // No token: 401 and a challenge without an error code (RFC 6750 §3.1); a bad one:
    // 401 invalid_token.
    let (status, challenge, _) = ask(&server, false, None).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(challenge_error(&challenge), None, "{challenge}");
    let (status, challenge, body) = ask(&server, false, Some("not-a-token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    assert_eq!(
        challenge_error(&challenge),
        Some("invalid_token"),
        "{challenge}"
    );
}
