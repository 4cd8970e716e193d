//! One Redis connection for the whole process, shared by the revocation bus and the KubeSphere
//! token keys: a `ConnectionManager` (multiplexed, reconnects by itself) created lazily and
//! dropped after a failure, so a Redis that is down at start or restarts later is picked up
//! again when it returns. Short timeouts: a Redis outage must slow a login by at most about a
//! second, never hang it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_config::Config;
use redis::aio::ConnectionManager;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

/// After a failed connection attempt, calls fail at once (without trying) for this long, so an
/// outage costs each request nothing rather than a connection timeout.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Where Redis is, from the configuration: `portcullis.redis` (`--redis`, `PORTCULLIS_REDIS`)
/// when set, else KubeSphere's top-level `redis:` block. `None` without either.
pub fn client_from_config(config: &Config) -> Option<Result<redis::Client, redis::RedisError>> {
    if let Some(url) = &config.portcullis.redis_url {
        return Some(redis::Client::open(url.expose()));
    }
    let ks = config.redis.as_ref()?;
    Some(kubesphere_client(ks))
}

/// A client for KubeSphere's `redis:` block (host, port, password, db).
pub fn kubesphere_client(
    ks: &portcullis_config::RedisOptions,
) -> Result<redis::Client, redis::RedisError> {
    let mut settings = RedisConnectionInfo::default().set_db(ks.db);
    if !ks.password.expose().is_empty() {
        settings = settings.set_password(ks.password.expose());
    }
    let info = ConnectionAddr::Tcp(ks.host.clone(), ks.port)
        .into_connection_info()?
        .set_redis_settings(settings);
    redis::Client::open(info)
}

/// A lazily connected, shared Redis connection.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    state: Arc<tokio::sync::Mutex<LinkState>>,
}

#[derive(Default)]
struct LinkState {
    conn: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info may hold a password: never printed.
        f.write_str("RedisLink")
    }
}

impl RedisLink {
    /// Wraps a client. Does not connect.
    pub fn new(client: redis::Client) -> Self {
        RedisLink {
            client,
            state: Arc::default(),
        }
    }

    /// The client (for pub/sub connections, which are not multiplexed).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The shared connection, connecting on first use. Fails at once for a short while after a
    /// failed attempt.
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut state = self.state.lock().await;
        if let Some(c) = state.conn.as_ref() {
            return Ok(c.clone());
        }
        if let Some(at) = state.failed_at
            && at.elapsed() < RETRY_AFTER
        {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis is unavailable (recent connection failure)",
            )));
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(c) => {
                state.conn = Some(c.clone());
                state.failed_at = None;
                Ok(c)
            }
            Err(e) => {
                state.failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Forgets the connection after a failed command, so the next call reconnects.
    pub async fn reset(&self) {
        let mut state = self.state.lock().await;
        state.conn = None;
        state.failed_at = Some(Instant::now());
    }

    /// Counts and logs a failed Redis operation `op`, and drops the connection.
    pub async fn failed(&self, op: &'static str, error: &redis::RedisError) {
        self.reset().await;
        tracing::warn!(op, error = %error, "Redis operation failed");
        metrics::counter!("portcullis_redis_errors_total", "op" => op).increment(1);
    }
}
