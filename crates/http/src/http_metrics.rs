//! Per-request HTTP metrics with handles created once per (route, method, status) instead of a
//! labelled registry lookup (label strings allocated, key hashed) on every request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};

/// Routes that log nothing per request and are called at high rates: no trace span and no
/// latency histogram for them (a histogram sample costs more than a TokenReview itself).
pub(crate) fn is_hot_path(path: &str) -> bool {
    matches!(
        path,
        "/oauth/authenticate" | "/healthz" | "/readyz" | "/metrics"
    )
}

#[derive(Default)]
struct RouteMetrics {
    requests: Vec<(Method, u16, Counter)>,
    duration: Option<Histogram>,
}

/// `portcullis_http_requests_total{route,method,status}` and
/// `portcullis_http_request_duration_seconds{route}`.
#[derive(Default)]
pub(crate) struct HttpMetrics {
    routes: RwLock<HashMap<String, RouteMetrics>>,
}

impl HttpMetrics {
    /// Counts one answered request. `route` is the matched route pattern, never the raw path, so
    /// the label set stays bounded.
    pub(crate) fn record(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let status = status.as_u16();
        let cached = {
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            routes.get(route).and_then(|r| {
                let counter = r
                    .requests
                    .iter()
                    .find(|(m, s, _)| m == method && *s == status)
                    .map(|(_, _, c)| c.clone())?;
                Some((counter, r.duration.clone()))
            })
        };
        let (counter, duration) = match cached {
            Some(found) => found,
            None => self.register(route, method, status),
        };
        counter.increment(1);
        if let Some(h) = duration {
            h.record(took.as_secs_f64());
        }
    }

    fn register(&self, route: &str, method: &Method, status: u16) -> (Counter, Option<Histogram>) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let entry = routes.entry(route.to_owned()).or_insert_with(|| RouteMetrics {
            requests: Vec::new(),
            duration: (!is_hot_path(route)).then(|| {
                metrics::histogram!("portcullis_http_request_duration_seconds", "route" => route.to_owned())
            }),
        });
        let counter = match entry
            .requests
            .iter()
            .find(|(m, s, _)| m == method && *s == status)
        {
            Some((_, _, c)) => c.clone(),
            None => {
                let c = metrics::counter!(
                    "portcullis_http_requests_total",
                    "route" => route.to_owned(),
                    "method" => method.as_str().to_owned(),
                    "status" => status.to_string()
                );
                entry.requests.push((method.clone(), status, c.clone()));
                c
            }
        };
        (counter, entry.duration.clone())
    }
}

/// `portcullis_token_verifications_total{result}` for the TokenReview endpoint, registered once.
pub(crate) struct TokenReviewMetrics {
    pub(crate) valid: Counter,
    pub(crate) invalid: Counter,
}

impl TokenReviewMetrics {
    pub(crate) fn new() -> Self {
        TokenReviewMetrics {
            valid: metrics::counter!("portcullis_token_verifications_total", "result" => "valid"),
            invalid: metrics::counter!("portcullis_token_verifications_total", "result" => "invalid"),
        }
    }
}
