//! Redis as the fast path for revocations between replicas: a revocation is published on a
//! channel, and every replica that hears it polls the store's revocation log at once instead of
//! at its next one-second tick. The store stays the source of truth, so losing Redis only makes
//! propagation fall back to polling; the listener reconnects by itself with backoff.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::engine::Engine;
use crate::redis_link::RedisLink;

/// The channel revocation notices are published on.
pub const CHANNEL: &str = "portcullis:revocations";

/// Publishes and listens for revocation notices over the process' shared [`RedisLink`].
#[derive(Clone, Debug)]
pub struct RevocationBus {
    link: RedisLink,
}

impl RevocationBus {
    /// A bus over the shared connection. Does not connect.
    pub fn new(link: RedisLink) -> Self {
        RevocationBus { link }
    }

    /// Tells the other replicas to poll now. Best effort: failures are logged and counted, and
    /// the replicas still learn of the revocation from their next poll of the store.
    pub async fn publish(&self) {
        let result = match self.link.connection().await {
            Ok(mut conn) => conn.publish::<_, _, i64>(CHANNEL, "poll").await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.link.failed("publish", &e).await;
        }
    }

    /// Listens for notices and polls the engine's revocation log on each; reconnects forever.
    pub fn spawn_listener(&self, engine: Arc<Engine>) -> tokio::task::JoinHandle<()> {
        let client = self.link.client().clone();
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
