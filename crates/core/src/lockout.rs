//! Lockout slots: a password attempt reserves one slot of its account's and its address's
//! counters before the password is checked (so parallel guesses cannot exceed the limit), and
//! settles it afterwards: counted as a failure, or given back.
//!
//! A [`Slot`] that is dropped unsettled gives itself back: an attempt whose request was cancelled
//! (the client went away while the hash ran) or that ended in an error proved nothing, and must not
//! hold its slot for the rest of the window. Before this guard, every login cancelled mid-way
//! leaked a slot, and enough of them made the account answer 429 with no failure at all.

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{LockoutDecision, LockoutPolicy, Store, StoreError, UnixMillis};

use crate::engine::Engine;

/// How long an attempt waits for a slot taken by attempts in flight, asking again after pauses
/// of 5, 10, 20, 40, then 50 ms.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// A reserved slot of each of one attempt's lockout keys; see the module documentation.
#[must_use = "a slot must be settled with `fail` or `release`"]
pub(crate) struct Slot {
    store: Arc<dyn Store>,
    keys: Vec<(String, LockoutPolicy)>,
    settled: bool,
}

impl Slot {
    /// Counts the attempt as a failure of every key; per key, the lock end when it is now locked.
    pub async fn fail(mut self, now: UnixMillis) -> Result<Vec<Option<UnixMillis>>, StoreError> {
        self.settled = true;
        let keys: Vec<(&str, LockoutPolicy)> =
            self.keys.iter().map(|(k, p)| (k.as_str(), *p)).collect();
        self.store.lockout_fail(&keys, now).await
    }

    /// Gives the slots back (the attempt proved the password).
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.settled = true;
        release(self.store.as_ref(), &self.keys).await
    }
}

async fn release(store: &dyn Store, keys: &[(String, LockoutPolicy)]) -> Result<(), StoreError> {
    let keys: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    store.lockout_release(&keys).await
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let store = self.store.clone();
        let keys = std::mem::take(&mut self.keys);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = release(store.as_ref(), &keys).await {
                    tracing::warn!(error = %e, "giving back the lockout slots of an unfinished attempt failed");
                }
            });
        }
    }
}

/// The answer to a reservation.
pub(crate) enum Reserved {
    /// The attempt may go on; settle the slot.
    Slot(Slot),
    /// The key at this index of the reservation is locked until then; nothing was reserved.
    Locked {
        /// Which key.
        index: usize,
        /// Until when.
        until: UnixMillis,
    },
}

impl Engine {
    /// Reserves a slot of every key, all or none (one store call). When every slot of a key is
    /// taken by attempts still in flight (many correct logins of one account at once), waits for
    /// one to end, [`BUSY_WAIT`] at most, then answers locked for one second: those attempts are
    /// no failures, and the key is not locked.
    pub(crate) async fn reserve_slot(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> Result<Reserved, StoreError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            let decisions = self.store.lockout_reserve(keys, now).await?;
            // A locked key answers at once, even when another one is only busy.
            let refused = decisions
                .iter()
                .enumerate()
                .find(|(_, d)| matches!(d, LockoutDecision::Locked { .. }))
                .or_else(|| {
                    decisions
                        .iter()
                        .enumerate()
                        .find(|(_, d)| **d != LockoutDecision::Allowed)
                });
            match refused {
                None => {
                    return Ok(Reserved::Slot(Slot {
                        store: self.store.clone(),
                        keys: keys.iter().map(|(k, p)| ((*k).to_owned(), *p)).collect(),
                        settled: false,
                    }));
                }
                Some((index, LockoutDecision::Locked { until })) => {
                    return Ok(Reserved::Locked {
                        index,
                        until: *until,
                    });
                }
                Some(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Some((index, _)) => {
                    return Ok(Reserved::Locked {
                        index,
                        until: now + 1_000,
                    });
                }
            }
        }
    }
}
