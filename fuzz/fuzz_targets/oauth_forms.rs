//! Form bodies and query strings of the OAuth endpoints (`/oauth/token`, `/oauth/authorize`, introspection,
//! revocation, the login pages) and the request headers read with them.
//!
//! Input: `BODY` or `BODY \0 AUTHORIZATION \0 CONTENT-TYPE \0 X-FORWARDED-FOR`. Checks: the two form parsers
//! (`request::FormParams::parse` for token/introspect/revoke/pages and `oidc::parse_params` for authorize) agree
//! on what a duplicated parameter is and on every value; a parsed form never yields an empty value; Basic
//! credentials, client authentication, bearer tokens, the content-type check and the client address never panic.
#![no_main]

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use portcullis_config::IpNet;
use portcullis_http::oidc::{client_credentials, parse_params};
use portcullis_http::request::{
    FormParams, basic_credentials, bearer_token, client_ip, require_form,
};

/// Parameters the endpoints read.
const KEYS: &[&str] = &[
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "scope",
    "state",
    "nonce",
    "response_type",
    "token",
    "token_type_hint",
    "csrf",
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, v);
        }
    }
    if let Some(v) = parts.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert("x-forwarded-for", v.clone());
        headers.insert("x-real-ip", v);
    }

    let form = FormParams::parse(body);
    let map = parse_params(body);
    assert_eq!(
        form.is_ok(),
        map.is_ok(),
        "the form parsers disagree on duplicates: {body:?}"
    );
    if let (Ok(form), Ok(map)) = (&form, &map) {
        for (k, v) in map {
            let want = (!v.is_empty()).then_some(v.as_str());
            assert_eq!(form.get(k), want, "value of {k:?}");
        }
        for k in KEYS {
            if let Some(v) = form.get(k) {
                assert!(!v.is_empty());
                assert_eq!(form.require(k).ok(), Some(v));
            } else {
                assert!(form.require(k).is_err());
            }
        }
        let _ = client_credentials(&headers, form);
    }
    let _ = basic_credentials(&headers);
    if let Some(t) = bearer_token(&headers) {
        assert!(!t.is_empty() && t == t.trim());
    }
    let _ = require_form(&headers);
    let peer: SocketAddr = "10.0.0.1:40000".parse().expect("a socket address");
    let trusted = [IpNet {
        addr: [10, 0, 0, 0].into(),
        prefix: 8,
    }];
    let ip = client_ip(peer, &headers, &trusted);
    assert!(
        ip.parse::<std::net::IpAddr>().is_ok(),
        "client_ip gave {ip:?}"
    );
});
