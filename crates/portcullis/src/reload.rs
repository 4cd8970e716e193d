//! Live configuration reload: on a change of the config file or of a secret file it references
//! with `${file:...}` (each watched through its directory, so the `..data` symlink swap of a
//! mounted Kubernetes ConfigMap or Secret and an editor's rename-over are seen; the secret files
//! watched are those referenced when the server started) and on SIGHUP, the file is validated exactly as `check-config` does (the whole file,
//! then every identity provider built from it). A bad file changes nothing: the error is logged
//! with its location and `portcullis_config_reload_total{result="error"}` counts it, and
//! `portcullis_config_last_reload_success` drops to 0. A good one is swapped in atomically:
//! engine settings and keys, identity providers, and the configuration the HTTP layer serves.
//! Requests in flight finish on what they loaded; tokens and logins in progress live in the
//! store, so none is lost.
//!
//! Some settings are fixed at start (listen address, database, Redis, log format, data
//! directory, request read timeout): a change to them is reported with a warning and the
//! running value stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{EventKind, RecursiveMode, Watcher};
use portcullis_config::Config;
use portcullis_core::Engine;
use portcullis_http::AppState;

use crate::cli::ServeArgs;
use crate::providers::Wiring;
use crate::setup;

/// Bursts of file events within this window (an editor's write-rename-chmod, the ConfigMap
/// swap) cause one reload.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Re-reads and applies the configuration.
pub(crate) struct Reloader {
    args: ServeArgs,
    wiring: Wiring,
    engine: Arc<Engine>,
    state: AppState,
    /// The port actually bound, for a `publicURL` that names port 0 (tests).
    bound_port: u16,
    /// What was last read from the file and its secret files, so events that change neither
    /// are ignored.
    last_seen: tokio::sync::Mutex<Snapshot>,
}

impl Reloader {
    pub(crate) fn new(
        args: ServeArgs,
        wiring: Wiring,
        engine: Arc<Engine>,
        state: AppState,
        bound_port: u16,
    ) -> Self {
        let seen = snapshot(args.common.config.as_deref(), &state.config().secret_files);
        metrics::gauge!("portcullis_config_last_reload_success").set(1.0);
        metrics::counter!("portcullis_config_reload_total", "result" => "success").absolute(0);
        metrics::counter!("portcullis_config_reload_total", "result" => "error").absolute(0);
        Reloader {
            args,
            wiring,
            engine,
            state,
            bound_port,
            last_seen: tokio::sync::Mutex::new(seen),
        }
    }

    /// Reloads when the file's or a secret file's content differs from what was last read
    /// (file events).
    async fn reload_if_changed(&self) {
        let Some(path) = self.args.common.config.clone() else {
            return;
        };
        let secret_files = self.state.config().secret_files.clone();
        let seen = tokio::task::spawn_blocking(move || snapshot(Some(&path), &secret_files))
            .await
            .unwrap_or_default();
        {
            let mut last = self.last_seen.lock().await;
            if seen.first().is_some_and(Option::is_some) && *last == seen {
                return;
            }
            *last = seen;
        }
        self.reload("file changed").await;
    }

    /// Validates the file and, when it is good, swaps it in. Returns whether it was applied.
    pub(crate) async fn reload(&self, trigger: &str) -> bool {
        if self.args.common.config.is_none() {
            tracing::warn!(
                trigger,
                "no configuration file (--config): nothing to reload"
            );
            return false;
        }
        let args = self.args.clone();
        let wiring = self.wiring.clone();
        // File reads and provider construction are blocking work.
        let loaded = tokio::task::spawn_blocking(move || load(&args, &wiring)).await;
        let result = match loaded {
            Ok(Ok((config, providers))) => self.apply(config, providers),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the reload task failed: {e}")),
        };
        match result {
            Ok(()) => {
                metrics::counter!("portcullis_config_reload_total", "result" => "success")
                    .increment(1);
                metrics::gauge!("portcullis_config_last_reload_success").set(1.0);
                tracing::info!(trigger, "configuration reloaded");
                true
            }
            Err(e) => {
                metrics::counter!("portcullis_config_reload_total", "result" => "error")
                    .increment(1);
                metrics::gauge!("portcullis_config_last_reload_success").set(0.0);
                tracing::error!(trigger, error = %format!("{e:#}"), "the changed configuration is invalid; the previous one stays in force");
                false
            }
        }
    }

    fn apply(&self, mut config: Config, providers: portcullis_core::ProviderSet) -> Result<()> {
        let running = self.state.config();
        keep_restart_only_settings(&running, &mut config);
        if config.portcullis.public_url.port() == Some(0) {
            let _ = config.portcullis.public_url.set_port(Some(self.bound_port));
        }
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        // Validated above; the engine is the only step left that can refuse (signing keys).
        self.engine
            .apply_config(&config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.engine.set_providers(providers);
        self.state.set_config(config);
        Ok(())
    }
}

/// The contents of the configuration file and of the secret files (`None` for one that cannot be
/// read), in that order.
type Snapshot = Vec<Option<Vec<u8>>>;

fn snapshot(config: Option<&Path>, secret_files: &[PathBuf]) -> Snapshot {
    config
        .into_iter()
        .chain(secret_files.iter().map(PathBuf::as_path))
        .map(|p| std::fs::read(p).ok())
        .collect()
}

/// The same validation as `check-config`: the file, then every provider built from it.
fn load(args: &ServeArgs, wiring: &Wiring) -> Result<(Config, portcullis_core::ProviderSet)> {
    let registry = wiring.registry(&args.common)?;
    let config = setup::load_config(&args.common, Some(args), &registry)?;
    let (providers, warnings) = crate::providers::build(&config, &registry)?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok((config, providers))
}

/// Settings read only at start: a changed value is reported and the running one kept.
fn keep_restart_only_settings(running: &Config, new: &mut Config) {
    let mut changed = Vec::new();
    let (r, n) = (&running.portcullis, &mut new.portcullis);
    if r.listen != n.listen {
        changed.push("portcullis.listen");
    }
    n.listen = r.listen;
    if r.database.expose() != n.database.expose() {
        changed.push("portcullis.database");
    }
    n.database = r.database.clone();
    if r.redis_url.as_ref().map(|s| s.expose()) != n.redis_url.as_ref().map(|s| s.expose()) {
        changed.push("portcullis.redis");
    }
    n.redis_url = r.redis_url.clone();
    if r.log_format != n.log_format {
        changed.push("portcullis.logFormat");
    }
    n.log_format = r.log_format;
    if r.tracing != n.tracing {
        changed.push("portcullis.tracing");
    }
    n.tracing = r.tracing.clone();
    if r.data_dir != n.data_dir {
        changed.push("portcullis.dataDir");
    }
    n.data_dir = r.data_dir.clone();
    if r.request_read_timeout != n.request_read_timeout {
        changed.push("portcullis.requestReadTimeout");
    }
    n.request_read_timeout = r.request_read_timeout;
    let redis_key = |c: &Config| {
        c.redis
            .as_ref()
            .map(|k| (k.host.clone(), k.port, k.db, k.password.expose().to_owned()))
    };
    if redis_key(running) != redis_key(new) {
        changed.push("redis");
    }
    new.redis = running.redis.clone();
    for key in changed {
        tracing::warn!(
            key,
            "this setting changed in the file but is read only at start: the running value stays until a restart"
        );
    }
}

/// The running watchers; dropping this stops them.
pub(crate) struct ReloadTasks {
    _watcher: Option<notify::RecommendedWatcher>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ReloadTasks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the file watcher (when there is a config file) and the SIGHUP handler.
pub(crate) fn spawn(reloader: Arc<Reloader>) -> Result<ReloadTasks> {
    let mut tasks = Vec::new();
    let mut watcher = None;
    if let Some(path) = reloader.args.common.config.clone() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let secret_files = reloader.state.config().secret_files.clone();
        watcher = Some(watch(&path, &secret_files, tx)?);
        let r = Arc::clone(&reloader);
        tasks.push(tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Debounce: wait for a quiet period before reading the file.
                loop {
                    match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                r.reload_if_changed().await;
            }
        }));
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let r = Arc::clone(&reloader);
        tasks.push(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                r.reload("SIGHUP").await;
            }
        }));
    }
    Ok(ReloadTasks {
        _watcher: watcher,
        tasks,
    })
}

/// Watches the directories of the file and of its secret files; sends on `tx` for events that
/// may have changed one of them: the name of a watched file, or a `..`-prefixed name (the
/// ConfigMap's or Secret's `..data` symlink and its timestamped directories). Access events are
/// ignored: reading the file after an event makes more of them.
fn watch(
    path: &Path,
    secret_files: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<notify::RecommendedWatcher> {
    let files: Vec<&Path> = std::iter::once(path)
        .chain(secret_files.iter().map(PathBuf::as_path))
        .collect();
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in &files {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                names.iter().any(|name| name == n) || n.to_string_lossy().starts_with("..")
            })
        });
        if relevant {
            let _ = tx.send(());
        }
    })
    .context("starting the configuration file watcher")?;
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
        tracing::info!(dir = %dir.display(), "watching the configuration for changes");
    }
    Ok(watcher)
}
