//! Reading requests: the client address (trusting forwarding headers only from configured
//! proxies), bearer tokens, Basic credentials and form bodies with duplicate detection.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use portcullis_config::IpNet;

use crate::error::ApiError;

/// The client address: the TCP peer, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (or `X-Real-IP`).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> String {
    let peer_ip = normalize(peer.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer_ip) {
        return peer_ip.to_string();
    }
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if is_trusted(normalize(ip)) => continue,
                Ok(ip) => return normalize(ip).to_string(),
                Err(_) => break,
            }
        }
    }
    if let Some(ip) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return normalize(ip).to_string();
    }
    peer_ip.to_string()
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `User-Agent`, or empty.
pub fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: both parts form-urlencoded).
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || ApiError::invalid_request("malformed Basic authorization header");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// A parsed `application/x-www-form-urlencoded` body (or query string).
#[derive(Debug, Default)]
pub struct FormParams(Vec<(String, String)>);

impl FormParams {
    /// Parses a body, refusing parameters sent twice (RFC 6749 §3.1, §3.2). Linear in the
    /// number of parameters: a 64 KiB body can hold some 17 000 of them.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            if !seen.insert(k.clone()) {
                return Err(ApiError::invalid_request(format!(
                    "parameter {k:?} is included more than once"
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(FormParams(pairs))
    }

    /// A parameter, `None` when absent or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .ok_or_else(|| ApiError::invalid_request(format!("missing required parameter {key:?}")))
    }
}

/// Checks that a POST body is form-encoded.
pub fn require_form(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str, p: u8) -> IpNet {
        IpNet {
            addr: s.parse().unwrap(),
            prefix: p,
        }
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &[]), "10.0.0.1");
        assert_eq!(client_ip(peer, &h, &[net("10.0.0.0", 8)]), "203.0.113.9");
        let v6: SocketAddr = "[::ffff:192.0.2.1]:1".parse().unwrap();
        assert_eq!(client_ip(v6, &h, &[]), "192.0.2.1");
    }

    #[test]
    fn duplicate_params_refused() {
        assert!(FormParams::parse(b"a=1&a=2").is_err());
        let f = FormParams::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get("c"), Some("x y"));
    }

    /// Regression (found by review while writing the `oauth_forms` fuzz target): duplicates
    /// were found by comparing every parameter with every earlier one, so a 64 KiB body of
    /// ~17 000 distinct names cost ~150 million string comparisons on an async worker.
    #[test]
    fn many_distinct_params_parse_and_a_late_duplicate_is_found() {
        let body: String = (0..17_000).map(|i| format!("{i:x}=&")).collect();
        let form = FormParams::parse(body.as_bytes()).unwrap();
        assert_eq!(form.0.len(), 17_000);
        assert!(FormParams::parse(format!("{body}0=again").as_bytes()).is_err());
    }

    #[test]
    fn basic_credentials_are_unescaped() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret");
        h.insert(header::AUTHORIZATION, format!("Basic {v}").parse().unwrap());
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my client".into(), "s:cret".into()))
        );
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&h).is_err());
    }
}
