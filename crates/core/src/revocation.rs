//! The in-process view of revoked sessions, kept in step with the store's revocation log.
//!
//! Verifying a token must not touch the database, yet a revocation made anywhere (another
//! replica, the CLI on the same database) must take effect within seconds. Every server keeps the
//! set of revoked, unexpired session ids in memory and polls the log (`revocations_since`) once a
//! second; with Redis configured, a pub/sub message triggers the poll at once. Revocations made by
//! this process are applied locally before the call returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;
use portcullis_store::{Store, StoreResult, UnixMillis};

/// Revoked session ids with their expiry (after which they can be forgotten).
#[derive(Default)]
pub struct RevocationIndex {
    revoked: DashMap<String, Option<UnixMillis>>,
    head: AtomicI64,
}

impl RevocationIndex {
    /// Loads the live revocations from the store.
    pub async fn load(store: &dyn Store, now: UnixMillis) -> StoreResult<Arc<Self>> {
        let index = Arc::new(RevocationIndex::default());
        // Read the head first: entries added while loading are then picked up by the next poll.
        let head = store.revocation_head().await?;
        for r in store.live_revocations(now).await? {
            index.revoked.insert(r.session_id, r.expires_at);
        }
        index.head.store(head, Ordering::SeqCst);
        Ok(index)
    }

    /// Whether a session is revoked.
    pub fn is_revoked(&self, session_id: &str) -> bool {
        self.revoked.contains_key(session_id)
    }

    /// Records revocations made by this process.
    pub fn insert(&self, session_id: &str, expires_at: Option<UnixMillis>) {
        self.revoked.insert(session_id.to_owned(), expires_at);
    }

    /// Applies log entries newer than what was seen; returns how many were applied.
    pub async fn poll(&self, store: &dyn Store) -> StoreResult<usize> {
        let mut applied = 0;
        loop {
            let after = self.head.load(Ordering::SeqCst);
            let batch = store.revocations_since(after, 1000).await?;
            let Some(last) = batch.last().map(|r| r.seq) else {
                break;
            };
            applied += batch.len();
            for r in batch {
                self.revoked.insert(r.session_id, r.expires_at);
            }
            self.head.fetch_max(last, Ordering::SeqCst);
        }
        Ok(applied)
    }

    /// Forgets entries whose sessions have expired anyway.
    pub fn prune(&self, now: UnixMillis) {
        self.revoked.retain(|_, exp| exp.is_none_or(|e| e > now));
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}
