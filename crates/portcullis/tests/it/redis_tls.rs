//! `rediss://`: Portcullis talks to Redis over TLS (rustls, the system roots or `SSL_CERT_FILE`),
//! against a private `redis-server` that speaks only TLS, with a test CA made by rcgen. A server
//! that does not trust that CA refuses the connection (the certificate is really checked).

use std::time::Duration;

use portcullis_test_support::{Server, ServerOptions, eventually};
use portcullis_test_upstreams::peers::test_certificates;

use crate::common::*;
use crate::degradation::PrivateRedis;

const LISTENING: &str = "listening for revocation notices on Redis";

fn start_with_redis(url: &str, ca_file: Option<&std::path::Path>) -> Server {
    let mut opts = ServerOptions::new(bin(), Some(config(true)));
    opts.env
        .push(("PORTCULLIS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()));
    opts.env.push(("PORTCULLIS_REDIS".into(), url.to_owned()));
    if let Some(ca) = ca_file {
        // rustls-native-certs reads the trusted roots from this file instead of the system's.
        opts.env
            .push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    }
    Server::start(opts).expect("server starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn rediss_urls_connect_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates("Portcullis test Redis CA").unwrap();
    let path = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (ca_file, cert_file, key_file) = (
        path("ca.pem", &ca),
        path("server.pem", &cert),
        path("server-key.pem", &key),
    );
    let redis = PrivateRedis::start_tls(&cert_file, &key_file);
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);

    let server = start_with_redis(&url, Some(&ca_file));
    eventually(Duration::from_secs(10), "the TLS subscription", || async {
        server.logs().contains(LISTENING).then_some(())
    })
    .await
    .unwrap();
    // A logout publishes its notice over the same TLS link, without an error.
    let (status, _, body) = password_login(&server, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let resp = http()
        .get(server.url("/oauth/logout"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        metric(&server, "portcullis_redis_errors_total{op=\"publish\"}").await,
        None,
        "{}",
        server.logs()
    );

    // Without the CA the server certificate is not trusted: no subscription, counted errors.
    let untrusting = start_with_redis(&url, None);
    eventually(
        Duration::from_secs(10),
        "a refused TLS handshake",
        || async {
            metric(
                &untrusting,
                "portcullis_redis_errors_total{op=\"subscribe\"}",
            )
            .await
            .filter(|n| *n >= 1.0)
        },
    )
    .await
    .unwrap();
    assert!(!untrusting.logs().contains(LISTENING));
}
