//! Open-redirect attempts on every parameter that decides where a browser goes: `redirect_uri`
//! of `/oauth/authorize` (also against a development client's wildcard), `post_logout_redirect_uri`
//! of `/oauth/logout` (with and without an `id_token_hint`), `return_to` of the sign-in form and
//! of a federated login, and a forged `state` at a provider callback. Each gets a battery of
//! hostile spellings; every answer is an error or a redirect to this server or to exactly the
//! registered URI.

use portcullis_test_upstreams::FakeGitHub;
use url::Url;

use crate::common::*;
use crate::oidc::{BYE, Browser as OidcBrowser, REDIRECT, code_request, oidc_server, pkce};

/// Hostile variants of `good` (a URL the server would accept), aimed at `evil.example`.
fn hostile(good: &str) -> Vec<String> {
    let u = Url::parse(good).unwrap();
    let host = u.host_str().unwrap();
    let port = u.port_or_known_default().unwrap();
    let hp = format!("{host}:{port}");
    let path = u.path();
    let encoded: String = url::form_urlencoded::byte_serialize(good.as_bytes()).collect();
    vec![
        "https://evil.example/".into(),
        "//evil.example/".into(),
        "///evil.example/".into(),
        "/\\evil.example/".into(),
        "\\\\evil.example/".into(),
        "https:evil.example".into(),
        "https:/evil.example".into(),
        "http:\\\\evil.example".into(),
        "javascript:alert(document.cookie)".into(),
        "JaVaScRiPt:alert(1)//".into(),
        "data:text/html,<script>alert(1)</script>".into(),
        format!("http://{hp}@evil.example{path}"),
        format!("http://{hp}.evil.example{path}"),
        format!("http://evil.example/{hp}{path}"),
        format!("http://evil.example\\@{hp}{path}"),
        format!("http://evil.example#@{hp}{path}"),
        format!("http://evil.example?@{hp}{path}"),
        format!("http://{host}:{}{path}", port + 1),
        format!("{good}/extra"),
        format!("{good}?next=https://evil.example/"),
        format!("{good}#@evil.example"),
        format!("{good}/../../evil"),
        format!("{good}%2F..%2F..%2Fevil"),
        good.to_uppercase(),
        good.replacen("http://", "HTTP://", 1),
        format!(" {good}"),
        format!("{good}\t"),
        format!("{good}%00"),
        encoded,
        format!("https://evil.example/?{good}"),
    ]
}

/// Fails unless `location` (resolved against `own`) is on `own`'s origin, or is one of
/// `registered` exactly, with nothing but a query added.
#[track_caller]
fn assert_stays(location: Option<&str>, own: &str, registered: &[&str], what: &str) {
    let Some(location) = location else { return };
    let own = Url::parse(own).unwrap();
    let target = own
        .join(location)
        .unwrap_or_else(|e| panic!("{what}: {location}: {e}"));
    if target.origin() == own.origin() && target.username().is_empty() {
        return;
    }
    let mut bare = target.clone();
    bare.set_query(None);
    assert!(
        registered.contains(&bare.as_str()) && target.username().is_empty(),
        "{what}: redirected off-site to {target}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_logout_and_sign_in_never_redirect_off_site() {
    let dev = "    - name: dev\n      secret: dev-secret\n      development: true\n      redirectURIs: [\"http://localhost:*/cb\"]\n";
    let (server, _b) = oidc_server(false, dev).await;
    let own = server.base.clone();
    let mut browser = OidcBrowser::new(&server);
    let (_, challenge) = pkce();
    // Signed in once, so later authorization requests answer at once.
    let out = browser
        .authorize(
            &code_request("app", &challenge, "openid"),
            Some(("alice", crate::oidc::ALICE_PASSWORD)),
        )
        .await;
    assert!(!out.params()["code"].is_empty());

    let authorize = |client: &str, uri: &str| {
        let mut q = code_request(client, &challenge, "openid");
        q[2] = ("redirect_uri", uri);
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&q)
            .finish();
        format!("{own}/oauth/authorize?{q}")
    };
    for uri in hostile(REDIRECT) {
        let resp = browser.get(&authorize("app", &uri)).await;
        let status = resp.status().as_u16();
        let loc = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        assert!(status < 500, "{uri}: {status}");
        assert_stays(loc.as_deref(), &own, &[], &format!("authorize {uri:?}"));
    }
    for uri in hostile("http://localhost:8000/cb").into_iter().chain([
        "http://localhost:1@evil.example/cb".to_owned(),
        "http://localhost:1.evil.example/cb".to_owned(),
        "http://localhost:1\\@evil.example/cb".to_owned(),
    ]) {
        let resp = browser.get(&authorize("dev", &uri)).await;
        let loc = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let allowed = Url::parse(&uri)
            .ok()
            .filter(|u| u.host_str() == Some("localhost") && u.username().is_empty());
        match (&loc, allowed) {
            // A development client's pattern may admit other ports or paths on localhost.
            (Some(l), Some(_)) => assert_eq!(
                Url::parse(l).unwrap().host_str(),
                Some("localhost"),
                "{uri}"
            ),
            (l, _) => assert_stays(l.as_deref(), &own, &[], &format!("dev authorize {uri:?}")),
        }
    }

    // Logout: the registered URI, this server, or an error; with a hint for `app` too.
    let mut targets = hostile(BYE);
    targets.extend(hostile(&format!("{own}/done")));
    for uri in &targets {
        for extra in ["", "&client_id=app"] {
            let url = format!(
                "{own}/oauth/logout?post_logout_redirect_uri={}&state=s{extra}",
                url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
            );
            let resp = http().get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            assert!(status < 500, "{uri}: {status}");
            let loc = resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            assert_stays(
                loc.as_deref(),
                &own,
                &[BYE],
                &format!("logout {uri:?}{extra}"),
            );
        }
    }

    // The sign-in form: `return_to` posted directly (not only what the page offers).
    browser.get(&format!("{own}/login")).await;
    let csrf = browser.cookies["portcullis_csrf"].clone();
    for path in ["/login", "/oauth/login"] {
        for uri in hostile(&format!("{own}/account")) {
            let resp = browser
                .post(
                    &format!("{own}{path}"),
                    &[
                        ("csrf_token", csrf.as_str()),
                        ("return_to", uri.as_str()),
                        ("username", "alice"),
                        ("password", crate::oidc::ALICE_PASSWORD),
                    ],
                )
                .await;
            assert_eq!(resp.status(), 303, "{path} {uri}");
            let loc = resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            assert_stays(
                loc.as_deref(),
                &own,
                &[],
                &format!("{path} return_to {uri:?}"),
            );
            // The page never offers a hostile return_to in its form either.
            let page = browser
                .get(&format!(
                    "{own}{path}?return_to={}",
                    url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
                ))
                .await
                .text()
                .await
                .unwrap();
            let marker = "name=\"return_to\" value=\"";
            if let Some(i) = page.find(marker) {
                let rest = &page[i + marker.len()..];
                let offered = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
                assert_stays(
                    Some(&offered),
                    &own,
                    &[],
                    &format!("{path} page for {uri:?}"),
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn federated_return_to_and_forged_state_stay_on_site() {
    use crate::federation::{Browser, PUBLIC, callback_url, github, yaml};
    let gh = FakeGitHub::start().await;
    gh.add_user(7, "octo", None, vec![("octo@example.com", true, true)]);
    gh.login_as(7);
    let b = backend(false).await;
    let cfg = github(&gh, "github", "auto", Some(&callback_url("github")), "");
    let server = start(Some(yaml(&[cfg])), &b);
    for uri in hostile(&format!("{PUBLIC}/account")) {
        let mut browser = Browser::new(&server);
        let enc: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
        let hops = browser
            .follow(&format!("{PUBLIC}/login/github?return_to={enc}"))
            .await;
        for hop in &hops {
            // Only the trip to the provider may leave, and only to the provider.
            let loc = hop.location();
            if loc
                .as_deref()
                .is_some_and(|l| l.starts_with(&gh.auth_url()))
            {
                continue;
            }
            assert_stays(
                loc.as_deref(),
                PUBLIC,
                &[],
                &format!("federated return_to {uri:?}"),
            );
        }
        assert!(
            browser.cookie("portcullis_session").is_some(),
            "{uri}: signed in"
        );
    }
    // A callback with a state this browser never got: an error page, no redirect.
    let mut browser = Browser::new(&server);
    for state in ["forged", "", "%00", "https://evil.example/"] {
        let hop = browser
            .get(&format!(
                "{PUBLIC}/oauth/callback/github?code=c&state={state}"
            ))
            .await;
        assert!((400..500).contains(&hop.status), "{state}: {}", hop.status);
        assert_stays(hop.location().as_deref(), PUBLIC, &[], "forged state");
    }
}
