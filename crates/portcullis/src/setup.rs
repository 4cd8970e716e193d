//! Wiring shared by every command: configuration resolution, logging, the store and the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use portcullis_config::{Config, LoadOptions, LogFormat, Overrides, Secret};
use portcullis_core::{Clock, Engine, OffsetFileClock, SystemClock};
use portcullis_idp::ProviderRegistry;
use portcullis_store::Store;

use crate::cli::{CommonOpts, ServeArgs};

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "portcullis-data";

fn overrides(common: &CommonOpts, serve: Option<&ServeArgs>) -> Overrides {
    Overrides {
        listen: serve.and_then(|s| s.listen.clone()),
        public_url: serve.and_then(|s| s.public_url.clone()),
        session_max_lifetime: serve.and_then(|s| s.session_max_lifetime.clone()),
        database: common.database.clone(),
        redis: common.redis.clone(),
        log_format: common.log_format.clone(),
        otlp_endpoint: common.otlp_endpoint.clone(),
        data_dir: common.data_dir.clone(),
        jwt_secret: std::env::var("PORTCULLIS_JWT_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(Secret::new),
    }
}

/// Loads the configuration: the file when given, else defaults with a generated secret kept in
/// the data directory. Identity-provider types must be known to `registry`. `serve` adds the
/// flags only `serve` has.
pub fn load_config(
    common: &CommonOpts,
    serve: Option<&ServeArgs>,
    registry: &ProviderRegistry,
) -> Result<Config> {
    let types = registry.accepted_types();
    let opts = LoadOptions {
        known_provider_types: &types,
        overrides: overrides(common, serve),
    };
    match &common.config {
        Some(path) => portcullis_config::load_file(path, &opts).map_err(|e| anyhow::anyhow!("{e}")),
        None => {
            let data_dir = common
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let secret = match &opts.overrides.jwt_secret {
                Some(s) => s.clone(),
                None => generated_secret(&data_dir)?,
            };
            portcullis_config::defaults(secret, &opts).map_err(|e| anyhow::anyhow!("{e}"))
        }
    }
}

/// Reads `<data_dir>/jwt-secret`, creating it (mode 0600, 256 random bits) on first use.
fn generated_secret(data_dir: &Path) -> Result<Secret> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let s = existing.trim();
        if s.is_empty() {
            bail!(
                "{} is empty; delete it to generate a new secret (this logs everyone out)",
                path.display()
            );
        }
        return Ok(Secret::new(s));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new jwtSecret");
    Ok(Secret::new(secret))
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

/// Sets up logging once, without trace export (the commands other than `serve`). JSON when
/// configured; level from `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let _ = crate::telemetry::init(format, None);
}

/// The clock: the system clock, or (tests only) one shifted by `PORTCULLIS_TEST_CLOCK_FILE`.
pub fn clock() -> Arc<dyn Clock> {
    match std::env::var_os("PORTCULLIS_TEST_CLOCK_FILE") {
        Some(path) => {
            tracing::warn!(
                "PORTCULLIS_TEST_CLOCK_FILE is set: the clock can be shifted; never use this in production"
            );
            Arc::new(OffsetFileClock::new(PathBuf::from(path)))
        }
        None => Arc::new(SystemClock),
    }
}

/// Opens the store (creating the SQLite directory when needed) and builds the engine.
pub async fn open_engine(config: &Config) -> Result<Arc<Engine>> {
    let url = config.portcullis.database.expose();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let store: Arc<dyn Store> = portcullis_store::open(url)
        .await
        .with_context(|| format!("opening database {}", portcullis_store::redact_url(url)))?;
    let engine = Engine::new(config, store, clock())
        .await
        .context("starting the engine")?;
    connect_redis(config, &engine)?;
    Ok(engine)
}

/// Redis, when configured: the revocation bus on `portcullis.redis` (else KubeSphere's `redis:`
/// block), and KubeSphere's token keys on the `redis:` block. Nothing connects yet.
fn connect_redis(config: &Config, engine: &Engine) -> Result<()> {
    use portcullis_core::redis_link::{self, RedisLink};
    let Some(client) = redis_link::client_from_config(config) else {
        return Ok(());
    };
    let link = RedisLink::new(client.context("the Redis address")?);
    engine.set_revocation_bus(portcullis_core::redis_bus::RevocationBus::new(link.clone()));
    if let Some(ks) = &config.redis {
        let ks_link = if config.portcullis.redis_url.is_some() {
            RedisLink::new(redis_link::kubesphere_client(ks).context("the redis: block")?)
        } else {
            link
        };
        engine.set_kubesphere_tokens(portcullis_core::kubesphere_redis::KubeSphereTokens::new(
            ks_link,
        ));
    }
    Ok(())
}
