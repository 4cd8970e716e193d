//! The soak load: a bounded, mixed, realistic load held for a fixed time against one running
//! Portcullis, counting every answer that is not the expected one and sampling the server's
//! resident memory.
//!
//! Each of `workers` tasks holds one session of one of the given users and loops until the
//! deadline, choosing by weight ([`Mix`], default 100 : 5 : 1) between
//! * a TokenReview of its access token (expects `authenticated: true`),
//! * a refresh grant (expects 200 and rotates both tokens),
//! * a logout (expects 200), a TokenReview of the logged-out token (expects
//!   `authenticated: false`: revocation takes effect at once on the server that revoked) and a new
//!   password login (expects 200): one logout and one login.
//!
//! Anything else (another status, a transport error, a refused good token) is an *unexpected
//! error*; the worker then logs in again and goes on. Memory is read from `/proc/PID/status`
//! (`VmRSS`) every `sample_every`; the report compares the mean of the first and last minute (the
//! first and last quarter for runs shorter than four minutes). The binary `soak` and
//! `bench/soak.sh` drive this; `crates/portcullis/tests/it/soak.rs` runs it for a few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Relative weights of the operations.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// TokenReview of the current access token.
    pub verify: u32,
    /// Refresh grant.
    pub refresh: u32,
    /// Logout, check that the token is refused, log in again.
    pub relogin: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            verify: 100,
            refresh: 5,
            relogin: 1,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// `http://127.0.0.1:PORT` of the server.
    pub base: String,
    /// The server's process id, for memory samples (`None`: no samples).
    pub pid: Option<u32>,
    /// How long to hold the load.
    pub duration: Duration,
    /// Concurrent sessions (tasks).
    pub workers: usize,
    /// `(name, password)` of existing users; worker `i` uses user `i % len`.
    pub users: Vec<(String, String)>,
    /// Interval between memory samples.
    pub sample_every: Duration,
    /// Operation weights.
    pub mix: Mix,
}

/// The operations counted in the report.
const OPS: [&str; 4] = ["login", "refresh", "verify", "logout"];

/// Counts, unexpected errors and latencies of one operation.
#[derive(Debug, Default, Clone)]
struct OpStats {
    count: u64,
    unexpected: u64,
    micros: Vec<u32>,
}

/// One worker's tally.
#[derive(Debug, Default)]
struct Tally {
    ops: [OpStats; 4],
    examples: Vec<String>,
}

impl Tally {
    fn ok(&mut self, op: usize, started: Instant) {
        let s = &mut self.ops[op];
        s.count += 1;
        s.micros
            .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    }

    fn unexpected(&mut self, op: usize, started: Instant, what: String) {
        self.ok(op, started);
        self.ops[op].unexpected += 1;
        if self.examples.len() < 10 {
            self.examples.push(format!("{}: {what}", OPS[op]));
        }
    }
}

/// The outcome of a run; [`SoakReport::to_json`] is what the tools write.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Seconds the load actually ran.
    pub elapsed_s: f64,
    /// Requests answered as expected plus unexpected ones, per operation.
    pub counts: Vec<(String, u64)>,
    /// Unexpected answers, all operations together.
    pub unexpected: u64,
    /// Up to ten examples of unexpected answers.
    pub examples: Vec<String>,
    /// `(operation, p50 ms, p99 ms)`.
    pub latency_ms: Vec<(String, f64, f64)>,
    /// `(seconds since start, RSS KiB)`.
    pub rss_kib: Vec<(f64, u64)>,
    /// Mean RSS of the first window (first minute, or first quarter of a short run), KiB.
    pub rss_first_kib: Option<f64>,
    /// Mean RSS of the last window, KiB.
    pub rss_last_kib: Option<f64>,
}

impl SoakReport {
    /// Total requests of all operations.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// Last-window mean RSS over first-window mean RSS (1.0 = flat).
    pub fn rss_growth(&self) -> Option<f64> {
        Some(self.rss_last_kib? / self.rss_first_kib?)
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let ops: serde_json::Map<String, Value> = self
            .counts
            .iter()
            .zip(&self.latency_ms)
            .map(|((op, n), (_, p50, p99))| {
                (
                    op.clone(),
                    json!({"count": n, "p50_ms": p50, "p99_ms": p99}),
                )
            })
            .collect();
        json!({
            "elapsed_s": self.elapsed_s,
            "requests": self.total(),
            "requests_per_s": self.total() as f64 / self.elapsed_s.max(1e-9),
            "unexpected_errors": self.unexpected,
            "unexpected_examples": self.examples,
            "ops": ops,
            "rss_first_window_kib": self.rss_first_kib,
            "rss_last_window_kib": self.rss_last_kib,
            "rss_growth": self.rss_growth(),
            "rss_samples_kib": self.rss_kib.iter().map(|(t, k)| json!([t, k])).collect::<Vec<_>>(),
        })
    }
}

/// A session held by a worker.
struct Session {
    access: String,
    refresh: String,
}

/// A small, seedable xorshift: the operation choice needs no cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        u32::try_from(self.0 % u64::from(n.max(1))).unwrap_or(0)
    }
}

/// Runs the soak and returns its report. Fails only when the setup is wrong (no users, no
/// first login); errors under load are counted, not returned.
pub async fn run(cfg: SoakConfig) -> Result<SoakReport, String> {
    if cfg.users.is_empty() || cfg.workers == 0 {
        return Err("the soak needs at least one user and one worker".into());
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(cfg.workers)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let client = Client {
        http,
        base: cfg.base.clone(),
    };
    // The setup must work before the clock starts.
    let (name, password) = &cfg.users[0];
    client
        .login(name, password)
        .await
        .map_err(|e| format!("the first login as {name} failed: {e}"))?;

    let start = Instant::now();
    let deadline = start + cfg.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = cfg.pid.map(|pid| {
        let (stop, every) = (stop.clone(), cfg.sample_every);
        tokio::spawn(async move { sample_rss(pid, start, every, stop).await })
    });
    let workers: Vec<_> = (0..cfg.workers)
        .map(|i| {
            let (client, mix) = (client.clone(), cfg.mix);
            let user = cfg.users[i % cfg.users.len()].clone();
            tokio::spawn(async move { worker(client, user, mix, deadline, i as u64).await })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.await.map_err(|e| format!("a worker panicked: {e}"))?;
        for (into, from) in all.ops.iter_mut().zip(t.ops) {
            into.count += from.count;
            into.unexpected += from.unexpected;
            into.micros.extend(from.micros);
        }
        all.examples
            .extend(t.examples.into_iter().take(10 - all.examples.len().min(10)));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    let rss = match sampler {
        Some(s) => s.await.map_err(|e| format!("the sampler panicked: {e}"))?,
        None => Vec::new(),
    };
    let window = if elapsed >= Duration::from_secs(240) {
        60.0
    } else {
        elapsed.as_secs_f64() / 4.0
    };
    let end = elapsed.as_secs_f64();
    let mean = |from: f64, to: f64| {
        let v: Vec<f64> = rss
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, k)| *k as f64)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Ok(SoakReport {
        elapsed_s: end,
        counts: OPS
            .iter()
            .zip(&all.ops)
            .map(|(op, s)| ((*op).to_owned(), s.count))
            .collect(),
        unexpected: all.ops.iter().map(|s| s.unexpected).sum(),
        examples: all.examples,
        latency_ms: OPS
            .iter()
            .zip(&mut all.ops)
            .map(|(op, s)| {
                s.micros.sort_unstable();
                (
                    (*op).to_owned(),
                    percentile(&s.micros, 0.50),
                    percentile(&s.micros, 0.99),
                )
            })
            .collect(),
        rss_first_kib: mean(0.0, window),
        rss_last_kib: mean(end - window, end),
        rss_kib: rss,
    })
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

const LOGIN: usize = 0;
const REFRESH: usize = 1;
const VERIFY: usize = 2;
const LOGOUT: usize = 3;

async fn worker(
    client: Client,
    (user, password): (String, String),
    mix: Mix,
    deadline: Instant,
    seed: u64,
) -> Tally {
    let mut t = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (seed.wrapping_add(1) << 20));
    let total = mix.verify + mix.refresh + mix.relogin;
    let mut session: Option<Session> = None;
    while Instant::now() < deadline {
        let Some(s) = session.take() else {
            let started = Instant::now();
            match client.login(&user, &password).await {
                Ok(s) => {
                    t.ok(LOGIN, started);
                    session = Some(s);
                }
                Err(e) => t.unexpected(LOGIN, started, e),
            }
            continue;
        };
        let pick = rng.below(total);
        let started = Instant::now();
        if pick < mix.verify {
            match client.review(&s.access).await {
                Ok(true) => {
                    t.ok(VERIFY, started);
                    session = Some(s);
                }
                Ok(false) => t.unexpected(VERIFY, started, "a live token was refused".into()),
                Err(e) => t.unexpected(VERIFY, started, e),
            }
        } else if pick < mix.verify + mix.refresh {
            match client.refresh(&s.refresh).await {
                Ok(next) => {
                    t.ok(REFRESH, started);
                    session = Some(next);
                }
                Err(e) => t.unexpected(REFRESH, started, e),
            }
        } else {
            match client.logout(&s.access).await {
                Ok(()) => t.ok(LOGOUT, started),
                Err(e) => t.unexpected(LOGOUT, started, e),
            }
            let started = Instant::now();
            match client.review(&s.access).await {
                Ok(false) => t.ok(VERIFY, started),
                Ok(true) => t.unexpected(VERIFY, started, "a logged-out token was accepted".into()),
                Err(e) => t.unexpected(VERIFY, started, e),
            }
            // The next turn logs in again.
        }
    }
    t
}

async fn sample_rss(
    pid: u32,
    start: Instant,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<(f64, u64)> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(every);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        if let Some(kib) = rss_kib(pid) {
            out.push((start.elapsed().as_secs_f64(), kib));
        }
    }
    out
}

/// `VmRSS` of a process in KiB, from `/proc` (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The few calls the load makes.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn token(&self, form: &[(&str, &str)]) -> Result<Session, String> {
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let field = |k: &str| body[k].as_str().map(str::to_owned);
        match (status, field("access_token"), field("refresh_token")) {
            (200, Some(access), Some(refresh)) => Ok(Session { access, refresh }),
            _ => Err(format!("HTTP {status}: {body}")),
        }
    }

    async fn login(&self, user: &str, password: &str) -> Result<Session, String> {
        self.token(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .await
    }

    async fn refresh(&self, refresh: &str) -> Result<Session, String> {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .await
    }

    async fn review(&self, token: &str) -> Result<bool, String> {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                          "spec": {"token": token}});
        let resp = self
            .http
            .post(format!("{}/oauth/authenticate", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("HTTP {status}: {e}"))?;
        match (status, &body["status"]["authenticated"]) {
            (200, Value::Bool(b)) => Ok(*b),
            _ => Err(format!("HTTP {status}: {body}")),
        }
    }

    async fn logout(&self, access: &str) -> Result<(), String> {
        let resp = self
            .http
            .get(format!("{}/oauth/logout", self.base))
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(format!(
                "HTTP {s}: {}",
                resp.text().await.unwrap_or_default()
            )),
        }
    }
}
