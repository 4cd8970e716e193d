//! Helpers for Portcullis' integration tests: start the real `portcullis` binary on a free
//! loopback port with its own data directory, run its CLI against the same store, create a fresh
//! PostgreSQL database per test, shift the server's clock, and poll for a condition with a
//! deadline (tests never sleep to wait).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where the server keeps its data.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded default (SQLite in the data directory).
    Sqlite,
    /// A PostgreSQL URL.
    Postgres(String),
}

/// A running `portcullis serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory (also holds the config and clock files).
    pub dir: tempfile::TempDir,
    /// The config file the server was started with.
    pub config: PathBuf,
    bin: PathBuf,
    clock_file: PathBuf,
    clock_offset_ms: i64,
    database: Option<String>,
    logs: Arc<Mutex<String>>,
    /// Everything the server printed on standard output (the one-time admin password).
    pub stdout: Arc<Mutex<String>>,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `portcullis` binary (`env!("CARGO_BIN_EXE_portcullis")` in the binary's tests).
    pub bin: PathBuf,
    /// The kubesphere.yaml text; `None` starts without `--config`.
    pub config_yaml: Option<String>,
    /// Storage backend.
    pub backend: Backend,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl ServerOptions {
    /// Options with a config text, on SQLite.
    pub fn new(bin: impl Into<PathBuf>, config_yaml: Option<String>) -> Self {
        ServerOptions {
            bin: bin.into(),
            config_yaml,
            backend: Backend::Sqlite,
            env: Vec::new(),
        }
    }
}

impl Server {
    /// Starts the server and waits (with a deadline) until it listens.
    pub fn start(opts: ServerOptions) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        Self::start_in(opts, dir)
    }

    /// Starts a server in an existing data directory (a restart).
    pub fn start_in(opts: ServerOptions, dir: tempfile::TempDir) -> Result<Server> {
        let config = dir.path().join("kubesphere.yaml");
        if let Some(yaml) = &opts.config_yaml {
            std::fs::write(&config, yaml)?;
        }
        let clock_file = dir.path().join("clock-offset-ms");
        // SQLite is the default: the server and the CLI find it in the data directory.
        let database = match &opts.backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(url.clone()),
        };
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
        if opts.config_yaml.is_some() {
            cmd.arg("--config").arg(&config);
        }
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env("PORTCULLIS_LOG_FORMAT", "json")
            .env("PORTCULLIS_TEST_CLOCK_FILE", &clock_file)
            .env("RUST_LOG", "info")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(db) = &database {
            cmd.env("PORTCULLIS_DATABASE", db);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", opts.bin.display()))?;
        let logs = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().context("no stderr")?;
        let log_sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("portcullis is serving") {
                    let _ = tx.send(line.clone());
                }
                if let Ok(mut l) = log_sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let out = child.stdout.take().context("no stdout")?;
        let out_sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut l) = out_sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "server did not start; its log:\n{}",
                    logs.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).context("parsing the start log line")?;
        let listen = v["listen"]
            .as_str()
            .context("no listen field in the start log line")?
            .to_string();
        Ok(Server {
            child,
            base: format!("http://{listen}"),
            dir,
            config,
            bin: opts.bin,
            clock_file,
            clock_offset_ms: 0,
            database,
            logs,
            stdout,
        })
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The server's process id (to send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM to the process (by its pid), as an orchestrator stopping it does.
    pub fn terminate(&self) -> Result<()> {
        self.signal("TERM")
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...) to the process, by its pid.
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{name} {} failed: {status}", self.pid());
        }
        Ok(())
    }

    /// How the process exited, or `None` while it runs (never blocks).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Moves the server's clock forward (it re-reads the offset within 100 ms of its own time;
    /// callers poll for the effect rather than wait).
    pub fn advance_clock(&mut self, by: Duration) -> Result<()> {
        self.clock_offset_ms += i64::try_from(by.as_millis())?;
        let tmp = self.clock_file.with_extension("tmp");
        std::fs::write(&tmp, self.clock_offset_ms.to_string())?;
        std::fs::rename(&tmp, &self.clock_file)?;
        Ok(())
    }

    /// Runs the CLI against the same configuration and store, with the same clock offset.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        self.cli_with_stdin(args, None)
    }

    /// Runs the CLI with text on standard input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        run_cli(
            &self.bin,
            self.dir.path(),
            self.database.as_deref(),
            self.config.exists().then_some(&self.config),
            &self.clock_file,
            args,
            stdin,
        )
    }

    /// Stops the server (SIGKILL by pid) and hands back its data directory for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `portcullis ARGS` with the server's data directory, database and config in its
/// environment, and returns its output.
pub fn run_cli(
    bin: &Path,
    data_dir: &Path,
    database: Option<&str>,
    config: Option<&PathBuf>,
    clock_file: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output> {
    use std::io::Write;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_TEST_CLOCK_FILE", clock_file)
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(c) = config {
        cmd.env("PORTCULLIS_CONFIG", c);
    }
    if let Some(db) = database {
        cmd.env("PORTCULLIS_DATABASE", db);
    }
    let mut child = cmd.spawn()?;
    if let Some(text) = stdin
        && let Some(mut s) = child.stdin.take()
    {
        s.write_all(text.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

/// Polls `check` until it returns `Some`, or fails after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh, empty PostgreSQL database on the local server, dropped when this value is dropped.
pub struct PgDatabase {
    /// The database's URL.
    pub url: String,
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates one. The server is `PORTCULLIS_TEST_POSTGRES` (an admin URL) or
    /// `postgres://postgres@127.0.0.1:5432/test`.
    pub async fn create() -> Result<PgDatabase> {
        use sqlx::Connection;
        let admin_url = std::env::var("PORTCULLIS_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let name = format!("portcullis_it_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {admin_url} (is it running?)"))?;
        // The name is generated here from hex digits: safe to splice.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin_url.clone());
        Ok(PgDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a small runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            }
        })
        .join();
    }
}
