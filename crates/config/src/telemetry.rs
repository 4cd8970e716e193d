//! The `portcullis.tracing` block: where a binary built with the `otel` feature sends its
//! OpenTelemetry traces.
//!
//! `otlpEndpoint` (flag `--otlp-endpoint`, env `PORTCULLIS_OTLP_ENDPOINT`) is the base URL of an
//! OTLP/HTTP receiver, like the standard `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces` is appended.
//! When it is not set, the standard `OTEL_EXPORTER_OTLP_*` variables apply (read by the binary).

use crate::error::Report;
use crate::fields::{Field, Fields};
use crate::portcullis::setting;
use crate::{Overrides, TracingOptions};

const TRACING_KEYS: &[&str] = &["otlpEndpoint"];

/// Reads `portcullis.tracing` with the `--otlp-endpoint` override.
pub(crate) fn read(
    report: &mut Report,
    field: Option<Field>,
    parent: &Fields,
    over: &Overrides,
) -> TracingOptions {
    let path = parent.key_path("tracing");
    let f = Fields::read(
        report,
        field.as_ref().map(|f| f.node),
        &path,
        field.as_ref().and_then(|f| f.line),
        TRACING_KEYS,
        &|_| None,
    );
    let otlp_endpoint = setting(
        report,
        over.otlp_endpoint.as_deref(),
        "--otlp-endpoint",
        &f,
        "otlpEndpoint",
    )
    .and_then(|s| match endpoint(&s.value) {
        Ok(url) => Some(url),
        Err(e) => {
            s.fail(report, e);
            None
        }
    });
    TracingOptions { otlp_endpoint }
}

/// An absolute http(s) URL without credentials, query or fragment: the receiver's base URL.
fn endpoint(value: &str) -> Result<url::Url, String> {
    const EXAMPLE: &str = "write e.g. http://otel-collector:4318";
    let url = url::Url::parse(value.trim())
        .map_err(|e| format!("not an absolute URL ({e}); {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https (OTLP over HTTP); {EXAMPLE}"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("must not have a query or fragment; {EXAMPLE}"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints() {
        assert!(endpoint("http://collector:4318").is_ok());
        assert!(endpoint(" https://otel.example.com/base ").is_ok());
        for bad in [
            "collector:4318",
            "grpc://c:4317",
            "http://u:p@c",
            "http://c/?x=1",
            "",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }
}
