//! GitHub-specific behaviour: e-mail fallback, renamed logins, GitHub's 200-with-error answers, required headers.

use portcullis_idp::CallbackRequest;
use portcullis_test_upstreams::FakeGitHub;
use serde_json::{Value, json};

use crate::support;

fn options(f: &FakeGitHub, scopes: &[&str]) -> Value {
    json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
           "redirectURL": "https://console.example/oauth/redirect/github", "scopes": scopes,
           "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}})
}

fn provider(f: &FakeGitHub, scopes: &[&str]) -> std::sync::Arc<dyn portcullis_idp::OAuthProvider> {
    support::create(
        "GitHubIdentityProvider",
        options(f, scopes),
        support::http(),
    )
    .unwrap()
}

#[tokio::test]
async fn public_email_user() {
    let f = FakeGitHub::start().await;
    f.add_user(583231, "octocat", Some("octocat@github.com"), vec![]);
    f.set_name(583231, "The Octocat");
    let id = support::login(&*provider(&f, &[]), &[("login_as", "583231")])
        .await
        .unwrap();
    assert_eq!(
        id.user_id(),
        "583231",
        "the numeric id, as a decimal string"
    );
    assert_eq!(id.username.as_deref(), Some("octocat"));
    assert_eq!(
        id.legacy_user_ids,
        vec!["octocat"],
        "KubeSphere linked by login"
    );
    assert_eq!(id.email.as_deref(), Some("octocat@github.com"));
    assert_eq!(
        id.email_verified,
        Some(true),
        "GitHub shows only a verified public address"
    );
    assert_eq!(id.display_name.as_deref(), Some("The Octocat"));
    // With a public e-mail, /user/emails is not needed.
    assert!(!f.requests().iter().any(|r| r.path.ends_with("/emails")));
}

#[tokio::test]
async fn private_email_falls_back_to_primary_verified() {
    let f = FakeGitHub::start().await;
    let emails = vec![
        ("old@example.com", false, true),
        ("me@example.com", true, true),
        ("x@example.com", false, false),
    ];
    f.add_user(7, "private-person", None, emails);
    let id = support::login(&*provider(&f, &["user:email"]), &[("login_as", "7")])
        .await
        .unwrap();
    assert_eq!(id.email.as_deref(), Some("me@example.com"));
    assert_eq!(id.email_verified, Some(true));
}

#[tokio::test]
async fn private_email_without_scope_or_verification_gives_no_email() {
    let f = FakeGitHub::start().await;
    f.add_user(
        7,
        "private-person",
        None,
        vec![("me@example.com", true, true)],
    );
    // No user:email scope: /user/emails answers 404; the login still succeeds, without an e-mail.
    let id = support::login(&*provider(&f, &[]), &[("login_as", "7")])
        .await
        .unwrap();
    assert_eq!((id.user_id(), id.email.as_deref()), ("7", None));

    f.add_user(
        8,
        "unverified",
        None,
        vec![("new@example.com", true, false)],
    );
    let id = support::login(&*provider(&f, &["user"]), &[("login_as", "8")])
        .await
        .unwrap();
    assert_eq!(id.email, None, "an unverified primary address is not used");
}

#[tokio::test]
async fn enterprise_emails_sit_beside_user_info() {
    let f = FakeGitHub::start().await;
    f.add_user(9, "ghe-user", None, vec![("ghe@corp.example", true, true)]);
    let mut opts = options(&f, &["user:email"]);
    opts["endpoint"]["userInfoURL"] = json!(f.enterprise_user_info_url());
    let p = support::create("GitHubIdentityProvider", opts, support::http()).unwrap();
    let id = support::login(&*p, &[("login_as", "9")]).await.unwrap();
    assert_eq!(id.email.as_deref(), Some("ghe@corp.example"));
    let paths: Vec<String> = f.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&"/api/v3/user".to_owned())
            && paths.contains(&"/api/v3/user/emails".to_owned()),
        "{paths:?}"
    );
}

#[tokio::test]
async fn renamed_login_keeps_the_numeric_id() {
    let f = FakeGitHub::start().await;
    f.add_user(42, "before", None, vec![]);
    let p = provider(&f, &[]);
    let first = support::login(&*p, &[("login_as", "42")]).await.unwrap();
    f.rename_user(42, "after");
    // Someone else takes the old login: they must not get the old account's id.
    f.add_user(43, "before", None, vec![]);
    let second = support::login(&*p, &[("login_as", "42")]).await.unwrap();
    let squatter = support::login(&*p, &[("login_as", "43")]).await.unwrap();
    assert_eq!(first.user_id(), second.user_id());
    assert_eq!(second.username.as_deref(), Some("after"));
    assert_eq!(second.legacy_user_ids, vec!["after"]);
    assert_ne!(squatter.user_id(), first.user_id());
}

#[tokio::test]
async fn bad_verification_code_arrives_with_http_200() {
    let f = FakeGitHub::start().await;
    f.add_user(1, "u", None, vec![]);
    // The raw answer: HTTP 200 with an error body, as GitHub does.
    let raw = support::http()
        .post(f.token_url())
        .header("accept", "application/json")
        .form(&[
            ("client_id", f.client_id()),
            ("client_secret", f.client_secret()),
            ("code", "nope".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["error"],
        "bad_verification_code"
    );

    let e = provider(&f, &[])
        .exchange(&CallbackRequest::from_query("code=nope"))
        .await
        .unwrap_err();
    assert!(
        e.is_bad_credentials() && e.to_string().contains("bad_verification_code"),
        "{e}"
    );
}

#[tokio::test]
async fn redirect_uri_mismatch_is_misconfigured() {
    let f = FakeGitHub::start().await;
    f.add_user(1, "u", None, vec![]);
    let code = f.issue_code(1, Some("https://elsewhere.example/cb"), "", None);
    let e = provider(&f, &[])
        .exchange(&CallbackRequest::from_query(&format!("code={code}")))
        .await
        .unwrap_err();
    assert!(
        e.is_misconfigured() && e.to_string().contains("redirect_uri_mismatch"),
        "{e}"
    );

    // A mismatch detected at the authorize step comes back on the callback as `error=`.
    f.set_callback_url(Some("https://registered.example/cb"));
    let url = provider(&f, &[])
        .authorization_url(&portcullis_idp::AuthorizationRequest::new("s"))
        .unwrap();
    let resp = support::http().get(url).send().await.unwrap();
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let cb = CallbackRequest::from_query(location.query().unwrap());
    assert!(cb.check_error().unwrap_err().is_misconfigured());
}

#[tokio::test]
async fn requests_carry_what_github_requires() {
    let f = FakeGitHub::start().await;
    f.add_user(1, "u", None, vec![("u@example.com", true, true)]);
    support::login(&*provider(&f, &["user:email"]), &[("login_as", "1")])
        .await
        .unwrap();
    let requests = f.requests();
    let token = requests
        .iter()
        .find(|r| r.path == "/login/oauth/access_token")
        .unwrap();
    assert_eq!(token.headers["accept"], "application/json");
    assert_eq!(token.params["grant_type"], "authorization_code");
    assert_eq!(token.params["client_secret"], f.client_secret());
    assert_eq!(
        token.params["redirect_uri"],
        "https://console.example/oauth/redirect/github"
    );
    assert!(
        token.params.contains_key("code_verifier"),
        "PKCE verifier sent"
    );
    for api in requests.iter().filter(|r| r.path.starts_with("/user")) {
        assert!(
            api.headers["user-agent"].starts_with("Portcullis"),
            "{:?}",
            api.headers
        );
        assert_eq!(api.headers["accept"], "application/vnd.github+json");
        assert!(api.headers["authorization"].starts_with("Bearer "));
    }
    // The fake refuses what GitHub refuses: no User-Agent is a 403.
    let no_ua = reqwest::Client::builder()
        .build()
        .unwrap()
        .get(f.user_info_url())
        .send()
        .await
        .unwrap();
    assert_eq!(no_ua.status(), 403);
}

#[tokio::test]
async fn form_encoded_token_answer_is_understood() {
    // Without `Accept: application/json` GitHub answers form-encoded; the shared client must read both.
    let f = FakeGitHub::start().await;
    f.add_user(1, "u", None, vec![]);
    let code = f.issue_code(1, None, "read:user,user:email", None);
    let raw = support::http()
        .post(f.token_url())
        .form(&[
            ("client_id", f.client_id()),
            ("client_secret", f.client_secret()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    let body = raw.text().await.unwrap();
    assert!(
        body.contains("token_type=bearer") && body.contains("scope=read%3Auser%2Cuser%3Aemail"),
        "{body}"
    );
}

#[tokio::test]
async fn defaults_and_public_options() {
    let opts = json!({"clientID": "abc", "clientSecret": "s3cret", "redirectURL": "https://console/oauth/redirect/github",
                      "Scopes": ["user"]});
    let p = support::create("GitHubIdentityProvider", opts, support::http()).unwrap();
    let public = p.public_options();
    assert_eq!(
        Value::Object(public),
        json!({"clientID": "abc", "redirectURL": "https://console/oauth/redirect/github", "Scopes": ["user"],
               "endpoint": {"authURL": "https://github.com/login/oauth/authorize",
                            "tokenURL": "https://github.com/login/oauth/access_token",
                            "userInfoURL": "https://api.github.com/user"}})
    );
    let url = p
        .authorization_url(
            &portcullis_idp::AuthorizationRequest::new("st").with_pkce_challenge("ch"),
        )
        .unwrap();
    assert!(
        url.as_str()
            .starts_with("https://github.com/login/oauth/authorize?"),
        "{url}"
    );
    let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        (
            q["client_id"].as_str(),
            q["state"].as_str(),
            q["scope"].as_str()
        ),
        ("abc", "st", "user")
    );
    assert_eq!(q["code_challenge"], "ch");
}

#[tokio::test]
async fn insecure_skip_verify_builds_its_own_client() {
    let f = FakeGitHub::start().await;
    f.add_user(5, "u", None, vec![]);
    let mut opts = options(&f, &[]);
    opts["insecureSkipVerify"] = json!(true);
    let p = support::create("GitHubIdentityProvider", opts, support::http()).unwrap();
    let id = support::login(&*p, &[("login_as", "5")]).await.unwrap();
    assert_eq!(id.user_id(), "5");
}
