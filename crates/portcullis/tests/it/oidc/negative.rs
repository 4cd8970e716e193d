//! Negative cases modelled on the OpenID Connect conformance plans (oidcc-basic, the OAuth 2.0
//! security BCP checks): each answered with the right error, status and channel (an error page
//! when the redirect URI cannot be trusted, a redirect to the client otherwise, JSON at the
//! token endpoint).

use std::time::Duration;

use super::*;

/// A fresh code for alice and `client`, with its PKCE verifier.
async fn code_for(browser: &mut Browser, client: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let out = browser
        .authorize(
            &code_request(client, &challenge, "openid"),
            Some(("alice", ALICE_PASSWORD)),
        )
        .await;
    (out.params()["code"].clone(), verifier)
}

fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

#[track_caller]
fn oauth_error(got: (u16, Value), status: u16, error: &str) {
    assert_eq!(
        (got.0, got.1["error"].as_str()),
        (status, Some(error)),
        "{}",
        got.1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let (_, challenge) = pkce();
    let cases: [(&str, &str); 4] = [
        ("unknown-client", REDIRECT),
        ("app", "https://evil.example/cb"),
        ("app", "http://127.0.0.1:5555/cb/../evil"),
        ("other", REDIRECT), // registered for another client only
    ];
    for (client, uri) in cases {
        let mut q = code_request(client, &challenge, "openid");
        q[2] = ("redirect_uri", uri);
        match browser.authorize(&q, Some(("alice", ALICE_PASSWORD))).await {
            Outcome::Page(400, body) => assert!(body.contains("Request refused"), "{body}"),
            other => panic!("{client} {uri}: expected an error page, got {other:?}"),
        }
    }
    // A wildcard in redirectURIs of a non-development client never matches anything.
    let mut q = code_request("kubesphere", &challenge, "openid");
    q[2] = ("redirect_uri", "https://evil.example/cb");
    assert!(matches!(
        browser.authorize(&q, None).await,
        Outcome::Page(400, _)
    ));
    // Parameters sent twice are refused on a page too.
    let resp = browser
        .get(&format!(
            "{}?client_id=app&client_id=other",
            server.url("/oauth/authorize")
        ))
        .await;
    assert_eq!(resp.status(), 400);
}

/// The refused-request page speaks the browser's language; the English is the same text as the
/// engine's own (logs, API).
#[tokio::test(flavor = "multi_thread")]
async fn the_refused_page_follows_the_page_language() {
    let (server, _b) = oidc_server(false, "").await;
    let client = http();
    let authorize = server.url("/oauth/authorize");
    let cases: [(&str, &str, &str); 5] = [
        (
            "",
            "请求中缺少 client_id。",
            "The request has no client_id.",
        ),
        (
            "client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb",
            "client_id 无效：未配置该客户端。",
            "The client_id is unknown: no such client is configured.",
        ),
        (
            "client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            "该 redirect_uri 未登记在此客户端名下。",
            "The redirect_uri is not registered for this client.",
        ),
        (
            "client_id=app&scope=openid",
            "请求中缺少 redirect_uri。",
            "The request has no redirect_uri.",
        ),
        (
            "client_id=app&client_id=other",
            "参数“client_id”出现了不止一次。",
            "The parameter “client_id” is included more than once.",
        ),
    ];
    for (query, zh, en) in cases {
        for (language, expected, absent) in [("zh-CN,zh;q=0.9", zh, en), ("en-US", en, zh)] {
            let resp = client
                .get(format!("{authorize}?{query}"))
                .header("accept-language", language)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{query}");
            assert!(resp.headers().get("location").is_none(), "{query}");
            let body = resp.text().await.unwrap();
            assert!(body.contains(expected), "{query} {language}: {body}");
            assert!(!body.contains(absent), "{query} {language}: {body}");
        }
    }
    let zh_page = client
        .get(&authorize)
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [
        "<html lang=\"zh-CN\">",
        "无法接受该应用的请求",
        "请返回应用并重新开始。",
    ] {
        assert!(zh_page.contains(text), "{text}: {zh_page}");
    }
    // A POST that is not a form, and a consent answer without the CSRF cookie.
    let not_form = client
        .post(&authorize)
        .header("accept-language", "zh-CN")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_form.status(), 400);
    let body = not_form.text().await.unwrap();
    assert!(
        body.contains("请求正文必须为 application/x-www-form-urlencoded 格式。"),
        "{body}"
    );
    let forged = client
        .post(server.url("/oauth/authorize/consent"))
        .header("accept-language", "zh-CN")
        .form(&[("csrf_token", "forged"), ("client_id", "app")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body = forged.text().await.unwrap();
    assert!(
        body.contains("表单已过期或并非来自本站，请返回应用重新开始。"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_go_back_to_the_client_with_state() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let (_, challenge) = pkce();
    let with = |extra: &[(&'static str, &'static str)], drop: &str| {
        let mut q: Vec<(&str, &str)> = code_request("app", &challenge, "openid")
            .into_iter()
            .filter(|(k, _)| *k != drop)
            .collect();
        q.extend_from_slice(extra);
        q
    };
    let expect = [
        (
            with(&[("response_type", "token")], "response_type"),
            "unsupported_response_type",
        ),
        (
            with(&[("response_type", "id_token")], "response_type"),
            "unsupported_response_type",
        ),
        (with(&[], "response_type"), "invalid_request"),
        (
            with(
                &[("code_challenge_method", "plain")],
                "code_challenge_method",
            ),
            "invalid_request",
        ),
        (with(&[("request", "eyJ.x.y")], ""), "request_not_supported"),
        (
            with(&[("response_mode", "fragment")], ""),
            "invalid_request",
        ),
    ];
    for (q, error) in expect {
        let out = browser.authorize(&q, Some(("alice", ALICE_PASSWORD))).await;
        let p = out.params();
        assert_eq!(p["error"], error, "{q:?}");
        assert_eq!(p["state"], "st-123", "state always comes back");
        assert_eq!(p["iss"], server.base);
    }
    // A public client must use PKCE.
    let q: Vec<(&str, &str)> = code_request("spa", &challenge, "openid")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let out = browser.authorize(&q, None).await;
    assert_eq!(out.params()["error"], "invalid_request");
    assert!(out.params()["error_description"].contains("PKCE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn code_misuse_is_refused_and_a_replay_revokes_the_tokens() {
    let (mut server, _b) = oidc_server(true, "").await;
    let mut browser = Browser::new(&server);

    // Reused code: the second exchange fails and the tokens of the first are revoked.
    let (code, verifier) = code_for(&mut browser, "app").await;
    let (status, body) = token_as(&server, "app", "app-secret", &exchange(&code, &verifier)).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(is_authenticated(&server, &access).await);
    oauth_error(
        token_as(&server, "app", "app-secret", &exchange(&code, &verifier)).await,
        400,
        "invalid_grant",
    );
    assert!(
        !is_authenticated(&server, &access).await,
        "replay revoked the session"
    );
    let (status, _) = userinfo(&server, &access).await;
    assert_eq!(status, 401);

    // A code from another client, a wrong redirect_uri, a PKCE mismatch, a missing verifier:
    // each refused, and each code is spent by the attempt.
    let (code, verifier) = code_for(&mut browser, "app").await;
    oauth_error(
        token_as(
            &server,
            "other",
            "other-secret",
            &exchange(&code, &verifier),
        )
        .await,
        400,
        "invalid_grant",
    );
    oauth_error(
        token_as(&server, "app", "app-secret", &exchange(&code, &verifier)).await,
        400,
        "invalid_grant",
    );
    let (code, verifier) = code_for(&mut browser, "app").await;
    let mut form = exchange(&code, &verifier);
    form[2] = ("redirect_uri", "http://127.0.0.1:5555/other");
    oauth_error(
        token_as(&server, "app", "app-secret", &form).await,
        400,
        "invalid_grant",
    );
    let (code, _) = code_for(&mut browser, "app").await;
    let (wrong, _) = pkce();
    oauth_error(
        token_as(&server, "app", "app-secret", &exchange(&code, &wrong)).await,
        400,
        "invalid_grant",
    );
    let (code, _) = code_for(&mut browser, "spa").await;
    oauth_error(
        token_as(
            &server,
            "spa",
            "",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await,
        400,
        "invalid_grant",
    );
    oauth_error(
        token_as(
            &server,
            "app",
            "app-secret",
            &exchange("no-such-code", &wrong),
        )
        .await,
        400,
        "invalid_grant",
    );

    // KubeSphere 3.2's grant_type=code works like authorization_code.
    let (code, verifier) = code_for(&mut browser, "app").await;
    let mut form = exchange(&code, &verifier);
    form[0] = ("grant_type", "code");
    assert_eq!(token_as(&server, "app", "app-secret", &form).await.0, 200);

    // Client authentication: unknown client, wrong secret, missing credentials.
    let (code, verifier) = code_for(&mut browser, "app").await;
    oauth_error(
        token_as(&server, "nobody", "x", &exchange(&code, &verifier)).await,
        401,
        "invalid_client",
    );
    oauth_error(
        token_as(&server, "app", "wrong-secret", &exchange(&code, &verifier)).await,
        401,
        "invalid_client",
    );
    oauth_error(
        token_as(&server, "app", "", &exchange(&code, &verifier)).await,
        401,
        "invalid_client",
    );
    // client_secret_post works as well as Basic (the code is still unused).
    let mut form = exchange(&code, &verifier);
    form.extend([("client_id", "app"), ("client_secret", "app-secret")]);
    let resp = http()
        .post(server.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // An expired code (60 s) is refused.
    let (code, verifier) = code_for(&mut browser, "app").await;
    server.advance_clock(Duration::from_secs(61)).unwrap();
    wait_for_clock(&server, now_s() + 60).await;
    oauth_error(
        token_as(&server, "app", "app-secret", &exchange(&code, &verifier)).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nonce_round_trip_and_expired_tokens() {
    let (mut server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    // The nonce of the request comes back unchanged; without one, the ID token has none.
    let (verifier, challenge) = pkce();
    let mut q = code_request("app", &challenge, "openid");
    q[5] = ("nonce", "a-very-specific-nonce");
    let out = browser.authorize(&q, Some(("alice", ALICE_PASSWORD))).await;
    let (_, body) = token_as(
        &server,
        "app",
        "app-secret",
        &exchange(&out.params()["code"], &verifier),
    )
    .await;
    let (_, claims) = jwt_parts(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "a-very-specific-nonce");
    let (verifier, challenge) = pkce();
    let q: Vec<(&str, &str)> = code_request("app", &challenge, "openid")
        .into_iter()
        .filter(|(k, _)| *k != "nonce")
        .collect();
    let out = browser.authorize(&q, None).await;
    let (_, body) = token_as(
        &server,
        "app",
        "app-secret",
        &exchange(&out.params()["code"], &verifier),
    )
    .await;
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&id_token);
    assert!(claims.get("nonce").is_none(), "{claims}");
    let access = body["access_token"].as_str().unwrap().to_owned();

    // Two hours later (access tokens live one hour here): the access token is refused at
    // userinfo with a Bearer challenge and by TokenReview; the expired ID token still names
    // the session to end at logout.
    server.advance_clock(Duration::from_secs(2 * 3600)).unwrap();
    wait_for_clock(&server, now_s() + 2 * 3600 - 5).await;
    let resp = http()
        .get(server.url("/oauth/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(!is_authenticated(&server, &access).await);
    let resp = http()
        .get(format!(
            "{}?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s",
            server.url("/oauth/logout"),
            url::form_urlencoded::byte_serialize(BYE.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // A post-logout URI not registered for the hint's client is refused.
    let resp = http()
        .get(format!(
            "{}?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            server.url("/oauth/logout")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http()
        .get(format!(
            "{}?id_token_hint={id_token}&client_id=other",
            server.url("/oauth/logout")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        400,
        "client_id must match the hint's audience"
    );
}
