//! Slow and oversized requests: a client that trickles its headers or body, or never sends
//! them, is cut off after `requestReadTimeout`; a huge body, header, header count, URI or
//! parameter list is refused with a 4xx; the server keeps serving everyone else meanwhile, and
//! its memory stays bounded.

use std::time::{Duration, Instant};

use portcullis_test_support::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn slow_config() -> String {
    format!("{}portcullis:\n  requestReadTimeout: 1s\n", config(true))
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Resident memory of the server process, in KiB.
fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `head`, then one more byte every 50 ms (the slow-loris pace) until the server answers
/// with a 4xx or closes the connection; returns how long that took, or `None` when the server
/// still waited for bytes after `limit`.
async fn trickle(server: &Server, head: &'static [u8], limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr(server)).await.unwrap();
    s.write_all(head).await.unwrap();
    let mut buf = [0u8; 512];
    while start.elapsed() < limit {
        // A closed connection shows as a failed write, or a read that ends (EOF or a 408).
        if s.write_all(b"a").await.is_err() {
            return Some(start.elapsed());
        }
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            if let Ok(n @ 1..) = r {
                let answer = String::from_utf8_lossy(&buf[..n]);
                assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
            }
            return Some(start.elapsed());
        }
    }
    None
}

/// Sends raw bytes and returns the status line's code, or `None` when the server closed the
/// connection without an answer.
async fn raw_status(server: &Server, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr(server)).await.unwrap();
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = s.write_all(request).await;
    // The status line is enough (a kept-alive connection would only end after the timeout).
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.windows(2).any(|w| w == b"\r\n") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off_while_others_are_served() {
    let b = backend(false).await;
    let server = start(Some(slow_config()), &b);
    add_user(&server, &["alice", "--password", "alice-Passw0rd"]);
    let server = std::sync::Arc::new(server);
    let limit = Duration::from_secs(15);
    let mut attackers = Vec::new();
    for i in 0..40 {
        let server = server.clone();
        attackers.push(tokio::spawn(async move {
            match i % 3 {
                // Headers one byte at a time, never finished.
                0 => trickle(&server, b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nX-Slow: ", limit).await,
                // A complete head, then a body that never completes.
                1 => trickle(
                    &server,
                    b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\ngrant_type=",
                    limit,
                )
                .await,
                // Connected, silent.
                _ => {
                    let start = Instant::now();
                    let mut s = TcpStream::connect(addr(&server)).await.unwrap();
                    let mut buf = [0u8; 64];
                    match tokio::time::timeout(limit, s.read(&mut buf)).await {
                        Ok(_) => Some(start.elapsed()),
                        Err(_) => None,
                    }
                }
            }
        }));
    }
    // Meanwhile everyone else is served.
    for _ in 0..5 {
        let (status, _, body) = password_login(&server, "alice", "alice-Passw0rd").await;
        assert_eq!(status, 200, "{body}");
        let resp = http().get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    for (i, a) in attackers.into_iter().enumerate() {
        let closed = a.await.unwrap();
        assert!(closed.is_some(), "slow client {i} was never cut off");
    }
    let (status, _, _) = password_login(&server, "alice", "alice-Passw0rd").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_requests_are_refused_and_memory_stays_bounded() {
    let b = backend(false).await;
    let server = start(Some(slow_config()), &b);
    add_user(&server, &["alice", "--password", "alice-Passw0rd"]);
    let before = rss_kib(&server);

    // A huge header, too many headers, a huge request line: 431/414, or the connection closed.
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let huge_uri = format!(
        "GET /oauth/authorize?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a=b&".repeat(50_000)
    );
    for (name, request) in [
        ("huge header", &huge_header),
        ("many headers", &many_headers),
        ("huge URI", &huge_uri),
    ] {
        for _ in 0..20 {
            let status = raw_status(&server, request.as_bytes()).await;
            assert!(
                matches!(status, None | Some(414 | 431)),
                "{name}: {status:?}"
            );
        }
    }
    // Huge bodies on every kind of endpoint (form, JSON, page), declared or chunked: 413.
    let big = "x".repeat(1 << 20);
    for path in [
        "/oauth/token",
        "/oauth/authenticate",
        "/login",
        "/kapis/iam.kubesphere.io/v1alpha2/login",
    ] {
        for _ in 0..10 {
            let resp = http()
                .post(server.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(big.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 413, "{path}");
        }
        let mut chunked = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        for _ in 0..64 {
            chunked.extend_from_slice(format!("4000\r\n{}\r\n", "x".repeat(0x4000)).as_bytes());
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let status = raw_status(&server, &chunked).await;
        assert!(
            matches!(status, None | Some(413)),
            "{path}, chunked: {status:?}"
        );
    }
    // Many parameters within the size limit: a clear 400, never a 500.
    let many: Vec<(String, String)> = (0..5000)
        .map(|i| (format!("p{i}"), "v".to_owned()))
        .collect();
    let mut form: Vec<(String, String)> = vec![
        ("grant_type".into(), "password".into()),
        ("username".into(), "alice".into()),
        ("password".into(), "wrong".into()),
    ];
    form.extend(many);
    let resp = http()
        .post(server.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let repeated = "username=alice&".repeat(3000);
    let resp = http()
        .post(server.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&password=x&{repeated}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "duplicate parameters are refused");

    // Still serving, and the floods did not grow the process by more than a few megabytes.
    let (status, _, _) = password_login(&server, "alice", "alice-Passw0rd").await;
    assert_eq!(status, 200);
    let grown_mib = rss_kib(&server).saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "resident memory grew by {grown_mib} MiB");
}
