//! Upstream mix-up (ASVS 5.0 10.2.2; RFC 9700 §4.4): a browser login started at one identity
//! provider cannot be finished at another provider's callback. The login-state row records its
//! provider; a callback at any other provider is refused before any code is exchanged, so
//! provider A's code never reaches provider B's token endpoint and B's code is never redeemed
//! for a login that A started.

use portcullis_test_upstreams::{FakeGitHub, FakeIdaas};

use super::*;

/// How many code exchanges an upstream has seen (`path` is its token endpoint's path).
fn exchanges(requests: &[portcullis_test_upstreams::RecordedRequest], path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

const GH_TOKEN: &str = "/login/oauth/access_token";
const IDAAS_TOKEN: &str = "/oauth/token";

#[tokio::test(flavor = "multi_thread")]
async fn a_login_started_at_one_provider_is_refused_at_another() {
    let gh = FakeGitHub::start().await;
    gh.add_user(101, "octocat", None, vec![]);
    gh.login_as(101);
    let ida = FakeIdaas::start().await;
    ida.add_user("sub-7", "jane", None, None);
    ida.login_as("sub-7");
    let b = backend(false).await;
    let server = start(
        Some(yaml(&[
            github(&gh, "github", "auto", Some(&callback_url("github")), ""),
            idaas(&ida, "idaas", "auto", &callback_url("idaas"), ""),
        ])),
        &b,
    );
    let other_provider = "This login was started at another identity provider.";

    // 1. Provider A's answer (code and state) delivered at provider B's callback, in the browser
    //    that started the login (the state cookie's path covers every callback).
    let mut browser = Browser::new(&server);
    let a_callback = browser.until_callback("github").await;
    let a_state = url::Url::parse(&a_callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        browser.cookie("portcullis_login_state").as_deref(),
        Some(a_state.as_str())
    );
    let at_b = a_callback.replace("/oauth/callback/github?", "/oauth/callback/idaas?");
    assert_ne!(at_b, a_callback);
    let refused = browser.get(&at_b).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.header("content-type").starts_with("text/html"),
        "{refused:?}"
    );
    assert!(refused.body.contains(other_provider), "{}", refused.body);
    assert!(refused.set_cookie("portcullis_session").is_none());
    assert!(
        browser.cookie("portcullis_login_state").is_none(),
        "the browser is told to forget the state: {:?}",
        refused.set_cookies()
    );
    assert_eq!(
        exchanges(&ida.requests(), IDAAS_TOKEN),
        0,
        "A's code never reaches B's token endpoint"
    );
    assert_eq!(exchanges(&gh.requests(), GH_TOKEN), 0);

    // The state is single-use whatever happened: the tampered login cannot be finished at A
    // either (it must start again); A's code stays unredeemed.
    browser.set("portcullis_login_state", Some(&a_state), "/oauth/callback");
    let again = browser.get(&a_callback).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("already completed or is unknown"),
        "{}",
        again.body
    );
    assert_eq!(exchanges(&gh.requests(), GH_TOKEN), 0);

    // 2. The classic mix-up: the browser started at A, but the answer comes from B's
    //    authorization server (a code of B, carrying A's state) at B's callback.
    let mut victim = Browser::new(&server);
    let start_a = victim.get(&format!("{PUBLIC}/login/github")).await;
    assert_eq!(start_a.status, 302, "{}", start_a.body);
    let a_state = start_a.location_param("state").unwrap();
    let resp = http()
        .get(ida.auth_url())
        .query(&[
            ("client_id", ida.client_id().as_str()),
            ("response_type", "code"),
            ("redirect_uri", callback_url("idaas").as_str()),
            ("state", a_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let b_answer = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        b_answer.starts_with(&format!("{}?code=", callback_url("idaas"))),
        "{b_answer}"
    );
    let refused = victim.get(&b_answer).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(other_provider), "{}", refused.body);
    assert!(refused.set_cookie("portcullis_session").is_none());
    assert_eq!(
        exchanges(&ida.requests(), IDAAS_TOKEN),
        0,
        "B's code is not redeemed for a login A started"
    );
    assert_eq!(exchanges(&gh.requests(), GH_TOKEN), 0);

    // Nothing was created; both refusals are failed login records of the callback's provider.
    assert_eq!(user_names(&server), vec!["admin"]);
    let failures = records(&server, "idaas:unknown").await;
    assert_eq!(failures.len(), 2, "{failures:#?}");
    for r in &failures {
        assert_eq!(r["spec"]["success"], false, "{r}");
        assert_eq!(r["spec"]["provider"], "idaas", "{r}");
        assert!(
            r["spec"]["reason"]
                .as_str()
                .unwrap()
                .contains("started at another identity provider"),
            "{r}"
        );
    }

    // Nothing else was consumed: fresh logins at both providers work, one exchange each.
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    signed_in_as(&hops, "octocat");
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/idaas"))
        .await;
    signed_in_as(&hops, "jane");
    assert_eq!(exchanges(&gh.requests(), GH_TOKEN), 1);
    assert_eq!(exchanges(&ida.requests(), IDAAS_TOKEN), 1);
}
