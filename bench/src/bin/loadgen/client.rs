//! One keep-alive HTTP/1.1 connection with a cookie jar: what one worker (one "browser" or one
//! API client) of the load generator uses. No pool, no redirects followed, no TLS: loopback only.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response with its body read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The `Location` header, or an error naming the status.
    pub fn location(&self) -> Result<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("{} without a Location header", self.status))
    }

    /// Fails unless the status is `want`, with the start of the body in the message.
    pub fn expect(self, want: u16) -> Result<Reply> {
        if self.status.as_u16() != want {
            let body = String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned();
            bail!("status {} (expected {want}): {body}", self.status);
        }
        Ok(self)
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).context("response body is not the expected JSON")
    }
}

/// The origin every request of a run goes to.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port`, the `Host` header.
    pub authority: String,
    /// Path prefix of the server (without a trailing slash), prepended to every path.
    pub base_path: String,
}

impl Target {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(url: &str) -> Result<Target> {
        let u = url::Url::parse(url).with_context(|| format!("bad URL {url:?}"))?;
        if u.scheme() != "http" {
            bail!("only http:// URLs are supported (loopback benchmarks): {url}");
        }
        let addr = u
            .socket_addrs(|| Some(80))?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("{url}: no address"))?;
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        };
        Ok(Target {
            addr,
            authority,
            base_path: u.path().trim_end_matches('/').to_string(),
        })
    }
}

/// One connection, reopened after the server closes it, with the cookies it was sent.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookies: Vec<(String, String)>,
    /// HTTP requests sent (for requests per operation).
    pub requests: u64,
}

impl Conn {
    pub fn new(target: Target) -> Conn {
        Conn {
            target,
            sender: None,
            cookies: Vec::new(),
            requests: 0,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let usable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .with_context(|| format!("connect {}", self.target.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    /// Forgets every cookie (a new browser).
    pub fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// Sets a cookie as if the server had.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_string(), value.to_string()));
    }

    /// The value of a cookie the server set.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sends a request to `path` (relative to the target's base path) and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Reply> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.base_path))
            .header(header::HOST, self.target.authority.as_str());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let req = req.body(Full::new(body))?;
        self.requests += 1;
        let sender = self.sender().await?;
        let res = match sender.send_request(req).await {
            Ok(res) => res,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        if parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
        {
            self.sender = None;
        }
        for v in parts.headers.get_all(header::SET_COOKIE) {
            self.store_cookie(v.to_str().unwrap_or_default());
        }
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn store_cookie(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        let expired = set_cookie.to_ascii_lowercase().contains("max-age=0");
        self.cookies.retain(|(n, _)| n != name);
        if !value.is_empty() && !expired {
            self.cookies.push((name.to_string(), value.to_string()));
        }
    }

    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Reply> {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    /// POSTs an `application/x-www-form-urlencoded` body built from `fields`.
    pub async fn post_form(
        &mut self,
        path: &str,
        headers: &[(HeaderName, HeaderValue)],
        fields: &[(&str, &str)],
    ) -> Result<Reply> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut all = headers.to_vec();
        all.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        ));
        self.send(Method::POST, path, &all, Bytes::from(body)).await
    }
}

/// The query parameter `name` of a URL (absolute or a path with a query).
pub fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::new(Target::parse("http://127.0.0.1:9/base/").expect("target"))
    }

    #[test]
    fn target_keeps_the_authority_and_the_base_path() {
        let t = Target::parse("http://127.0.0.1:8080/oauth/").expect("target");
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.base_path, "/oauth");
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }

    #[test]
    fn cookies_are_stored_replaced_and_expired() {
        let mut c = conn();
        c.store_cookie("portcullis_session=abc; Path=/; HttpOnly");
        c.store_cookie("portcullis_login_state=s1; Path=/oauth/callback");
        c.store_cookie("portcullis_session=def; Path=/");
        assert_eq!(c.cookie("portcullis_session"), Some("def"));
        c.store_cookie("portcullis_login_state=; Path=/oauth/callback; Max-Age=0");
        assert_eq!(c.cookie("portcullis_login_state"), None);
        c.clear_cookies();
        assert_eq!(c.cookie("portcullis_session"), None);
    }

    #[test]
    fn query_params_are_decoded() {
        let loc = "http://127.0.0.1:9/cb?code=a%2Bb&state=s1&iss=http%3A%2F%2Fx";
        assert_eq!(query_param(loc, "code").as_deref(), Some("a+b"));
        assert_eq!(query_param(loc, "iss").as_deref(), Some("http://x"));
        assert_eq!(query_param(loc, "missing"), None);
        assert_eq!(query_param("/no-query", "code"), None);
    }
}
