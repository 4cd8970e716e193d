//! The HTTP server loop: accepts connections and serves the router on each with hyper, with the
//! limits that keep slow or oversized clients from tying the server up.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never fires there and a
//! client that sends its headers one byte at a time (slow loris) holds a connection forever.
//! Here every connection gets:
//!
//! * `requestReadTimeout` to send the first bytes (enough to choose HTTP/1 or HTTP/2), and then
//!   the request head (request line and headers): HTTP/1 through hyper's header-read timeout
//!   (the connection is closed, which also ends idle keep-alive connections), HTTP/2 through
//!   keep-alive pings that must be answered within it;
//! * the same time again, as a deadline, for the whole request body (a body that is not complete
//!   by then fails to read and the request is answered with a 4xx);
//! * a bounded head: at most [`MAX_HEADERS`] header fields and [`MAX_HEAD_BYTES`] of buffered
//!   request head (more: 431 and the connection is closed).
//!
//! Bodies are limited to 64 KiB by the router itself (413).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

use crate::body_deadline::DeadlineBody;

/// Most header fields one request may have (hyper's default is 100).
pub const MAX_HEADERS: usize = 100;
/// Most bytes of request head hyper buffers for one request (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long connections may take to finish their requests after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// (for at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    read_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(read_timeout)
        .keep_alive_timeout(read_timeout)
        .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(100);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = connection_service(app.clone(), peer, read_timeout);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            if !protocol_known_within(&stream, read_timeout).await {
                return; // dropped: closed
            }
            let conn = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after the shutdown grace period");
    }
    Ok(())
}

/// Whether the client sent, within `limit`, enough bytes to tell HTTP/1 from HTTP/2 (hyper's
/// protocol detection waits for them without a timer; its header-read timeout starts after it).
async fn protocol_known_within(stream: &tokio::net::TcpStream, limit: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return false, // closed, failed or too slow
        };
        if n == PREFACE.len() || buf[..n] != PREFACE[..n] {
            return true;
        }
        // Part of the HTTP/2 preface: `peek` would return the same bytes at once, so wait a
        // little before looking again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The router for one connection: the peer address for `ConnectInfo`, and the body deadline.
fn connection_service(
    app: Router,
    peer: SocketAddr,
    read_timeout: Duration,
) -> impl tower::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(|body| DeadlineBody::new(body, read_timeout))
    })
}
