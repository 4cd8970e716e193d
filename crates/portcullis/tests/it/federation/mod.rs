//! Federated login through the real binary over HTTP, against the fake GitHub and Aliyun IDaaS
//! of `portcullis-test-upstreams`.
//!
//! The server runs with `publicURL: http://portcullis.test` (as behind a proxy), so provider
//! `redirectURL`s can be written before the server has a port; the test's [`Browser`] follows
//! redirects by hand (reqwest's own redirects are off), maps that public URL to the server, and
//! keeps Portcullis' cookies itself, path by path. ks-console is played by plain requests.

mod browser;
mod console;
mod failures;
mod groups;
mod harness;
mod links;
mod mixup;
mod multiple_login;
mod pages;
mod startup;

pub use harness::{Browser, Hop};

use portcullis_test_support::Server;
use portcullis_test_upstreams::{FakeGitHub, FakeIdaas};
use serde_json::Value;

use crate::common::*;

/// The public URL the server is configured with.
pub const PUBLIC: &str = "http://portcullis.test";
/// Where ks-console would receive the provider's redirect.
pub const CONSOLE: &str = "http://console.test";

/// The kubesphere.yaml of these tests, with the given `identityProviders` entries (YAML list
/// items, indented for `identityProviders:`).
pub fn yaml(providers: &[String]) -> String {
    format!(
        r#"
authentication:
  jwtSecret: "{SECRET}"
  multipleLogin: true
  authenticateRateLimiterMaxTries: 5
  oauthOptions:
    accessTokenMaxAge: 1h
    accessTokenInactivityTimeout: 30m
    identityProviders:
{}
portcullis:
  publicURL: {PUBLIC}
"#,
        providers.concat()
    )
}

/// A `GitHubIdentityProvider` entry against `gh`. `redirect` is the redirectURL (`None`: unset);
/// `extra` are more entry lines (`hidden: true`), indented by six spaces.
pub fn github(
    gh: &FakeGitHub,
    name: &str,
    mapping: &str,
    redirect: Option<&str>,
    extra: &str,
) -> String {
    let redirect = redirect
        .map(|r| format!("        redirectURL: \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"    - name: {name}
      type: GitHubIdentityProvider
      mappingMethod: {mapping}
{extra}      provider:
        clientID: "{}"
        clientSecret: "{}"
{redirect}        scopes: [user:email]
        endpoint:
          authURL: "{}"
          tokenURL: "{}"
          userInfoURL: "{}"
"#,
        gh.client_id(),
        gh.client_secret(),
        gh.auth_url(),
        gh.token_url(),
        gh.user_info_url()
    )
}

/// An `AliyunIDaaSProvider` entry against `idaas`.
pub fn idaas(fake: &FakeIdaas, name: &str, mapping: &str, redirect: &str, extra: &str) -> String {
    format!(
        r#"    - name: {name}
      type: AliyunIDaaSProvider
      mappingMethod: {mapping}
{extra}      provider:
        clientID: "{}"
        clientSecret: "{}"
        redirectURL: "{redirect}"
        endpoint:
          authURL: "{}"
          tokenURL: "{}"
          userInfoURL: "{}"
"#,
        fake.client_id(),
        fake.client_secret(),
        fake.auth_url(),
        fake.token_url(),
        fake.user_info_url()
    )
}

/// Portcullis' own callback for `name`, under the public URL.
pub fn callback_url(name: &str) -> String {
    format!("{PUBLIC}/oauth/callback/{name}")
}

/// The last hop of a login that must have succeeded: the account page.
pub fn signed_in_as(hops: &[Hop], user: &str) {
    let last = hops.last().unwrap();
    assert_eq!(last.status, 200, "{:#?}", hops);
    assert!(
        last.body.contains(&format!("Signed in as {user}</h2>")),
        "{}",
        last.body
    );
}

/// An admin access token (the bootstrap admin is in `platform-admins`).
pub async fn admin_token(server: &Server) -> String {
    let (status, _, body) = password_login(server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Login records of `user`, newest first, read as admin.
pub async fn records(server: &Server, user: &str) -> Vec<Value> {
    let token = admin_token(server).await;
    let resp = http()
        .get(server.url(&format!(
            "/kapis/iam.kubesphere.io/v1alpha2/users/{user}/loginrecords?limit=100"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `portcullis user show NAME -o json`.
pub fn show_user(server: &Server, name: &str) -> Option<Value> {
    let out = server.cli(&["user", "show", name, "-o", "json"]).unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// Names of all users.
pub fn user_names(server: &Server) -> Vec<String> {
    let out = server.cli(&["user", "list", "-o", "json"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs the CLI and returns (success, stdout, stderr).
pub fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = server.cli(args).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The claims of a JWT, decoded without checking it (the test reads what the console reads).
pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
