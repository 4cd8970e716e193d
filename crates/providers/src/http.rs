//! The one HTTP client policy: building clients, sending a request with a body-size cap, and turning transport
//! failures and non-JSON answers into [`ProviderError::Upstream`] with messages an operator can act on.

use std::time::Duration;

use portcullis_idp::ProviderError;
use reqwest::{Client, ClientBuilder, RequestBuilder, StatusCode, header};
use serde_json::Value;

/// The `User-Agent` sent upstream (GitHub's API refuses requests without one).
pub const USER_AGENT: &str = concat!("Portcullis/", env!("CARGO_PKG_VERSION"));
/// Time allowed to open a connection (TCP and TLS) to an upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole upstream request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest upstream body read; a token or user answer is a few kilobytes.
const MAX_BODY: usize = 1024 * 1024;

/// A [`ClientBuilder`] with Portcullis' policy: redirects off (the OAuth 2.0 SSRF advice), connect and total
/// timeouts, `User-Agent`, rustls with the platform's root certificates. Use it to change a timeout (tests) and
/// then `build()`.
pub fn http_client_builder() -> ClientBuilder {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT)
}

/// Builds the shared client; see [`http_client`](crate::http_client).
pub fn try_http_client(insecure_skip_verify: bool) -> Result<Client, reqwest::Error> {
    let builder = http_client_builder();
    if insecure_skip_verify {
        dangerous_skip_tls_verification(builder, "all identity providers").build()
    } else {
        builder.build()
    }
}

/// Turns certificate and host-name verification off, with a warning in the log. The only place that does.
pub(crate) fn dangerous_skip_tls_verification(
    builder: ClientBuilder,
    scope: &str,
) -> ClientBuilder {
    tracing::warn!(
        scope,
        "insecureSkipVerify is set: TLS certificates of {scope} are NOT verified; \
         anyone on the network path can impersonate the identity provider"
    );
    builder
        .tls_danger_accept_invalid_certs(true)
        .tls_danger_accept_invalid_hostnames(true)
}

/// The client for one provider created with `insecureSkipVerify: true`: the default policy plus no TLS
/// verification. It does not inherit the timeouts of a shared client that was built with other values.
pub(crate) fn dangerous_insecure_client(provider: &str) -> Result<Client, ProviderError> {
    dangerous_skip_tls_verification(
        http_client_builder(),
        &format!("identity provider `{provider}`"),
    )
    .build()
    .map_err(|e| {
        ProviderError::misconfigured(format!(
            "cannot build the insecureSkipVerify HTTP client: {e}"
        ))
    })
}

/// An upstream answer, body read in full (up to 1 MiB).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The response headers (GitHub's pagination travels in `Link`).
    pub headers: header::HeaderMap,
}

impl Answer {
    /// Whether the body is an HTML page (by content type, or by its first character).
    pub fn is_html(&self) -> bool {
        self.content_type.contains("html") || self.trimmed().starts_with(b"<")
    }

    fn trimmed(&self) -> &[u8] {
        self.body.trim_ascii()
    }

    /// A short, printable excerpt of the body for error messages.
    pub fn excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(self.trimmed()), 160)
    }

    /// Parses the body as JSON, with clear errors for HTML pages and malformed JSON. `what` names the endpoint.
    pub fn json(&self, what: &str) -> Result<Value, ProviderError> {
        if self.is_html() {
            return Err(ProviderError::upstream(format!(
                "{what} answered an HTML page (HTTP {}) instead of JSON: {}",
                self.status.as_u16(),
                self.excerpt()
            )));
        }
        if self.trimmed().is_empty() {
            return Err(ProviderError::upstream(format!(
                "{what} answered an empty body (HTTP {})",
                self.status.as_u16()
            )));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::upstream_with(
                format!(
                    "{what} answered malformed JSON (HTTP {}): {}",
                    self.status.as_u16(),
                    self.excerpt()
                ),
                e,
            )
        })
    }
}

/// Sends `request` and reads the answer; transport failures become [`ProviderError::Upstream`] saying whether it
/// was a timeout or a connection failure. Non-2xx statuses are returned, not errors: callers read error bodies.
pub(crate) async fn send(request: RequestBuilder, what: &str) -> Result<Answer, ProviderError> {
    let mut response = request.send().await.map_err(|e| transport_error(what, e))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(what, e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ProviderError::upstream(format!(
                "{what} answered a body larger than {MAX_BODY} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        content_type,
        body,
        headers,
    })
}

fn transport_error(what: &str, e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not be reached"
    } else if e.is_body() || e.is_decode() {
        "failed while sending its answer"
    } else {
        "request failed"
    };
    let url = e
        .url()
        .map(|u| format!(" ({})", without_query(u)))
        .unwrap_or_default();
    ProviderError::upstream_with(format!("{what}{url} {kind}"), e)
}

/// A URL for messages: no query string or credentials (codes and tokens travel in queries).
pub(crate) fn without_query(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Shortens upstream-controlled text for messages: control characters become spaces, at most `max` characters.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.chars().count() <= max {
        cleaned
    } else {
        let mut cut: String = cleaned.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// A string or number field as a string (ids arrive as either).
#[cfg_attr(
    not(any(feature = "github", feature = "aliyun-idaas")),
    allow(dead_code)
)] // their helper only
pub(crate) fn string_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
