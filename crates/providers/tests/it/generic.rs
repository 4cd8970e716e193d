//! `OAuth2IdentityProvider`: logins configured only in YAML, the shipped example configurations
//! (`examples-config/*.yaml`) against GitLab-, Gitea- and Google-shaped fakes, and its option errors.

use portcullis_test_upstreams::{FakeOAuth2, FakeUser, Flavor};
use serde_json::{Value, json};

use crate::support;

fn alice(extra: Value) -> FakeUser {
    FakeUser {
        id: 42,
        login: "alice".into(),
        name: "Alice Liddell".into(),
        email: "alice@example.org".into(),
        email_verified: true,
        extra,
    }
}

/// The `provider:` map of the first identity provider of a YAML document.
fn provider_options(yaml: &str) -> Value {
    let doc: Value = serde_saphyr::from_str(yaml).expect("valid YAML");
    doc["identityProviders"][0]["provider"].clone()
}

#[tokio::test]
async fn login_with_yaml_only() {
    let fake = FakeOAuth2::start(Flavor::Gitea).await;
    fake.add_user(alice(
        json!({"orgs": [{"name": "dev"}, {"name": "ops"}], "full_name": ""}),
    ));
    let yaml = format!(
        r#"
identityProviders:
  - name: corp
    type: GenericOAuth2Provider
    provider:
      clientID: {id}
      clientSecret: {secret}
      redirectURL: https://console.example/oauth/redirect/corp
      authURL: {base}/login/oauth/authorize
      tokenURL: {base}/login/oauth/access_token
      userInfoURL: {base}/api/v1/user
      scopes: "read:user read:org"
      clientAuthStyle: body
      userInfoAuthStyle: query
      pkce: false
      claims:
        userID: id
        username: [/preferred_username, /login]
        displayName: [/full_name, /login]
        groups: /orgs/*/name
"#,
        id = fake.client_id(),
        secret = fake.client_secret(),
        base = fake.base_url()
    );
    let p = support::create(
        "GenericOAuth2Provider",
        provider_options(&yaml),
        support::http(),
    )
    .unwrap();
    assert!(!p.supports_pkce());
    let cb = support::authorize(&*p, &[]).await;
    assert!(
        cb.url.as_str().contains("scope=read%3Auser+read%3Aorg"),
        "{}",
        cb.url
    );
    let id = p.exchange(&cb.request).await.unwrap();
    assert_eq!(id.user_id(), "42", "a numeric id becomes a decimal string");
    assert_eq!(id.username.as_deref(), Some("alice"));
    assert_eq!(
        id.display_name.as_deref(),
        Some("alice"),
        "empty full_name falls back to the login"
    );
    assert_eq!(id.email.as_deref(), Some("alice@example.org"));
    assert_eq!(id.groups, vec!["dev", "ops"]);
    let requests = fake.requests();
    let token = requests.iter().find(|r| r.path == "token").unwrap();
    assert_eq!(
        token.params.get("client_secret"),
        Some(&fake.client_secret()),
        "clientAuthStyle: body"
    );
    assert!(!token.headers.contains_key("authorization"));
    let user = requests.iter().find(|r| r.path == "user").unwrap();
    assert!(
        user.params.contains_key("access_token"),
        "userInfoAuthStyle: query"
    );
    assert!(!user.headers.contains_key("authorization"));
}

struct Example {
    file: &'static str,
    flavor: Flavor,
    /// The real hosts the example names, replaced by the fake's base URL.
    hosts: &'static [&'static str],
    user_id: &'static str,
    username: &'static str,
    basic_auth: bool,
}

const EXAMPLES: [Example; 3] = [
    Example {
        file: "gitlab.yaml",
        flavor: Flavor::GitLab,
        hosts: &["https://gitlab.com"],
        user_id: "42",
        username: "alice",
        basic_auth: false,
    },
    Example {
        file: "gitea.yaml",
        flavor: Flavor::Gitea,
        hosts: &["https://gitea.example.com"],
        user_id: "42",
        username: "alice",
        basic_auth: true,
    },
    Example {
        file: "google.yaml",
        flavor: Flavor::Google,
        hosts: &[
            "https://accounts.google.com",
            "https://oauth2.googleapis.com",
            "https://openidconnect.googleapis.com",
        ],
        user_id: "100000000000000000042",
        username: "alice@example.org",
        basic_auth: false,
    },
];

#[tokio::test]
async fn shipped_examples_log_in() {
    for ex in EXAMPLES {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples-config")
            .join(ex.file);
        let yaml = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(
            doc["identityProviders"][0]["type"], "OAuth2IdentityProvider",
            "{}",
            ex.file
        );
        let fake = FakeOAuth2::start(ex.flavor).await;
        fake.add_user(alice(Value::Null));
        let mut text = provider_options(&yaml).to_string();
        for host in ex.hosts {
            text = text.replace(host, &fake.base_url());
        }
        let options: Value = serde_json::from_str(&text).unwrap();
        fake.set_client(
            options["clientID"].as_str().unwrap(),
            options["clientSecret"].as_str().unwrap(),
        );
        let registry = portcullis_providers::builtin_registry(support::http());
        let opts = portcullis_idp::ProviderOptions::from_value(options).unwrap();
        let p = registry
            .create("OAuth2IdentityProvider", ex.file, &opts)
            .unwrap();
        assert!(
            opts.warnings().is_empty(),
            "{}: {:?}",
            ex.file,
            opts.warnings()
        );
        let p = p.as_oauth().unwrap();
        let id = support::login(&**p, &[])
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", ex.file));
        assert_eq!(id.user_id(), ex.user_id, "{}", ex.file);
        assert_eq!(id.username.as_deref(), Some(ex.username), "{}", ex.file);
        assert_eq!(
            id.email.as_deref(),
            Some("alice@example.org"),
            "{}",
            ex.file
        );
        assert_eq!(
            id.display_name.as_deref(),
            Some("Alice Liddell"),
            "{}",
            ex.file
        );
        if ex.flavor == Flavor::Google {
            assert_eq!(id.email_verified, Some(true));
        }
        let token = fake
            .requests()
            .into_iter()
            .find(|r| r.path == "token")
            .unwrap();
        assert_eq!(
            token.headers.contains_key("authorization"),
            ex.basic_auth,
            "{}",
            ex.file
        );
        assert!(
            token.params.contains_key("code_verifier"),
            "{}: PKCE",
            ex.file
        );
    }
}

#[test]
fn option_errors_name_the_key() {
    let base = json!({"clientID": "a", "clientSecret": "s", "redirectURL": "https://c/cb",
                      "authURL": "https://x/a", "tokenURL": "https://x/t", "userInfoURL": "https://x/u"});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"userInfoURL": null}), "`userInfoURL`"),
        (json!({"tokenURL": "not a url"}), "`tokenURL`"),
        (json!({"clientID": null}), "`clientID`"),
        (json!({"clientAuthStyle": "jwt"}), "`clientAuthStyle`"),
        (
            json!({"userInfoAuthStyle": "cookie"}),
            "`userInfoAuthStyle`",
        ),
        (json!({"claims": {"userID": 5}}), "`claims.userID`"),
        (json!({"claims": {"groups": [true]}}), "`claims.groups`"),
    ];
    for (patch, needle) in cases {
        let mut options = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                options.as_object_mut().unwrap().remove(k);
            } else {
                options[k] = v.clone();
            }
        }
        let e = support::create("OAuth2IdentityProvider", options, support::http())
            .err()
            .unwrap();
        assert!(
            e.is_misconfigured() && e.to_string().contains(needle),
            "{needle}: {e}"
        );
    }
}
