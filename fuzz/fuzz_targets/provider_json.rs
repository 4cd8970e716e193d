//! Identity providers' JSON answers → identities, through the real mapping code: GitHub's `/user`
//! (`github::user_identity`), Aliyun IDaaS' userinfo envelope (`aliyun_idaas::userinfo_identity`), OpenID Connect ID
//! token / userinfo claims (`oidc::IdTokenCheck::check` and `oidc::Mapping::identity`, with top-level and JSON-pointer
//! claim names) and the generic OAuth 2.0 provider's claim expressions (`GenericOAuth2Provider::identity`).
//!
//! Input: any JSON document. When it is an object with `claims` and `userinfo`, a generic provider is also built
//! with `claims` as its `claims:` options (so the expression parser is fuzzed too) and maps `userinfo`.
//! Invariants: no panic; every identity has a non-blank user id; an accepted ID token has the expected audience.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_idp::{Identity, ProviderOptions};
use portcullis_providers::GenericOAuth2Provider;
use portcullis_providers::oidc::{IdTokenCheck, Mapping};
use portcullis_providers::{aliyun_idaas, github};
use serde_json::{Value, json};

static HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| portcullis_providers::http_client(false));

fn options(claims: Value) -> ProviderOptions {
    ProviderOptions::new(
        json!({
            "clientID": "client",
            "redirectURL": "https://portcullis.example/oauth/callback/generic",
            "authURL": "https://idp.example/authorize",
            "tokenURL": "https://idp.example/token",
            "userInfoURL": "https://idp.example/userinfo",
            "claims": claims,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
    )
}

/// Generic providers with fixed claim settings: the defaults, and pointers with `*` and lists.
static GENERIC: LazyLock<Vec<GenericOAuth2Provider>> = LazyLock::new(|| {
    [
        json!({}),
        json!({
            "userID": ["/data/user/id", "/id"],
            "username": "login",
            "email": "/emails/0/address",
            "emailVerified": "/emails/0/verified",
            "groups": "/organizations/*/name",
        }),
        json!({"userID": "/sub", "groups": ["/groups", "/roles/*"]}),
    ]
    .into_iter()
    .map(|c| {
        GenericOAuth2Provider::new("generic", &options(c), &HTTP).expect("a valid generic provider")
    })
    .collect()
});

const MAPPINGS: [(&str, &str, &str, bool); 3] = [
    ("email", "preferred_username", "groups", false),
    ("email", "preferred_username", "groups", true),
    (
        "/profile/mail",
        "/profile/names/0",
        "/realm_access/roles",
        false,
    ),
];

fn check(identity: &Identity) {
    assert!(!identity.user_id().trim().is_empty(), "blank user id");
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(id) = github::user_identity(&doc) {
        check(&id);
        assert!(
            id.user_id().bytes().all(|b| b.is_ascii_digit()),
            "GitHub id {:?}",
            id.user_id()
        );
    }
    if let Ok(id) = aliyun_idaas::userinfo_identity(&doc) {
        check(&id);
    }
    if let Some(claims) = doc.as_object() {
        for (email_key, preferred_username_key, groups_claim, require_email_verified) in MAPPINGS {
            let mapping = Mapping {
                email_key: email_key.into(),
                preferred_username_key: preferred_username_key.into(),
                groups_claim: groups_claim.into(),
                require_email_verified,
            };
            if let Ok(id) = mapping.identity(claims) {
                check(&id);
            }
        }
        for issuer in [None, Some("https://idp.example")] {
            let check_token = IdTokenCheck {
                issuer,
                client_id: "client",
                leeway: 10,
            };
            if check_token
                .check(claims, Some("n-0S6_WzA2Mj"), 1_700_000_000)
                .is_ok()
            {
                let aud = &claims["aud"];
                assert!(
                    aud == "client" || aud.as_array().is_some_and(|a| a.contains(&json!("client")))
                );
            }
            let _ = check_token.check(claims, None, u64::MAX);
            let _ = check_token.check(claims, None, 0);
        }
    }
    for provider in GENERIC.iter() {
        if let Ok(id) = provider.identity(&doc) {
            check(&id);
        }
    }
    if let (Some(claims), Some(userinfo)) = (doc.get("claims"), doc.get("userinfo"))
        && let Ok(provider) = GenericOAuth2Provider::new("generic", &options(claims.clone()), &HTTP)
        && let Ok(id) = provider.identity(userinfo)
    {
        check(&id);
    }
});
