//! Logging, and with the `otel` cargo feature, OpenTelemetry trace export over OTLP/HTTP.
//!
//! Where traces go, first match wins: `portcullis.tracing.otlpEndpoint` (flag
//! `--otlp-endpoint`, env `PORTCULLIS_OTLP_ENDPOINT`, a base URL to which `/v1/traces` is
//! appended), then the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended). None of them set: no exporter, no
//! OpenTelemetry layer, nothing spent. The service name is `OTEL_SERVICE_NAME`, default
//! `portcullis`.
//!
//! The spans are the ones the code already has: `request` per HTTP request (method, route,
//! path, request id, status; never the query string, a header or a body) and `upstream` per
//! call to an identity provider. A request carrying a W3C `traceparent` header gets its span as a
//! child of that remote span. A binary built without `otel` that finds an endpoint configured
//! starts anyway and says so in one warning.

use portcullis_config::{LogFormat, TracingOptions};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The standard variables naming an OTLP endpoint, most specific first.
const OTEL_ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Where traces are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `portcullis.tracing.otlpEndpoint`: the full URL of the traces receiver.
    Configured(String),
    /// One of the standard `OTEL_EXPORTER_OTLP_*` variables (the exporter reads it).
    Environment(&'static str),
}

impl Destination {
    /// Where traces go for these options and this environment; `None`: nowhere.
    pub fn of(options: &TracingOptions, env: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if let Some(base) = &options.otlp_endpoint {
            let url = format!("{}/v1/traces", base.as_str().trim_end_matches('/'));
            return Some(Destination::Configured(url));
        }
        OTEL_ENDPOINT_VARS
            .into_iter()
            .find(|var| env(var).is_some_and(|v| !v.trim().is_empty()))
            .map(Destination::Environment)
    }

    /// For the log: the URL, or the variable it comes from.
    fn describe(&self) -> String {
        match self {
            Destination::Configured(url) => url.clone(),
            Destination::Environment(var) => format!("${var}"),
        }
    }
}

/// What must outlive the server: the trace pipeline, flushed by [`Telemetry::shutdown`].
#[derive(Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered and stops the exporter (a no-op without one).
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            // Blocking: the exporter's thread finishes its last batch (bounded by its timeout).
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            match done {
                Ok(Ok(())) => tracing::info!("trace exporter flushed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "flushing the trace exporter failed"),
                Err(e) => tracing::warn!(error = %e, "flushing the trace exporter failed"),
            }
        }
    }
}

/// Sets up logging once (JSON or text on stderr, level from `RUST_LOG`, default `info`) and,
/// when `tracing` names a destination, trace export. Without the `otel` feature a destination
/// only earns a warning.
pub fn init(format: LogFormat, tracing: Option<&TracingOptions>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    let destination = tracing.and_then(|t| Destination::of(t, |var| std::env::var(var).ok()));
    let Some(destination) = destination else {
        let _ = registry.try_init();
        return Telemetry::default();
    };
    #[cfg(feature = "otel")]
    {
        use opentelemetry::trace::TracerProvider as _;
        match otel::provider(&destination) {
            Ok(provider) => {
                let layer =
                    tracing_opentelemetry::layer().with_tracer(provider.tracer("portcullis"));
                let _ = registry.with(layer).try_init();
                portcullis_http::set_request_span_hook(otel::link_remote_parent);
                tracing::info!(endpoint = %destination.describe(), "exporting OpenTelemetry traces (OTLP/HTTP)");
                Telemetry {
                    provider: Some(provider),
                }
            }
            Err(e) => {
                let _ = registry.try_init();
                tracing::warn!(endpoint = %destination.describe(), error = %e, "the OpenTelemetry trace exporter could not be set up; no traces are exported");
                Telemetry::default()
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = registry.try_init();
        tracing::warn!(endpoint = %destination.describe(), "an OTLP endpoint is configured, but this binary was built without the `otel` feature: no traces are exported");
        Telemetry::default()
    }
}

#[cfg(feature = "otel")]
mod otel {
    use axum::http::HeaderMap;
    use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::Destination;

    /// The tracer provider: a batch exporter to `destination`, named by `OTEL_SERVICE_NAME`.
    pub fn provider(
        destination: &Destination,
    ) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary);
        if let Destination::Configured(url) = destination {
            builder = builder.with_endpoint(url);
        }
        let exporter = builder.build()?;
        let name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "portcullis".to_owned());
        let resource = Resource::builder()
            .with_service_name(name)
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build())
    }

    struct Headers<'a>(&'a HeaderMap);

    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }

    /// Makes a request span the child of the caller's span named by a W3C `traceparent`
    /// header (`tracestate` kept); an absent or malformed header leaves it a root span.
    pub fn link_remote_parent(headers: &HeaderMap, span: &tracing::Span) {
        if !headers.contains_key("traceparent") {
            return;
        }
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let none = |_: &str| None;
        let base = TracingOptions {
            otlp_endpoint: Some(url::Url::parse("http://collector:4318/").unwrap()),
        };
        assert_eq!(
            Destination::of(&base, none),
            Some(Destination::Configured(
                "http://collector:4318/v1/traces".into()
            ))
        );
        let unset = TracingOptions::default();
        assert_eq!(Destination::of(&unset, none), None);
        let env =
            |var: &str| (var == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://c:4318".into());
        assert_eq!(
            Destination::of(&unset, env),
            Some(Destination::Environment("OTEL_EXPORTER_OTLP_ENDPOINT"))
        );
        let blank = |_: &str| Some(" ".to_owned());
        assert_eq!(Destination::of(&unset, blank), None);
        // The key beats the environment.
        assert!(matches!(
            Destination::of(&base, env),
            Some(Destination::Configured(_))
        ));
    }
}
