//! What both fakes share: failure modes, the code store, PKCE, client authentication, the server task.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// How a fake answers its server-to-server endpoints (token and user info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Behave as documented.
    #[default]
    Normal,
    /// HTTP 500 with an HTML error page.
    Error500,
    /// HTTP 200 with an HTML page (a captive portal or login page where JSON was expected).
    Html,
    /// HTTP 200, `Content-Type: application/json`, with a truncated JSON body.
    Garbage,
    /// Sleep this long before answering normally (for client timeout tests; the test sets a shorter timeout).
    Slow(Duration),
    /// The user endpoint answers a well-formed user record without its identifier (`id` / `data.sub`).
    /// Token endpoints ignore this mode.
    NoUserId,
}

/// One request a fake received, for assertions.
#[derive(Debug, Clone, Default)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Header values by lower-case name (the last one of repeated headers).
    pub headers: BTreeMap<String, String>,
    /// Query and form-body parameters, merged (body wins).
    pub params: BTreeMap<String, String>,
}

/// The PKCE `S256` challenge of a verifier (RFC 7636 §4.2): base64url(SHA-256(verifier)) without padding.
pub fn pkce_challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh, unguessable-enough token with a prefix (`gho_`, codes, ...).
pub(crate) fn random_token(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{n}:{nanos}:{:p}", &COUNTER).as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub user: String,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub scope: String,
    pub challenge: Option<String>,
}

/// Single-use authorization codes.
#[derive(Debug, Default)]
pub(crate) struct Codes(HashMap<String, Grant>);

impl Codes {
    pub fn issue(&mut self, grant: Grant) -> String {
        let code = random_token("");
        self.0.insert(code[..20].to_owned(), grant);
        code[..20].to_owned()
    }
    /// Removes and returns the grant: a code works once, even when the exchange then fails.
    pub fn take(&mut self, code: &str) -> Option<Grant> {
        self.0.remove(code)
    }
}

/// Checks a PKCE verifier against the stored `S256` challenge.
pub(crate) fn pkce_ok(challenge: &str, verifier: Option<&str>) -> bool {
    verifier.is_some_and(|v| pkce_challenge_s256(v) == challenge)
}

/// Query and `application/x-www-form-urlencoded` body parameters merged; the body wins.
pub(crate) fn params(query: Option<&str>, body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .chain(url::form_urlencoded::parse(body));
    for (k, v) in pairs {
        out.insert(k.into_owned(), v.into_owned());
    }
    out
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64) or else from the body.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> (String, String) {
    if let Some(basic) = header_str(headers, header::AUTHORIZATION.as_str()).and_then(|h| {
        h.strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
    }) && let Some(decoded) = STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        && let Some((id, secret)) = decoded.split_once(':')
    {
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return (dec(id), dec(secret));
    }
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    (get("client_id"), get("client_secret"))
}

/// The token of an `Authorization: Bearer X` or `Authorization: token X` header (scheme case-insensitive).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim().to_owned())
}

pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn record(
    method: &str,
    path: &str,
    headers: &HeaderMap,
    params: BTreeMap<String, String>,
) -> RecordedRequest {
    RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        params,
    }
}

/// Applies a failure mode; `None` means "answer normally" (after sleeping, for [`Mode::Slow`]).
pub(crate) async fn failure(mode: Mode) -> Option<Response> {
    match mode {
        Mode::Normal | Mode::NoUserId => None,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Mode::Error500 => Some(html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "<h1>500 Internal Server Error</h1>",
        )),
        Mode::Html => Some(html(
            StatusCode::OK,
            "<!DOCTYPE html><html><body><form>Sign in</form></body></html>",
        )),
        Mode::Garbage => Some(
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                r#"{"access_token": "x", "id": 4"#,
            )
                .into_response(),
        ),
    }
}

pub(crate) fn html(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// A 302 to `target` with `extra` appended to its query.
pub(crate) fn redirect_with(target: &str, extra: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(target) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a valid URL").into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, url.as_str())
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A running server on `127.0.0.1:0`; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds and spawns; panics only if the loopback interface cannot be bound (a broken test machine).
    pub async fn start(router: Router) -> Server {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), router).await
    }

    /// Binds `addr` and spawns; panics if it cannot be bound.
    pub async fn start_on(addr: SocketAddr, router: Router) -> Server {
        Self::try_start_on(addr, router)
            .await
            .expect("bind a loopback port for a fake upstream")
    }

    /// Binds `addr` (a port given back by an earlier server, to listen again) and spawns.
    pub async fn try_start_on(addr: SocketAddr, router: Router) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Server { addr, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            pkce_challenge_s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            Some(verifier)
        ));
        assert!(!pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            None
        ));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        // "a%3Ab:s%2Bc" -> id "a:b", secret "s+c" (RFC 6749 §2.3.1 encodes before base64).
        let value = format!("Basic {}", STANDARD.encode("a%3Ab:s%2Bc"));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            client_credentials(&headers, &BTreeMap::new()),
            ("a:b".to_owned(), "s+c".to_owned())
        );
    }
}
