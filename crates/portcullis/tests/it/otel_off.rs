//! A binary built without the `otel` feature starts even when an OTLP endpoint is configured,
//! and says once that it exports nothing.

use portcullis_test_support::{Server, ServerOptions};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_without_the_feature_only_warns() {
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.env.extend(
        [
            ("PORTCULLIS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let server = Server::start(opts).expect("server starts");
    let (status, _, _) = password_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200);
    let logs = server.logs();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("built without the `otel` feature"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("\"level\":\"WARN\""),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("$OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{}",
        warnings[0]
    );
}
