//! [`ScriptedUpstream`]: an HTTP/1.1 server that answers each path with a fixed answer the test
//! scripts byte for byte: any status, content type and body, framed with `Content-Length` or with
//! chunked transfer encoding, or an endless chunked body. It records how often each path was
//! requested (to prove that a client never fetched something, such as an external DTD) and how
//! many body bytes each answer wrote before the client went away (to prove that a client stopped
//! reading).
//!
//! Written on plain tokio sockets rather than axum so that the framing on the wire is exactly the
//! one the test asked for. Every answer carries `Connection: close`. Dropping the server stops it
//! and every answer still being written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How an answer's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: N`, then the body.
    ContentLength,
    /// `Transfer-Encoding: chunked`, no `Content-Length`.
    Chunked,
}

/// The bytes an endless answer writes at most (so a client that never stops reading cannot keep
/// a test running forever); far above any limit a client under test should have.
pub const ENDLESS_LIMIT: u64 = 512 * 1024 * 1024;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Scripted {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    framing: Framing,
    endless: bool,
}

impl Scripted {
    /// `200`, `application/json`, `body`, with `Content-Length`.
    pub fn json(body: impl Into<Vec<u8>>) -> Scripted {
        Scripted::with_type("application/json", body)
    }

    /// `200`, `content_type`, `body`, with `Content-Length`.
    pub fn with_type(content_type: &str, body: impl Into<Vec<u8>>) -> Scripted {
        Scripted {
            status: 200,
            content_type: content_type.to_owned(),
            body: body.into(),
            framing: Framing::ContentLength,
            endless: false,
        }
    }

    /// `200`, `content_type`, and a chunked body that never ends: `prefix`, then `a` forever
    /// (up to [`ENDLESS_LIMIT`] bytes).
    pub fn endless(content_type: &str, prefix: impl Into<Vec<u8>>) -> Scripted {
        Scripted {
            endless: true,
            framing: Framing::Chunked,
            ..Scripted::with_type(content_type, prefix)
        }
    }

    /// The same answer framed with `framing`.
    #[must_use]
    pub fn framed(mut self, framing: Framing) -> Scripted {
        self.framing = framing;
        self
    }

    /// The same answer with another status.
    #[must_use]
    pub fn status(mut self, status: u16) -> Scripted {
        self.status = status;
        self
    }
}

/// One answer, once written to the end or abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Whether it was an [endless](Scripted::endless) answer.
    pub endless: bool,
    /// Body bytes written (chunk framing not counted).
    pub body_bytes_written: u64,
    /// Whether writing failed because the client had closed the connection (otherwise the whole
    /// answer went out; for an endless answer: up to [`ENDLESS_LIMIT`]).
    pub closed_by_client: bool,
}

#[derive(Debug, Default)]
struct Shared {
    answers: HashMap<String, Scripted>,
    requests: HashMap<String, usize>,
    answered: HashMap<String, Vec<Answered>>,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running scripted server on `127.0.0.1:0`; dropping it stops it.
#[derive(Debug)]
pub struct ScriptedUpstream {
    addr: SocketAddr,
    state: State,
    task: JoinHandle<()>,
}

impl ScriptedUpstream {
    /// Starts a server that answers 404 on every path until [`ScriptedUpstream::set`].
    ///
    /// # Panics
    ///
    /// If the loopback interface cannot be bound.
    pub async fn start() -> ScriptedUpstream {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for a scripted upstream");
        let addr = listener.local_addr().expect("the bound address");
        let state = State::default();
        let task = tokio::spawn(serve(listener, state.clone()));
        ScriptedUpstream { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers requests for `path` (without the query) with `answer` from now on.
    pub fn set(&self, path: &str, answer: Scripted) {
        lock(&self.state).answers.insert(path.to_owned(), answer);
    }

    /// Requests for `path` received so far.
    pub fn requests(&self, path: &str) -> usize {
        lock(&self.state).requests.get(path).copied().unwrap_or(0)
    }

    /// The answers to `path` finished so far (written to the end or abandoned), in order.
    pub fn answered(&self, path: &str) -> Vec<Answered> {
        lock(&self.state)
            .answered
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Every path requested so far, answered or not, in no particular order.
    pub fn requested_paths(&self) -> Vec<String> {
        lock(&self.state).requests.keys().cloned().collect()
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, state: State) {
    // Dropped with this task, which aborts the connections still being answered.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        connections.spawn(answer(stream, state.clone()));
    }
}

/// The end of the request head, if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

async fn answer(mut stream: TcpStream, state: State) {
    // Read the head (at most 64 KiB), then the body its Content-Length announces: closing with
    // unread bytes would make the kernel reset the connection under the answer.
    let mut buf = Vec::new();
    let mut piece = [0u8; 8192];
    let head_len = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut piece).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&piece[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let content_length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body_read = buf.len() - head_len;
    while body_read < content_length {
        match stream.read(&mut piece).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body_read += n,
        }
    }
    let scripted = {
        let mut shared = lock(&state);
        *shared.requests.entry(path.clone()).or_default() += 1;
        shared.answers.get(&path).cloned()
    };
    let scripted = scripted.unwrap_or_else(|| {
        Scripted::with_type("text/plain", format!("no answer scripted for {path}")).status(404)
    });
    let (written, outcome) = write_answer(&mut stream, &scripted).await;
    lock(&state)
        .answered
        .entry(path)
        .or_default()
        .push(Answered {
            endless: scripted.endless,
            body_bytes_written: written,
            closed_by_client: outcome.is_err(),
        });
}

/// Writes the answer; returns the body bytes written and whether the whole answer went out.
async fn write_answer(stream: &mut TcpStream, s: &Scripted) -> (u64, std::io::Result<()>) {
    let mut head = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Type: {}\r\nConnection: close\r\n",
        s.status, s.content_type
    );
    match s.framing {
        Framing::ContentLength => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", s.body.len()))
        }
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    if let Err(e) = stream.write_all(head.as_bytes()).await {
        return (0, Err(e));
    }
    let mut written = 0u64;
    const PIECE: usize = 64 * 1024;
    let filler = vec![b'a'; PIECE];
    let mut pieces = s.body.chunks(PIECE);
    loop {
        let piece: &[u8] = match pieces.next() {
            Some(p) => p,
            None if s.endless && written < ENDLESS_LIMIT => &filler,
            None => break,
        };
        let result = match s.framing {
            Framing::ContentLength => stream.write_all(piece).await,
            Framing::Chunked => {
                let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                framed.extend_from_slice(piece);
                framed.extend_from_slice(b"\r\n");
                stream.write_all(&framed).await
            }
        };
        if let Err(e) = result {
            return (written, Err(e));
        }
        written += piece.len() as u64;
    }
    if s.framing == Framing::Chunked
        && let Err(e) = stream.write_all(b"0\r\n\r\n").await
    {
        return (written, Err(e));
    }
    let result = stream.flush().await;
    let _ = stream.shutdown().await;
    (written, result)
}
