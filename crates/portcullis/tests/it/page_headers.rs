//! The security headers of the pages (docs/security.md, "Pages and cookies"; ASVS 5.0 10.1.1:
//! `Referrer-Policy: no-referrer`, so a code or token in a page's URL never leaks through
//! `Referer`): the strict Content-Security-Policy, `X-Frame-Options: DENY`,
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and `Cache-Control:
//! no-store`, on the sign-in page (plain and of an authorization request), the account page,
//! the consent page, the refused-request page, the logout confirmation, the login error page,
//! and on the redirects of a login.

use crate::oidc::{ALICE_PASSWORD, Browser, Outcome, code_request, oidc_server, pkce};

const CSP: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'";
/// The client's redirect URI origin is added to `form-action` on the pages of an
/// authorization request.
const CSP_FOR_CLIENT: &str = "default-src 'none'; style-src 'self'; form-action 'self' http://127.0.0.1:5555; frame-ancestors 'none'";

/// Checks every security header of one answer; `page` says it must be an HTML page.
#[track_caller]
fn secured(resp: &reqwest::Response, what: &str, csp: &str, page: bool) {
    let h = |name: &str| {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} header: {:?}", resp.headers()))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(h("content-security-policy"), csp, "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
    if page {
        assert!(
            h("content-type").starts_with("text/html"),
            "{what}: {}",
            h("content-type")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_sends_the_security_headers() {
    let (server, _b) = oidc_server(false, "").await;
    let mut browser = Browser::new(&server);

    // The sign-in page, and the redirect of a successful sign-in.
    let login = server.url("/login");
    let page = browser.get(&login).await;
    assert_eq!(page.status(), 200);
    secured(&page, "sign-in page", CSP, true);
    let csrf = browser.cookies["portcullis_csrf"].clone();
    let signed_in = browser
        .post(
            &login,
            &[
                ("csrf_token", csrf.as_str()),
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    secured(&signed_in, "sign-in redirect", CSP, false);
    // A refused sign-in answers the page again, with the headers.
    let mut stranger = Browser::new(&server);
    stranger.get(&login).await;
    let stranger_csrf = stranger.cookies["portcullis_csrf"].clone();
    let wrong = stranger
        .post(
            &login,
            &[
                ("csrf_token", stranger_csrf.as_str()),
                ("username", "alice"),
                ("password", "not-her-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    secured(&wrong, "sign-in page after a wrong password", CSP, true);

    // The account page and the logout confirmation.
    let account = browser.get(&server.url("/account")).await;
    assert_eq!(account.status(), 200);
    secured(&account, "account page", CSP, true);
    let logout = browser.get(&server.url("/oauth/logout")).await;
    assert_eq!(logout.status(), 200);
    secured(&logout, "logout confirmation page", CSP, true);
    assert!(logout.text().await.unwrap().contains("Sign out?"));

    // The consent page (a `grantMethod: prompt` client), asked twice: the second answer is
    // read here.
    let (_, challenge) = pkce();
    let q = code_request("consent", &challenge, "openid profile");
    let Outcome::Page(200, body) = browser.authorize(&q, None).await else {
        panic!("expected the consent page");
    };
    assert!(body.contains("See your name"), "{body}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&q)
        .finish();
    let consent = browser
        .get(&format!("{}?{query}", server.url("/oauth/authorize")))
        .await;
    assert_eq!(consent.status(), 200);
    secured(&consent, "consent page", CSP_FOR_CLIENT, true);

    // An authorization request without a session: the redirect to the sign-in page, and that
    // page.
    let mut fresh = Browser::new(&server);
    let q = code_request("app", &challenge, "openid");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&q)
        .finish();
    let to_login = fresh
        .get(&format!("{}?{query}", server.url("/oauth/authorize")))
        .await;
    assert!(to_login.status().is_redirection(), "{}", to_login.status());
    secured(&to_login, "redirect to the sign-in page", CSP, false);
    let location = to_login.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/oauth/login?"), "{location}");
    let page = fresh.get(&location).await;
    assert_eq!(page.status(), 200);
    secured(
        &page,
        "sign-in page of an authorization request",
        CSP_FOR_CLIENT,
        true,
    );

    // The refused-request page (a redirect URI that is not registered).
    let refused = fresh
        .get(&format!(
            "{}?client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            server.url("/oauth/authorize")
        ))
        .await;
    assert_eq!(refused.status(), 400);
    secured(&refused, "refused-request page", CSP, true);
    assert!(refused.text().await.unwrap().contains("Request refused"));

    // The login error page (an identity provider that does not exist).
    let error = fresh.get(&server.url("/login/no-such-provider")).await;
    assert!(error.status().is_client_error(), "{}", error.status());
    secured(&error, "login error page", CSP, true);
    assert!(error.text().await.unwrap().contains("Request id:"));
}
