//! `loadgen`: Portcullis' load generator for the benchmark scenarios that a fixed `wrk` request
//! cannot express (rotating refresh tokens, code flows, federated logins), and for comparing
//! servers with the same client code.
//!
//! A fixed number of workers (`--concurrency`), each with one keep-alive HTTP/1.1 connection
//! and its own cookie jar, run one scenario back to back for `--duration` seconds after every
//! worker's setup is done. It prints one JSON object: operations per second, requests per
//! second, latency percentiles per operation (p50, p90, p99, max) and errors (counted, with a
//! few samples). Every unexpected status or answer is an error; a benchmark run with errors is
//! not a result. Also: `tokens` (one code flow, prints the token answer, for `wrk` scenarios) and
//! `startup` (spawn to first 200, median of N runs).
//!
//! Examples:
//!   loadgen --url http://127.0.0.1:9000 -c 32 -d 5 client-credentials --client bench:secret
//!   loadgen --url http://127.0.0.1:9000 refresh --client bench:secret --user admin:pw --redirect-uri http://127.0.0.1:9/cb
//!   loadgen --url http://127.0.0.1:9000 federated --provider instant --users 10000
//!   loadgen startup --runs 20 --ready-url http://127.0.0.1:9000/readyz -- portcullis serve ...

mod client;
mod scenarios;
mod startup;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use client::{Conn, Target};
use scenarios::{Client, CodeFlow, Paths, Scenario, TokenSource, WorkerState};

#[derive(Parser)]
#[command(about = "Load generator for Portcullis' benchmark scenarios (prints JSON)")]
struct Cli {
    /// Base URL of the server under load (http only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent workers, one connection each.
    #[arg(short = 'c', long, global = true, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of load (after setup).
    #[arg(short = 'd', long, global = true, default_value_t = 5.0)]
    duration: f64,
    /// Token endpoint path (oidc-provider: /token).
    #[arg(long, global = true, default_value = "/oauth/token")]
    token_path: String,
    /// Authorization endpoint path.
    #[arg(long, global = true, default_value = "/oauth/authorize")]
    authorize_path: String,
    /// Password sign-in form path.
    #[arg(long, global = true, default_value = "/login")]
    login_path: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One constant request (a ceiling, or any fixed call).
    Fixed {
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long, default_value = "/")]
        path: String,
        /// `Name: value`, repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        #[arg(long, default_value = "")]
        body: String,
        /// The status every answer must have.
        #[arg(long, default_value_t = 200)]
        expect: u16,
    },
    /// The client-credentials grant.
    ClientCredentials {
        /// ID:SECRET (client_secret_basic).
        #[arg(long)]
        client: String,
        #[arg(long)]
        scope: Option<String>,
    },
    /// The refresh-token grant; each worker carries its own rotating token.
    Refresh {
        /// ID:SECRET (client_secret_basic).
        #[arg(long)]
        client: String,
        /// Initial refresh tokens, one per line, one per worker (else a code flow per worker).
        #[arg(long)]
        tokens_file: Option<String>,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// Authorize (session cookie from one password sign-in) then the code exchange, with PKCE.
    AuthorizationCode {
        /// ID:SECRET (client_secret_basic).
        #[arg(long)]
        client: String,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// Federated logins through `/login/{provider}` and the callback, against an instant upstream.
    Federated {
        #[arg(long)]
        provider: String,
        /// Distinct upstream users, used in turn (user = (first-user + n) mod users).
        #[arg(long, default_value_t = 10_000)]
        users: u64,
        /// The first user of this run (the previous run's `next_user`).
        #[arg(long, default_value_t = 0)]
        first_user: u64,
    },
    /// One code flow; prints the token answer (tokens for the wrk scenarios).
    Tokens {
        /// ID:SECRET (client_secret_basic).
        #[arg(long)]
        client: String,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// Start-up time: spawn the command, poll `--ready-url` until 200, kill; median of `--runs`.
    Startup {
        #[arg(long, default_value_t = 20)]
        runs: usize,
        #[arg(long)]
        ready_url: String,
        /// The server command line.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Args, Clone)]
struct FlowArgs {
    /// USER:PASSWORD of the browser session (one password sign-in before the clock starts).
    #[arg(long, default_value = "")]
    user: String,
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    redirect_uri: String,
    #[arg(long, default_value = "openid offline_access")]
    scope: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> Result<Value> {
    let paths = Paths {
        token: cli.token_path.clone(),
        authorize: cli.authorize_path.clone(),
        login: cli.login_path.clone(),
    };
    if let Command::Startup {
        runs,
        ready_url,
        command,
    } = &cli.command
    {
        return startup::measure(*runs, ready_url, command).await;
    }
    let target = Target::parse(&cli.url)?;
    let (name, scenario) = match cli.command {
        Command::Fixed {
            method,
            path,
            headers,
            body,
            expect,
        } => {
            let headers = headers
                .iter()
                .map(|h| parse_header(h))
                .collect::<Result<Vec<_>>>()?;
            let method = Method::from_bytes(method.as_bytes()).context("bad --method")?;
            let s = Scenario::Fixed {
                method,
                path,
                headers,
                body: Bytes::from(body),
                expect,
            };
            ("fixed", s)
        }
        Command::ClientCredentials { client, scope } => (
            "client_credentials",
            Scenario::ClientCredentials {
                client: Client::parse(&client)?,
                scope,
            },
        ),
        Command::Refresh {
            client,
            tokens_file,
            flow,
        } => {
            let source = match tokens_file {
                Some(f) => {
                    let text = std::fs::read_to_string(&f).with_context(|| format!("read {f}"))?;
                    TokenSource::List(
                        text.lines()
                            .filter(|l| !l.is_empty())
                            .map(String::from)
                            .collect(),
                    )
                }
                None => TokenSource::CodeFlow(Box::new(
                    code_flow(&target, &paths, &client, &flow).await?,
                )),
            };
            let client = Client::parse(&client)?;
            ("refresh_token", Scenario::Refresh { client, source })
        }
        Command::AuthorizationCode { client, flow } => (
            "authorization_code",
            Scenario::AuthorizationCode {
                flow: code_flow(&target, &paths, &client, &flow).await?,
            },
        ),
        Command::Federated {
            provider,
            users,
            first_user,
        } => {
            if users == 0 {
                bail!("--users must be at least 1");
            }
            let s = Scenario::Federated {
                provider,
                users,
                next: AtomicU64::new(first_user),
            };
            ("federated_login", s)
        }
        Command::Tokens { client, flow } => {
            let flow = code_flow(&target, &paths, &client, &flow).await?;
            let reply = flow.run(&mut Conn::new(target)).await?;
            return reply.json();
        }
        Command::Startup { .. } => unreachable!("handled above"),
    };
    if cli.concurrency == 0 || cli.duration.is_nan() || cli.duration <= 0.0 {
        bail!("--concurrency and --duration must be positive");
    }
    let mut out = load(
        target,
        Arc::new(scenario),
        paths,
        cli.concurrency,
        Duration::from_secs_f64(cli.duration),
    )
    .await?;
    out["scenario"] = json!(name);
    out["url"] = json!(cli.url);
    Ok(out)
}

/// Logs a browser in once (password form) for a code flow.
async fn code_flow(
    target: &Target,
    paths: &Paths,
    client: &str,
    flow: &FlowArgs,
) -> Result<CodeFlow> {
    let (user, password) = flow
        .user
        .split_once(':')
        .ok_or_else(|| anyhow!("--user must be USER:PASSWORD"))?;
    let mut conn = Conn::new(target.clone());
    let session = scenarios::password_session(&mut conn, paths, user, password).await?;
    Ok(CodeFlow {
        client: Client::parse(client)?,
        redirect_uri: flow.redirect_uri.clone(),
        scope: flow.scope.clone(),
        paths: paths.clone(),
        session,
    })
}

fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue)> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| anyhow!("--header must be 'Name: value', got {h:?}"))?;
    Ok((
        HeaderName::from_bytes(k.trim().as_bytes())?,
        HeaderValue::from_str(v.trim())?,
    ))
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    samples: Vec<String>,
    requests: u64,
}

/// Runs the workers: setup, then the timed loop; returns the JSON figures.
async fn load(
    target: Target,
    scenario: Arc<Scenario>,
    paths: Paths,
    concurrency: usize,
    duration: Duration,
) -> Result<Value> {
    let paths = Arc::new(paths);
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let mut workers = Vec::with_capacity(concurrency);
    for index in 0..concurrency {
        let (target, scenario, paths, barrier) = (
            target.clone(),
            scenario.clone(),
            paths.clone(),
            barrier.clone(),
        );
        let mut start_rx = start_rx.clone();
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            let setup = scenario.setup(&mut conn, index).await;
            barrier.wait().await;
            let mut st: WorkerState = setup?;
            let start = start_rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| anyhow!("the run was abandoned"))?
                .unwrap_or_else(Instant::now);
            let deadline = start + duration;
            let before = conn.requests;
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                match scenario.step(&mut conn, &mut st, &paths).await {
                    Ok(()) => tally
                        .latencies_us
                        .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Err(e) => {
                        tally.errors += 1;
                        if tally.samples.len() < 3 {
                            tally.samples.push(format!("{e:#}"));
                        }
                    }
                }
            }
            tally.requests = conn.requests - before;
            Ok::<Tally, anyhow::Error>(tally)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    start_tx.send_replace(Some(start));
    let mut all = Tally::default();
    for w in workers {
        let t = w.await.context("worker panicked")??;
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        all.requests += t.requests;
        for s in t.samples {
            if all.samples.len() < 5 && !all.samples.contains(&s) {
                all.samples.push(s);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut out = summary(&mut all, elapsed, concurrency);
    if let Scenario::Federated { users, next, .. } = &*scenario {
        out["upstream_users"] = json!(users);
        out["next_user"] = json!(next.load(std::sync::atomic::Ordering::Relaxed));
    }
    Ok(out)
}

fn summary(t: &mut Tally, elapsed: f64, concurrency: usize) -> Value {
    t.latencies_us.sort_unstable();
    let ops = t.latencies_us.len();
    let pct = |p: f64| -> f64 {
        if ops == 0 {
            return 0.0;
        }
        let i = ((ops as f64 * p).ceil() as usize).clamp(1, ops) - 1;
        f64::from(t.latencies_us[i]) / 1000.0
    };
    json!({
        "concurrency": concurrency,
        "duration_s": elapsed,
        "ops": ops,
        "ops_per_s": ops as f64 / elapsed,
        "requests": t.requests,
        "requests_per_s": t.requests as f64 / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "errors": t.errors,
        "error_samples": t.samples,
    })
}
