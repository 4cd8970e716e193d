//! Creating providers: validation, warnings, the registry's types and aliases.

use portcullis_idp::{ProviderError, ProviderOptions};
use serde_json::{Value, json};

use crate::support;

fn create_err(provider_type: &str, options: Value) -> ProviderError {
    support::create(provider_type, options, support::http())
        .err()
        .expect("creation must fail")
}

#[test]
fn missing_client_id_is_misconfigured() {
    for t in [
        "GitHubIdentityProvider",
        "AliyunIDaaSProvider",
        "OIDCIdentityProvider",
        "OAuth2IdentityProvider",
    ] {
        let e = create_err(t, json!({"clientSecret": "s"}));
        assert!(
            e.is_misconfigured() && e.to_string().contains("`clientID`"),
            "{t}: {e}"
        );
    }
    let e = create_err("GitHubIdentityProvider", json!({"clientID": "a"}));
    assert!(e.to_string().contains("`clientSecret`"), "{e}");
}

#[test]
fn malformed_urls_are_misconfigured_naming_the_key() {
    let e = create_err(
        "GitHubIdentityProvider",
        json!({"clientID": "a", "clientSecret": "s",
                                                        "endpoint": {"tokenURL": "not a url"}}),
    );
    assert!(
        e.is_misconfigured() && e.to_string().contains("`endpoint.tokenURL`"),
        "{e}"
    );
    let e = create_err(
        "GitHubIdentityProvider",
        json!({"clientID": "a", "clientSecret": "s",
                                                        "redirectURL": "javascript:alert(1)"}),
    );
    assert!(e.to_string().contains("`redirectURL`"), "{e}");
    let e = create_err(
        "GitHubIdentityProvider",
        json!({"clientID": "a", "clientSecret": "s", "scopes": {"a": 1}}),
    );
    assert!(e.to_string().contains("`scopes`"), "{e}");
}

#[test]
fn unknown_option_keys_are_warnings() {
    let registry = portcullis_providers::builtin_registry(support::http());
    let options = ProviderOptions::from_value(json!({
        "ClientId": "a", "clientSecret": "s", "redirectUrl": "https://console/cb",
        "endpoint": {"authURL": "https://ghe.example/login/oauth/authorize", "tokenUrll": "https://x/"},
        "mappingMethod": "auto",
    }))
    .unwrap();
    // Keys match case-insensitively (ClientId, redirectUrl); unknown ones do not stop creation.
    registry
        .create("GitHubIdentityProvider", "github", &options)
        .unwrap();
    assert_eq!(
        options.unknown_keys(),
        vec!["endpoint.tokenUrll", "mappingMethod"]
    );
    let warnings = options.warnings();
    assert!(
        warnings[0].contains("did you mean `endpoint.tokenURL`"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("unknown option `mappingMethod`"),
        "{warnings:?}"
    );
}

#[test]
fn registry_types_and_alias() {
    let registry = portcullis_providers::builtin_registry(support::http());
    assert_eq!(
        registry.known_types(),
        vec![
            "AliyunIDaaSProvider",
            "CASIdentityProvider",
            "GitHubIdentityProvider",
            "LDAPIdentityProvider",
            "OAuth2IdentityProvider",
            "OIDCIdentityProvider"
        ]
    );
    assert_eq!(
        registry.resolve("GenericOAuth2Provider"),
        Some("OAuth2IdentityProvider")
    );
    assert_eq!(
        registry.resolve("AliyunIDaasProvider"),
        Some("AliyunIDaaSProvider")
    );
    let options = ProviderOptions::from_value(json!({
        "clientID": "a", "clientSecret": "s", "redirectURL": "https://console/cb",
        "endpoint": {"authURL": "https://i.example/oauth/authorize", "tokenURL": "https://i.example/oauth/token",
                     "userInfoURL": "https://i.example/api/bff/v1.2/oauth2/userinfo"},
    }))
    .unwrap();
    let p = registry
        .create("AliyunIDaasProvider", "idaas", &options)
        .unwrap();
    assert!(p.as_oauth().is_some());

    let e = registry
        .create("githubidentityprovider", "x", &options)
        .unwrap_err();
    let text = e.to_string();
    assert!(
        e.is_misconfigured()
            && text.contains(
                "known types: AliyunIDaaSProvider, CASIdentityProvider, GitHubIdentityProvider"
            ),
        "{text}"
    );
    assert!(
        text.contains("did you mean `GitHubIdentityProvider`"),
        "{text}"
    );
}
