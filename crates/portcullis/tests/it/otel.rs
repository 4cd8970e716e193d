//! OpenTelemetry trace export (the `otel` feature): the real binary sends its spans over
//! OTLP/HTTP to a fake collector run here, which decodes the protobuf and keeps the spans.
//!
//! The batch exporter's schedule is set to a minute, so nothing is exported while the test makes
//! its requests: every span the collector receives was flushed by the graceful shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use portcullis_test_support::{Server, ServerOptions, eventually};
use portcullis_test_upstreams::FakeGitHub;
use prost::Message as _;

use crate::common::*;
use crate::federation::{Browser, PUBLIC, callback_url, github, yaml};

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
    /// Every string in the span (attributes and events), to look for secrets.
    text: String,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
    service_names: Arc<Mutex<Vec<String>>>,
}

fn value_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn pairs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
        .collect()
}

/// `POST /v1/traces`: decodes an OTLP/HTTP protobuf export and keeps its spans.
async fn receive(State(c): State<Collector>, body: Bytes) -> axum::http::StatusCode {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return axum::http::StatusCode::BAD_REQUEST;
    };
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .map(|r| pairs(&r.attributes))
            .unwrap_or_default();
        for (k, v) in resource {
            if k == "service.name" {
                c.service_names.lock().unwrap().push(v);
            }
        }
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            let attributes = pairs(&span.attributes);
            let mut text: Vec<String> =
                attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            for e in &span.events {
                text.push(e.name.clone());
                text.extend(
                    pairs(&e.attributes)
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}")),
                );
            }
            c.spans.lock().unwrap().push(Received {
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes,
                text: text.join("\n"),
            });
        }
    }
    axum::http::StatusCode::OK
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the fake collector on a loopback port; returns its base URL.
async fn start_collector(c: Collector) -> String {
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(c);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Sends SIGTERM to the server (by its pid) and waits until it has exited.
async fn terminate(server: &mut Server) {
    server.terminate().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.is_running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_collector_with_their_parent_and_no_secrets() {
    let collector = Collector::default();
    let endpoint = start_collector(collector.clone()).await;
    let gh = FakeGitHub::start().await;
    gh.add_user(42, "octocat", None, vec![]);
    gh.login_as(42);
    let providers = [github(
        &gh,
        "github",
        "auto",
        Some(&callback_url("github")),
        "",
    )];
    let mut opts = ServerOptions::new(bin(), Some(yaml(&providers)));
    opts.env.extend(
        [
            ("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("PORTCULLIS_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "portcullis-it"),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut server = Server::start(opts).expect("server starts");
    assert!(
        server.logs().contains("exporting OpenTelemetry traces"),
        "{}",
        server.logs()
    );

    // A page requested with a W3C trace context, and a query that must not be recorded.
    let page = http()
        .get(server.url("/login?return_to=/query-marker-7f3a"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // A password grant: the password and the tokens must not show up in any span.
    let (status, _, body) = password_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = password_login(&server, "admin", "wrong-Passw0rd-marker").await;
    assert_eq!(status, 400, "invalid_grant");
    // A login through the provider: an `upstream` span inside the callback's request span.
    let hops = Browser::new(&server)
        .follow(&format!("{PUBLIC}/login/github"))
        .await;
    assert_eq!(hops.last().unwrap().status, 200);
    let code_hop = hops
        .iter()
        .find(|h| h.url.contains("/oauth/callback/github"))
        .unwrap();
    let code = url::Url::parse(&code_hop.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(
        collector.spans.lock().unwrap().is_empty(),
        "nothing is exported before the schedule or the shutdown"
    );

    terminate(&mut server).await;
    let spans = eventually(Duration::from_secs(20), "spans at the collector", || {
        let spans = collector.spans.lock().unwrap().clone();
        async move {
            let done = spans.iter().any(|s| s.name == "upstream")
                && spans.iter().filter(|s| s.name == "request").count() >= 5;
            done.then_some(spans)
        }
    })
    .await
    .unwrap();
    assert!(
        collector
            .service_names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n == "portcullis-it")
    );

    // The page's span continues the caller's trace, as a child of the caller's span.
    let page_span = spans
        .iter()
        .find(|s| s.attr("route") == Some("/login") && s.attr("method") == Some("GET"))
        .expect("a span for GET /login");
    assert_eq!(page_span.name, "request");
    assert_eq!(page_span.trace_id, TRACE_ID);
    assert_eq!(page_span.parent_span_id, PARENT_ID);
    assert_eq!(page_span.attr("status"), Some("200"));
    assert_eq!(page_span.attr("path"), Some("/login"));
    assert!(
        page_span
            .attr("request_id")
            .is_some_and(|id| !id.is_empty()),
        "{page_span:?}"
    );

    // Without a traceparent, a request starts its own trace.
    let grants: Vec<&Received> = spans
        .iter()
        .filter(|s| s.attr("route") == Some("/oauth/token"))
        .collect();
    assert_eq!(grants.len(), 2, "{spans:#?}");
    let mut statuses: Vec<_> = grants.iter().filter_map(|s| s.attr("status")).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["200", "400"]);
    assert!(
        grants
            .iter()
            .all(|s| s.trace_id != TRACE_ID && s.parent_span_id.is_empty())
    );

    // The provider call is a child span of the callback request, naming the provider.
    let upstream = spans.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(upstream.attr("provider"), Some("github"));
    assert_eq!(upstream.attr("op"), Some("exchange"));
    let callback = spans
        .iter()
        .find(|s| s.span_id == upstream.parent_span_id)
        .expect("the upstream span's parent was exported");
    assert_eq!(callback.attr("route"), Some("/oauth/callback/{provider}"));
    assert_eq!(callback.trace_id, upstream.trace_id);

    // No secret anywhere: passwords, tokens, the authorization code, query strings.
    for span in &spans {
        for secret in [
            ADMIN_PASSWORD,
            "wrong-Passw0rd-marker",
            access.as_str(),
            code.as_str(),
            "query-marker-7f3a",
            "gho_",
        ] {
            assert!(
                !span.text.contains(secret),
                "span {} contains a secret: {}",
                span.name,
                span.text
            );
        }
    }
}
