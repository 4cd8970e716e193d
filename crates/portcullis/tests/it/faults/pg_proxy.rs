//! A loopback TCP proxy in front of PostgreSQL (or any TCP server) that the fault tests can
//! [`Proxy::cut`] (close every connection and refuse new ones, until [`Proxy::restore`]) or
//! [`Proxy::freeze`] (a database that stops answering: connections stay open, nothing moves).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub(crate) struct Proxy {
    pub(crate) port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    frozen: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (frozen, _) = watch::channel(false);
        let (flag, cuts, freezes) = (up.clone(), cut.clone(), frozen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound); // refused: accepted and closed at once
                    continue;
                }
                let mut cut_rx = cuts.subscribe();
                let frozen_rx = freezes.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        () = forward(inbound, target, frozen_rx) => {}
                        // A cut, or the proxy dropped (its sender with it): close both sides.
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            cut,
            frozen,
            task,
        }
    }

    /// Closes every connection and refuses new ones (until [`Proxy::restore`]).
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Accepts connections again (after [`Proxy::cut`]).
    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// A database that stops answering: every open connection stays open but no byte is
    /// forwarded any more, in either direction, and new connections are accepted but never
    /// forwarded. For the rest of the proxy's life (a [`Proxy::cut`] still closes them).
    pub(crate) fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards one connection both ways until either side closes; once frozen, holds both sides
/// open without forwarding anything, for ever (until the caller drops this future).
async fn forward(inbound: TcpStream, target: SocketAddr, frozen: watch::Receiver<bool>) {
    if *frozen.borrow() {
        let _held = inbound;
        return std::future::pending().await;
    }
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    tokio::join!(
        pump(in_read, out_write, frozen.clone()),
        pump(out_read, in_write, frozen),
    );
}

/// Copies `from` to `to` until end of stream. Once frozen it copies nothing more (bytes read at
/// that moment are discarded, an end of stream is not passed on) and keeps both halves open for
/// ever.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(n) if n > 0 => n,
                _ => break,
            },
            _ = frozen.wait_for(|f| *f) => break,
        };
        if *frozen.borrow() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if *frozen.borrow() {
        let _held = (from, to);
        std::future::pending::<()>().await;
    }
    // Not frozen: the stream ended (or failed), and dropping `to` shuts its side down.
}
