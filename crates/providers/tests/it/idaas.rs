//! Aliyun IDaaS-specific behaviour: the userinfo envelope, `success:false`, PKCE off by default.

use portcullis_test_upstreams::FakeIdaas;
use serde_json::{Value, json};

use crate::support;

fn options(f: &FakeIdaas) -> Value {
    json!({"clientID": f.client_id(), "clientSecret": f.client_secret(),
           "redirectURL": "https://console.example/oauth/redirect/idaas", "scopes": ["read"],
           "endpoint": {"authURL": f.auth_url(), "tokenURL": f.token_url(), "userInfoURL": f.user_info_url()}})
}

#[tokio::test]
async fn envelope_is_mapped() {
    let f = FakeIdaas::start().await;
    f.add_user("u-123", "bob", Some("bob@example.com"), Some("Bob B."));
    let p = support::create("AliyunIDaaSProvider", options(&f), support::http()).unwrap();
    assert!(!p.supports_pkce(), "PKCE is opt-in for IDaaS");
    let cb = support::authorize(&*p, &[("login_as", "u-123")]).await;
    assert!(!cb.url.as_str().contains("code_challenge"));
    let id = p.exchange(&cb.request).await.unwrap();
    assert_eq!(id.user_id(), "u-123");
    assert_eq!(id.username.as_deref(), Some("bob"));
    assert_eq!(id.email.as_deref(), Some("bob@example.com"));
    assert_eq!(id.display_name.as_deref(), Some("Bob B."));
    assert!(id.legacy_user_ids.is_empty());
    let token = f
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .unwrap();
    assert!(!token.params.contains_key("code_verifier"));
}

#[tokio::test]
async fn success_false_is_an_error_with_the_message() {
    let f = FakeIdaas::start().await;
    f.add_user("u-1", "bob", None, None);
    f.fail_userinfo(Some(("USER_LOCKED", "the account is locked")));
    let p = support::create("AliyunIDaaSProvider", options(&f), support::http()).unwrap();
    let e = support::login(&*p, &[("login_as", "u-1")])
        .await
        .unwrap_err();
    assert!(e.is_upstream(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("the account is locked") && text.contains("USER_LOCKED"),
        "{text}"
    );
}

#[tokio::test]
async fn all_endpoints_are_required() {
    let f = FakeIdaas::start().await;
    for key in ["authURL", "tokenURL", "userInfoURL"] {
        let mut opts = options(&f);
        opts["endpoint"].as_object_mut().unwrap().remove(key);
        let e = support::create("AliyunIDaaSProvider", opts, support::http())
            .err()
            .unwrap();
        assert!(
            e.is_misconfigured() && e.to_string().contains(&format!("`endpoint.{key}`")),
            "{e}"
        );
    }
    let mut opts = options(&f);
    opts.as_object_mut().unwrap().remove("redirectURL");
    let e = support::create("AliyunIDaaSProvider", opts, support::http())
        .err()
        .unwrap();
    assert!(e.to_string().contains("`redirectURL`"), "{e}");
}
