//! HTTP methods (ASVS 4.0.3 13.2.1): every route answers only the methods it is routed for.
//! Any other method is `405 Method Not Allowed` with an `Allow` header naming exactly the routed
//! methods (`HEAD` with `GET`), never a 2xx or a 5xx; the routed methods are never 405.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::common::*;

/// Every route of `crates/http/src/lib.rs` and `crates/http/src/oidc/mod.rs`, with a concrete
/// path, and the methods it is routed for.
const ROUTES: &[(&str, &[&str])] = &[
    ("/oauth/token", &["POST"]),
    ("/oauth/logout", &["GET", "POST"]),
    ("/oauth/authenticate", &["POST"]),
    (
        "/kapis/config.kubesphere.io/v1alpha2/configs/oauth",
        &["GET"],
    ),
    ("/kapis/iam.kubesphere.io/v1alpha2/login", &["POST"]),
    (
        "/kapis/iam.kubesphere.io/v1alpha2/users/admin/loginrecords",
        &["GET"],
    ),
    // Only user creation: there is no route that lists users (spec §10 item 21).
    ("/kapis/iam.kubesphere.io/v1alpha2/users", &["POST"]),
    ("/login", &["GET", "POST"]),
    ("/login/confirm", &["GET", "POST"]),
    ("/login/github", &["GET"]),
    ("/oauth/callback/github", &["GET"]),
    ("/account", &["GET"]),
    ("/account/sessions/revoke", &["POST"]),
    ("/account/sessions/revoke-all", &["POST"]),
    ("/account/identities/unlink", &["POST"]),
    ("/account/identities/link", &["GET"]),
    ("/account/password", &["POST"]),
    ("/account/sign-out", &["POST"]),
    ("/assets/portcullis.css", &["GET"]),
    ("/assets/theme.css", &["GET"]),
    ("/.well-known/openid-configuration", &["GET"]),
    ("/oauth/.well-known/openid-configuration", &["GET"]),
    ("/oauth/keys", &["GET"]),
    ("/oauth/authorize", &["GET", "POST"]),
    ("/oauth/authorize/consent", &["POST"]),
    ("/oauth/login", &["GET", "POST"]),
    ("/oauth/userinfo", &["GET", "POST"]),
    ("/oauth/introspect", &["POST"]),
    ("/oauth/revoke", &["POST"]),
    ("/healthz", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
];

/// Methods no route is routed for, tried everywhere.
const NEVER: &[&str] = &["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"];

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_methods_are_405_with_allow() {
    let b = backend(false).await;
    let server = start(Some(config(true)), &b);
    let client = http();
    let mut checked = 0;
    for (path, allowed) in ROUTES {
        let mut expected: BTreeSet<&str> = allowed.iter().copied().collect();
        if expected.contains("GET") {
            expected.insert("HEAD");
        }
        let refused = NEVER
            .iter()
            .chain(["GET", "POST", "HEAD"].iter())
            .filter(|m| !expected.contains(*m));
        for method in refused {
            let resp = client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    server.url(path),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            let allow = resp
                .headers()
                .get("allow")
                .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
                .to_str()
                .unwrap();
            let named: BTreeSet<&str> = allow.split(',').map(str::trim).collect();
            assert_eq!(named, expected, "{method} {path}: Allow: {allow}");
            checked += 1;
        }
        // The routed methods are routed: an empty request is answered, not refused as 405.
        for method in *allowed {
            let resp = client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    server.url(path),
                )
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            assert!(
                status != 405 && status < 500,
                "{method} {path} is routed: {status}"
            );
        }
    }
    assert!(checked > ROUTES.len() * NEVER.len(), "{checked}");

    // An unknown path is 404 whatever the method.
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let resp = client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                server.url("/oauth/nope"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} /oauth/nope");
    }
}
