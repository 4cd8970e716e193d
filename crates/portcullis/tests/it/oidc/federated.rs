//! An authorization request whose user logs in through an identity provider (the fake GitHub of
//! `portcullis-test-upstreams`) instead of the password form: the login page's provider link
//! carries `return_to`, the federated login sets the session cookie, and the browser comes back
//! to the authorization endpoint, which issues the code.

use portcullis_test_upstreams::FakeGitHub;

use super::*;

fn github(gh: &FakeGitHub) -> String {
    format!(
        r#"    identityProviders:
    - name: github
      type: GitHubIdentityProvider
      mappingMethod: auto
      provider:
        clientID: "{}"
        clientSecret: "{}"
        scopes: [user:email]
        endpoint:
          authURL: "{}"
          tokenURL: "{}"
          userInfoURL: "{}"
"#,
        gh.client_id(),
        gh.client_secret(),
        gh.auth_url(),
        gh.token_url(),
        gh.user_info_url()
    )
}

/// GET `url` and the `Location` it answers with (any status but a redirect fails).
async fn hop(browser: &mut Browser, url: &str) -> String {
    let resp = browser.get(url).await;
    let status = resp.status().as_u16();
    match resp.headers().get("location") {
        Some(l) => l.to_str().unwrap().to_owned(),
        None => panic!(
            "{url}: expected a redirect, got {status}: {}",
            resp.text().await.unwrap()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_provider_login_completes_an_authorization_request() {
    let gh = FakeGitHub::start().await;
    gh.add_user(
        7,
        "octocat",
        Some("octo@example.org"),
        vec![("octo@example.org", true, true)],
    );
    gh.login_as(7);
    let (server, _b) = oidc_server(false, &github(&gh)).await;
    // No redirectURL in the provider options: GitHub sends the browser to the app's registered
    // callback, Portcullis' own.
    gh.set_callback_url(Some(&server.url("/oauth/callback/github")));
    let mut browser = Browser::new(&server);
    let (verifier, challenge) = pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(code_request("app", &challenge, "openid profile email"))
        .finish();

    // The authorization endpoint sends the browser to the sign-in page, whose GitHub button
    // (carrying the same `return_to`) starts the federated login.
    let login = hop(
        &mut browser,
        &format!("{}/oauth/authorize?{q}", server.base),
    )
    .await;
    let page = browser.get(&login).await.text().await.unwrap();
    let start = href_containing(&page, "/login/github?");
    let upstream = hop(&mut browser, &start).await;
    assert!(upstream.starts_with(&gh.auth_url()), "{upstream}");
    let callback = hop(&mut browser, &upstream).await;
    let back = hop(&mut browser, &callback).await;
    assert!(
        back.contains("/oauth/authorize?"),
        "the login returns to the request: {back}"
    );
    assert!(browser.cookies.contains_key("portcullis_session"));
    let done = hop(&mut browser, &back).await;
    let params: HashMap<String, String> = url::Url::parse(&done)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["state"], "st-123");

    let (status, body) = token_as(
        &server,
        "app",
        "app-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims =
        super::flow::verify_with_jwks(&server, body["id_token"].as_str().unwrap(), "app").await;
    assert_eq!(claims["sub"], "octocat");
    assert_eq!(claims["email"], "octo@example.org");
    assert_eq!(
        claims["email_verified"], true,
        "the identity provider reported this address"
    );
}

/// The `href` of the first link containing `part`, unescaped.
fn href_containing(page: &str, part: &str) -> String {
    let at = page
        .find(part)
        .unwrap_or_else(|| panic!("no link to {part:?} in {page}"));
    let start = page[..at].rfind("href=\"").unwrap() + 6;
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}
