//! [`FaultProxy`]: a reverse proxy in front of any upstream (a fake, or a real peer such as node
//! `oidc-provider` whose issuer is the proxy's address) that makes chosen paths fail the ways real
//! upstreams fail: refused connections, answers held back past the client's timeout, HTML where
//! JSON was expected, garbage, truncated JSON, a wrong content type, a huge body.
//!
//! Every answer carries `Connection: close`, so no pooled connection outlives [`FaultProxy::refuse`]:
//! after it, connecting to the proxy's port is refused until [`FaultProxy::accept`] listens again on
//! the same port. [`Fault::Hold`] keeps requests waiting on the proxy (no sleep anywhere) until
//! [`FaultProxy::release`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use crate::common;

/// What the proxy does to a request whose path starts with a chosen prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait until [`FaultProxy::release`], then forward (a client with a shorter timeout gives up).
    Hold,
    /// HTTP 200 with an HTML sign-in page (a captive portal, an expired SSO session).
    Html,
    /// HTTP 200, `Content-Type: application/json`, bytes that are not JSON at all.
    Garbage,
    /// Forward, then cut the upstream's body in the middle (a dropped connection behind a proxy).
    Truncated,
    /// Forward the upstream's body unchanged but labelled `text/html` (a misconfigured front end).
    WrongContentType,
    /// HTTP 200, `Content-Type: application/json`, a well-formed JSON object of 4 MiB.
    Huge,
}

impl Fault {
    /// Every fault, for tests that try them all.
    pub const ALL: [Fault; 6] = [
        Fault::Hold,
        Fault::Html,
        Fault::Garbage,
        Fault::Truncated,
        Fault::WrongContentType,
        Fault::Huge,
    ];
}

#[derive(Debug)]
struct Rules {
    target: String,
    faults: Vec<(String, Fault)>,
}

#[derive(Clone)]
struct Shared {
    rules: Arc<Mutex<Rules>>,
    release: Arc<watch::Sender<u64>>,
    http: reqwest::Client,
}

impl Shared {
    fn rules(&self) -> MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running proxy; dropping it stops it (held requests are then dropped too).
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Shared,
    server: Mutex<Option<common::Server>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target` (`http://host:port`, no path).
    ///
    /// # Panics
    ///
    /// If the HTTP client cannot be built or the loopback interface cannot be bound.
    pub async fn start(target: &str) -> FaultProxy {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client for the fault proxy");
        let shared = Shared {
            rules: Arc::new(Mutex::new(Rules {
                target: target.trim_end_matches('/').to_owned(),
                faults: Vec::new(),
            })),
            release: Arc::new(watch::channel(0).0),
            http,
        };
        let server = common::Server::start(router(shared.clone())).await;
        FaultProxy {
            addr: server.addr,
            shared,
            server: Mutex::new(Some(server)),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Forwards to `target` from now on.
    pub fn set_target(&self, target: &str) {
        self.shared.rules().target = target.trim_end_matches('/').to_owned();
    }

    /// Applies `fault` to requests whose path starts with `path_prefix` (replacing any fault
    /// already set for that prefix).
    pub fn set(&self, path_prefix: &str, fault: Fault) {
        let mut rules = self.shared.rules();
        rules.faults.retain(|(p, _)| p != path_prefix);
        rules.faults.push((path_prefix.to_owned(), fault));
    }

    /// Removes every fault (held requests stay held until [`FaultProxy::release`]).
    pub fn clear(&self) {
        self.shared.rules().faults.clear();
    }

    /// Lets every held request go on.
    pub fn release(&self) {
        self.shared.release.send_modify(|n| *n += 1);
    }

    /// Stops listening, and returns once connecting to the port is refused.
    ///
    /// # Panics
    ///
    /// If the port still accepts connections after 10 s.
    pub async fn refuse(&self) {
        drop(self.lock_server().take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
            assert!(Instant::now() < deadline, "the fault proxy still listens");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Listens again on the same port (retrying while the old listener is being torn down).
    ///
    /// # Panics
    ///
    /// If the port cannot be bound again within 10 s.
    pub async fn accept(&self) {
        if self.lock_server().is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match common::Server::try_start_on(self.addr, router(self.shared.clone())).await {
                Ok(server) => break server,
                Err(e) => assert!(Instant::now() < deadline, "cannot listen again: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        *self.lock_server() = Some(server);
    }

    fn lock_server(&self) -> MutexGuard<'_, Option<common::Server>> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn router(shared: Shared) -> Router {
    Router::new().fallback(proxy).with_state(shared)
}

/// A body of `n` bytes of well-formed JSON.
fn huge_json(n: usize) -> String {
    let mut s = String::with_capacity(n + 40);
    s.push_str(r#"{"access_token":"x","token_type":"Bearer","padding":""#);
    s.extend(std::iter::repeat_n('a', n));
    s.push_str(r#""}"#);
    s
}

async fn proxy(State(shared): State<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let (target, fault) = {
        let rules = shared.rules();
        let fault = rules
            .faults
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(_, f)| *f);
        (rules.target.clone(), fault)
    };
    let mut response = match fault {
        Some(Fault::Html) => common::html(
            StatusCode::OK,
            "<!DOCTYPE html><html><body><h1>Sign in to continue</h1><form></form></body></html>",
        ),
        Some(Fault::Garbage) => (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from_static(b"\x00\x9f\xffnot json at all \x01\x02"),
        )
            .into_response(),
        Some(Fault::Huge) => (
            [(header::CONTENT_TYPE, "application/json")],
            huge_json(4 * 1024 * 1024),
        )
            .into_response(),
        Some(Fault::Hold) => {
            let mut release = shared.release.subscribe();
            let _ = release.changed().await;
            forward(&shared.http, &target, request).await
        }
        Some(Fault::Truncated) => {
            let (parts, body) = forward(&shared.http, &target, request).await.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            let mut resp = Response::from_parts(parts, Body::from(cut));
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            resp
        }
        Some(Fault::WrongContentType) => {
            let mut resp = forward(&shared.http, &target, request).await;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            resp
        }
        None => forward(&shared.http, &target, request).await,
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Headers that belong to one connection and are not forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "host"
    ) || name == header::CONTENT_LENGTH
}

async fn forward(http: &reqwest::Client, target: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let url = format!(
        "{target}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return (StatusCode::BAD_REQUEST, "request body too large").into_response();
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut out = http.request(method, &url);
    // `Host` is kept: node `oidc-provider` builds its endpoint URLs from it, and they must
    // name the proxy.
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) || name == header::HOST {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        out = out.body(body);
    }
    let upstream = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("fault proxy: upstream failed: {e}"),
            )
                .into_response();
        }
    };
    let mut builder = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if !hop_by_hop(name) {
            builder = builder.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    builder
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
