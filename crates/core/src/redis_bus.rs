//! Redis as the fast path for revocations between replicas: a revocation is published on a
//! channel, and every replica that hears it polls the store's revocation log at once instead of
//! at its next one-second tick. The store stays the source of truth, so losing Redis only makes
//! propagation fall back to polling; the listener reconnects by itself with backoff.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::engine::Engine;

/// The channel revocation notices are published on.
pub const CHANNEL: &str = "portcullis:revocations";

/// Publishes and listens for revocation notices. Connects lazily and reconnects after
/// failures, so a Redis that is down at start or restarts later is picked up when it returns.
#[derive(Clone)]
pub struct RevocationBus {
    client: redis::Client,
    conn: Arc<tokio::sync::Mutex<Option<ConnectionManager>>>,
}

impl std::fmt::Debug for RevocationBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationBus")
    }
}

impl RevocationBus {
    /// Parses the URL (which may carry a password; it is never logged). Does not connect.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(RevocationBus {
            client: redis::Client::open(url)?,
            conn: Arc::default(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let c = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Tells the other replicas to poll now. Best effort: failures are logged and counted, and
    /// the replicas still learn of the revocation from their next poll of the store.
    pub async fn publish(&self) {
        let result = match self.connection().await {
            Ok(mut conn) => conn.publish::<_, _, i64>(CHANNEL, "poll").await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            *self.conn.lock().await = None;
            tracing::warn!(error = %e, "publishing a revocation notice to Redis failed; replicas will poll");
            metrics::counter!("portcullis_redis_errors_total", "op" => "publish").increment(1);
        }
    }

    /// Listens for notices and polls the engine's revocation log on each; reconnects forever.
    pub fn spawn_listener(&self, engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                        Ok(()) => {
                            backoff = Duration::from_millis(200);
                            tracing::info!("listening for revocation notices on Redis");
                            // Catch up on anything published while we were not listening.
                            let _ = engine.poll_revocations().await;
                            let mut messages = pubsub.into_on_message();
                            while messages.next().await.is_some() {
                                if let Err(e) = engine.poll_revocations().await {
                                    tracing::warn!(error = %e, "polling revocations after a notice failed");
                                }
                            }
                            tracing::warn!("Redis subscription ended; reconnecting");
                        }
                        Err(e) => tracing::warn!(error = %e, "subscribing on Redis failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "connecting to Redis failed"),
                }
                metrics::counter!("portcullis_redis_errors_total", "op" => "subscribe")
                    .increment(1);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
    }
}
