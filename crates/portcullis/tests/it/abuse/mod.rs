//! Abuse resistance (issue 9, item 3) and secrets (item 6), black-box over HTTP against the real
//! binary: credential stuffing and the bounded lockout ([`stuffing`]), slow and oversized
//! requests ([`slow`]), forged cookies and headers ([`tampering`]), open-redirect attempts on
//! every redirect parameter ([`redirects`]), SQL and LDAP injection strings ([`injection`]),
//! the timing of unknown-user and wrong-password answers ([`timing`]), and secrets that must
//! never leak, or that come from files and the environment ([`secrets`]).
//! docs/security.md lists each test under "Abuse resistance" and "Secrets".

mod injection;
mod redirects;
mod secrets;
mod slow;
mod stuffing;
mod tampering;
mod timing;

use std::net::IpAddr;
use std::time::Duration;

use portcullis_test_support::Server;
use serde_json::Value;

/// A client whose connections come from `ip` (any 127.0.0.0/8 address works on loopback).
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A password grant sent by `client`; status, `Retry-After` (when present) and body.
pub async fn login_with(
    client: &reqwest::Client,
    server: &Server,
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<u64>, Value) {
    let mut req = client.post(server.url("/oauth/token")).form(&[
        ("grant_type", "password"),
        ("username", user),
        ("password", password),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}
