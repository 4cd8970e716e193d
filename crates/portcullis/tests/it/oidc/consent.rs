//! The interactive parts of the authorization endpoint: consent (`grantMethod: prompt`, asked
//! once per client and scope set, remembered in the store; `deny`), `prompt=none|login|consent`,
//! `max_age`, scope restrictions, and a public client with ES256 ID tokens.

use std::time::Duration;

use super::*;

fn consent_form(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    let marker = "<input type=\"hidden\" name=\"";
    while let Some(i) = rest.find(marker) {
        let tail = &rest[i + marker.len()..];
        let name = &tail[..tail.find('"').unwrap()];
        out.push((name.to_owned(), field(&rest[i..], name)));
        rest = tail;
    }
    out
}

async fn submit_consent(
    browser: &mut Browser,
    server: &Server,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    let mut form = consent_form(page);
    form.push(("decision".into(), decision.into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser
        .post(&server.url("/oauth/authorize/consent"), &pairs)
        .await
}

fn query_of(resp: &reqwest::Response) -> HashMap<String, String> {
    let loc = resp.headers()["location"].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_is_asked_once_per_scope_set() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let (_, challenge) = pkce();
    let q = code_request("consent", &challenge, "openid profile");
    let Outcome::Page(200, page) = browser.authorize(&q, Some(("alice", ALICE_PASSWORD))).await
    else {
        panic!("expected the consent page");
    };
    assert!(page.contains("See your name"), "{page}");

    // The form needs the CSRF token of this browser.
    let mut stranger = Browser::new(&server);
    stranger.cookies = browser.cookies.clone();
    stranger.cookies.remove("portcullis_csrf");
    assert_eq!(
        submit_consent(&mut stranger, &server, &page, "allow")
            .await
            .status(),
        403
    );

    // Deny: access_denied to the client, with state.
    let denied = submit_consent(&mut browser, &server, &page, "deny").await;
    assert_eq!(denied.status(), 302);
    let p = query_of(&denied);
    assert_eq!(
        (p["error"].as_str(), p["state"].as_str()),
        ("access_denied", "st-123")
    );

    // Allow: a code; the next identical request needs no page.
    let allowed = submit_consent(&mut browser, &server, &page, "allow").await;
    assert!(query_of(&allowed).contains_key("code"));
    assert!(
        browser
            .authorize(&q, None)
            .await
            .params()
            .contains_key("code")
    );
    // A narrower set is covered; a wider one asks again, and prompt=none then says so.
    let narrow = code_request("consent", &challenge, "openid");
    assert!(
        browser
            .authorize(&narrow, None)
            .await
            .params()
            .contains_key("code")
    );
    let mut wider = code_request("consent", &challenge, "openid email");
    wider.push(("prompt", "none"));
    assert_eq!(
        browser.authorize(&wider, None).await.params()["error"],
        "consent_required"
    );
    // prompt=consent asks even for a remembered set.
    let mut again = q.clone();
    again.push(("prompt", "consent"));
    assert!(matches!(
        browser.authorize(&again, None).await,
        Outcome::Page(200, _)
    ));

    // grantMethod deny and scopeRestrictions are answered at the client.
    let p = browser
        .authorize(&code_request("denied", &challenge, "openid"), None)
        .await;
    assert_eq!(p.params()["error"], "access_denied");
    let p = browser
        .authorize(&code_request("narrow", &challenge, "openid email"), None)
        .await;
    assert_eq!(p.params()["error"], "invalid_scope");
    assert!(
        browser
            .authorize(&code_request("narrow", &challenge, "openid profile"), None)
            .await
            .params()
            .contains_key("code")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_login_and_max_age_force_a_new_login() {
    let (mut server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let first = code_flow(&server, &mut browser, "app", "app-secret", "openid").await;
    let (_, c1) = jwt_parts(first["id_token"].as_str().unwrap());
    let (_, challenge) = pkce();

    // prompt=login: the login page comes although the browser is logged in; without
    // credentials the browser stays there.
    let mut q = code_request("app", &challenge, "openid");
    q.push(("prompt", "login"));
    assert!(
        matches!(browser.authorize(&q, None).await, Outcome::Page(_, ref m) if m.contains("login page"))
    );
    assert!(
        browser
            .authorize(&q, Some(("alice", ALICE_PASSWORD)))
            .await
            .params()
            .contains_key("code")
    );

    // max_age: a login older than max_age needs a new one; prompt=none then fails.
    server.advance_clock(Duration::from_secs(120)).unwrap();
    wait_for_clock(&server, c1["iat"].as_i64().unwrap() + 120).await;
    let mut q = code_request("app", &challenge, "openid");
    q.push(("max_age", "60"));
    q.push(("prompt", "none"));
    assert_eq!(
        browser.authorize(&q, None).await.params()["error"],
        "login_required"
    );
    let (verifier, challenge) = pkce();
    let mut q = code_request("app", &challenge, "openid");
    q.push(("max_age", "60"));
    let out = browser.authorize(&q, Some(("alice", ALICE_PASSWORD))).await;
    let (status, body) = token_as(
        &server,
        "app",
        "app-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &out.params()["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, c2) = jwt_parts(body["id_token"].as_str().unwrap());
    assert!(
        c2["auth_time"].as_i64().unwrap() >= c1["auth_time"].as_i64().unwrap() + 120,
        "fresh auth_time: {c2}"
    );
    // Unknown prompt values and prompt=none combined with another are invalid.
    let mut bad = code_request("app", &challenge, "openid");
    bad.push(("prompt", "none login"));
    assert_eq!(
        browser.authorize(&bad, None).await.params()["error"],
        "invalid_request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_client_with_es256_id_tokens() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);
    let body = code_flow(&server, &mut browser, "spa", "", "openid email").await;
    let id_token = body["id_token"].as_str().unwrap();
    let (header, _) = jwt_parts(id_token);
    assert_eq!(header["alg"], "ES256");
    let claims = super::flow::verify_with_jwks(&server, id_token, "spa").await;
    assert_eq!(claims["sub"], "alice");
    // A public client authenticates with nothing but its id, and may not send a secret.
    let (status, e) = token_as(
        &server,
        "spa",
        "made-up",
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );
}
