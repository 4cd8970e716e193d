//! The OpenID Connect provider (issue 4), black-box over HTTP: the flows with Portcullis' own
//! pages ([`flow`], [`consent`]), negative cases modelled on the OpenID conformance plans
//! ([`negative`], [`confusion`]), signing keys across replicas and rotation ([`keys`]), and two
//! independent relying-party libraries driving the whole protocol ([`interop`]).
//!
//! The browser is played by [`Browser`] ([`browser`]): manual redirects and a cookie jar.

mod browser;
mod confusion;
mod consent;
mod federated;
mod flow;
mod interop;
mod keys;
mod negative;
mod userinfo_scope;

use std::collections::HashMap;

use base64::Engine as _;
use portcullis_test_support::Server;
use serde_json::Value;

pub use browser::{Browser, Outcome, field};

use crate::common::*;

pub const REDIRECT: &str = "http://127.0.0.1:5555/cb";
pub const BYE: &str = "http://127.0.0.1:5555/bye";
pub const ALICE_PASSWORD: &str = "alice-Passw0rd";

/// The clients every OIDC test uses.
pub const CLIENTS: &str = r#"
    clients:
    - name: app
      secret: app-secret
      redirectURIs: ["http://127.0.0.1:5555/cb"]
      postLogoutRedirectURIs: ["http://127.0.0.1:5555/bye"]
      trusted: false
    - name: other
      secret: other-secret
      redirectURIs: ["http://127.0.0.1:5556/cb"]
      trusted: false
    - name: spa
      redirectURIs: ["http://127.0.0.1:5555/cb"]
      postLogoutRedirectURIs: ["http://127.0.0.1:5555/bye"]
      trusted: false
      idTokenSigningAlg: ES256
    - name: consent
      secret: consent-secret
      redirectURIs: ["http://127.0.0.1:5555/cb"]
      grantMethod: prompt
      trusted: false
    - name: denied
      secret: denied-secret
      redirectURIs: ["http://127.0.0.1:5555/cb"]
      grantMethod: deny
    - name: narrow
      secret: narrow-secret
      redirectURIs: ["http://127.0.0.1:5555/cb"]
      scopeRestrictions: [openid, profile]
    - name: kubesphere
      secret: kubesphere
      redirectURIs: ["*"]
"#;

/// The configuration: the core tests' settings plus the clients, and `extra` appended to
/// `oauthOptions` (already indented by four spaces).
pub fn oidc_config(extra: &str) -> String {
    format!("{}{CLIENTS}{extra}", config(true))
}

/// Starts a server with alice (email, groups) added.
pub async fn oidc_server(pg: bool, extra: &str) -> (Server, TestBackend) {
    let b = backend(pg).await;
    let server = start(Some(oidc_config(extra)), &b);
    add_user(
        &server,
        &[
            "alice",
            "--password",
            ALICE_PASSWORD,
            "--email",
            "alice@example.com",
            "--groups",
            "devs,ops",
        ],
    );
    (server, b)
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = portcullis_core::random_id() + &portcullis_core::random_id();
    let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The header and claims of a JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&raw).unwrap()
    };
    let header = next();
    (header, next())
}

/// A standard code request for `client` with PKCE, state and nonce.
pub fn code_request<'a>(
    client: &'a str,
    challenge: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// `POST /oauth/token` authenticated with Basic `id:secret` (no auth when `secret` is empty,
/// then `client_id` goes in the form).
pub async fn token_as(
    server: &Server,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = http().post(server.url("/oauth/token"));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    if secret.is_empty() {
        form.push(("client_id", id));
    } else {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.form(&form).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Logs alice in for `client` and exchanges the code: the token JSON.
pub async fn code_flow(
    server: &Server,
    browser: &mut Browser,
    client: &str,
    secret: &str,
    scope: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let out = browser
        .authorize(
            &code_request(client, &challenge, scope),
            Some(("alice", ALICE_PASSWORD)),
        )
        .await;
    let code = out.params()["code"].clone();
    let (status, body) = token_as(
        server,
        client,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A form POST authenticated as a client; status and JSON body.
pub async fn client_post(
    server: &Server,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let resp = http()
        .post(server.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /oauth/userinfo` with a Bearer token: status and body.
pub async fn userinfo(server: &Server, token: &str) -> (u16, Value) {
    let resp = http()
        .get(server.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits until the server's (shifted) clock reads at least `at_least_s` (Unix seconds), using
/// the `iat` of client-credentials tokens as a probe.
pub async fn wait_for_clock(server: &Server, at_least_s: i64) {
    portcullis_test_support::eventually(
        std::time::Duration::from_secs(10),
        "the server clock to move",
        || async {
            let (status, body) = client_post(
                server,
                "/oauth/token",
                "app",
                "app-secret",
                &[("grant_type", "client_credentials")],
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let (_, claims) = jwt_parts(body["access_token"].as_str().unwrap());
            (claims["iat"].as_i64().unwrap() >= at_least_s).then_some(())
        },
    )
    .await
    .unwrap();
}

/// Now in Unix seconds (the test's clock, not the server's).
pub fn now_s() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
