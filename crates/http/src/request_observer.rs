//! One tower layer for what every request needs around it: a request id (the client's
//! `x-request-id` when it is sane, otherwise a generated one), a trace span (except on the hot
//! paths), the HTTP metrics, a log line for server errors, and the request id echoed on the
//! response.
//!
//! It replaces tower-http's `SetRequestId`, `PropagateRequestId` and `Trace` layers and an axum
//! `from_fn` middleware: one future wrapped around the handler instead of four (one of them
//! boxed), no wrapper around the response body, and no formatted allocation for the request id.
//! TokenReview runs tens of thousands of times a second; this is most of what it pays for HTTP
//! beyond axum itself.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Span;

use crate::AppState;
use crate::http_metrics::is_hot_path;

/// A hook the binary may install to see each request span with the request's headers (the
/// `otel` build links the span to an incoming W3C `traceparent`). Set once, at start.
pub type RequestSpanHook = fn(&axum::http::HeaderMap, &tracing::Span);

static REQUEST_SPAN_HOOK: std::sync::OnceLock<RequestSpanHook> = std::sync::OnceLock::new();

/// Installs the [`RequestSpanHook`]; a second call is ignored.
pub fn set_request_span_hook(hook: RequestSpanHook) {
    let _ = REQUEST_SPAN_HOOK.set(hook);
}

/// The request id header, read from the client and echoed on every response.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept; a longer or non-printable one is replaced.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Request ids: a random per-process prefix and a counter. Unique across replicas in practice,
/// and, unlike a UUID v4 per request, no `getrandom` system call on every request.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<[u8]>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        let prefix = portcullis_core::random_id();
        RequestIds {
            prefix: prefix.as_bytes()[..10].into(),
            next: Arc::default(),
        }
    }

    /// `<prefix>-<counter in hex>`, built on the stack.
    fn generate(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 10 + 1 + 16];
        let p = self.prefix.len();
        buf[..p].copy_from_slice(&self.prefix);
        buf[p] = b'-';
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in 0..digits {
            let nibble = ((n >> (4 * (digits - 1 - i))) & 0xf) as u8;
            buf[p + 1 + i] = b"0123456789abcdef"[nibble as usize];
        }
        HeaderValue::from_bytes(&buf[..p + 1 + digits]).expect("ASCII request id")
    }

    /// The request's id: the client's when it is short and printable, else a new one, which is
    /// also written into the request so handlers and logs see the same id.
    fn ensure(&self, req: &mut Request) -> HeaderValue {
        if let Some(v) = req.headers().get(&REQUEST_ID)
            && !v.is_empty()
            && v.len() <= MAX_CLIENT_ID_LEN
            && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
        {
            return v.clone();
        }
        let id = self.generate();
        req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
        id
    }
}

/// The layer; apply it with `Router::layer` so the matched route is known.
#[derive(Clone)]
pub(crate) struct RequestObserverLayer {
    state: AppState,
    ids: RequestIds,
}

impl RequestObserverLayer {
    pub(crate) fn new(state: AppState) -> Self {
        RequestObserverLayer {
            state,
            ids: RequestIds::new(),
        }
    }
}

impl<S> Layer<S> for RequestObserverLayer {
    type Service = RequestObserver<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestObserver {
            inner,
            state: self.state.clone(),
            ids: self.ids.clone(),
        }
    }
}

/// The service of [`RequestObserverLayer`].
#[derive(Clone)]
pub(crate) struct RequestObserver<S> {
    inner: S,
    state: AppState,
    ids: RequestIds,
}

impl<S> Service<Request> for RequestObserver<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let id = self.ids.ensure(&mut req);
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let span = if is_hot_path(req.uri().path()) {
            // The verification and probe endpoints log nothing per request and run thousands
            // of times a second: no span for them (a span costs a formatted allocation).
            Span::none()
        } else {
            // Method, route (the matched pattern, such as `/login/{provider}`), path, request
            // id, and the status once answered. The path only, never the query: query strings
            // can carry codes and tokens.
            let request_id = id.to_str().unwrap_or_default();
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let span = tracing::info_span!(
                "request",
                method = %method,
                route,
                path = %req.uri().path(),
                request_id = %request_id,
                status = tracing::field::Empty,
                otel.kind = "server"
            );
            if let Some(hook) = REQUEST_SPAN_HOOK.get() {
                hook(req.headers(), &span);
            }
            span
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        ObservedFuture {
            inner,
            done: Some(Pending {
                span,
                start,
                route,
                method,
                id,
                state: self.state.clone(),
            }),
        }
    }
}

/// What the response needs from the request.
struct Pending {
    span: Span,
    start: Instant,
    route: Option<MatchedPath>,
    method: Method,
    id: HeaderValue,
    state: AppState,
}

pin_project_lite::pin_project! {
    /// The handler's future, observed.
    pub(crate) struct ObservedFuture<F> {
        #[pin]
        inner: F,
        done: Option<Pending>,
    }
}

impl<F> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.done.as_ref().map(|d| d.span.enter());
            ready!(this.inner.poll(cx))
        };
        let Ok(mut response) = result;
        let Some(p) = this.done.take() else {
            return Poll::Ready(Ok(response));
        };
        let took = p.start.elapsed();
        let status = response.status();
        response.headers_mut().insert(REQUEST_ID.clone(), p.id);
        let route = p.route.as_ref().map_or("unmatched", |r| r.as_str());
        p.state
            .http_metrics()
            .record(route, &p.method, status, took);
        if !p.span.is_none() {
            p.span.record("status", status.as_u16());
        }
        if status.is_server_error() {
            let _entered = p.span.enter();
            tracing::error!(
                status = status.as_u16(),
                latency_ms = took.as_millis() as u64,
                "request failed"
            );
        } else if !p.span.is_none() {
            let _entered = p.span.enter();
            tracing::debug!(
                status = status.as_u16(),
                latency_ms = took.as_millis() as u64,
                "request finished"
            );
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_prefix_dash_hex_and_unique() {
        let ids = RequestIds::new();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a, b);
        let a = a.to_str().unwrap();
        assert_eq!(&a[10..], "-0");
        assert_eq!(&b.to_str().unwrap()[10..], "-1");
        ids.next.store(0xdead_beef, Ordering::Relaxed);
        assert!(ids.generate().to_str().unwrap().ends_with("-deadbeef"));
        ids.next.store(u64::MAX, Ordering::Relaxed);
        assert!(
            ids.generate()
                .to_str()
                .unwrap()
                .ends_with("-ffffffffffffffff")
        );
    }

    #[test]
    fn a_sane_client_id_is_kept_and_a_bad_one_replaced() {
        let ids = RequestIds::new();
        let mut req = Request::new(axum::body::Body::empty());
        req.headers_mut()
            .insert(&REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(ids.ensure(&mut req), "abc-123");

        for bad in ["", "has space", &"x".repeat(MAX_CLIENT_ID_LEN + 1)] {
            let mut req = Request::new(axum::body::Body::empty());
            req.headers_mut()
                .insert(&REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            let id = ids.ensure(&mut req);
            assert_ne!(id, bad);
            assert_eq!(
                req.headers()[&REQUEST_ID],
                id,
                "the request carries the new id"
            );
        }
    }
}
