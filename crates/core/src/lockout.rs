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

/// A reserved slot of one lockout key; see the module documentation.
#[must_use = "a slot must be settled with `fail` or `release`"]
pub(crate) struct Slot {
    store: Arc<dyn Store>,
    key: String,
    settled: bool,
}

impl Slot {
    /// Counts the attempt as a failure; the lock end when the key is now locked.
    pub async fn fail(
        mut self,
        policy: LockoutPolicy,
        now: UnixMillis,
    ) -> Result<Option<UnixMillis>, StoreError> {
        self.settled = true;
        self.store.lockout_fail(&self.key, policy, now).await
    }

    /// Gives the slot back (the attempt proved the password).
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.settled = true;
        self.store.lockout_release(&self.key).await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let store = self.store.clone();
        let key = std::mem::take(&mut self.key);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.lockout_release(&key).await {
                    tracing::warn!(error = %e, "giving back the lockout slot of an unfinished attempt failed");
                }
            });
        }
    }
}

/// The answer to a reservation.
pub(crate) enum Reserved {
    /// The attempt may go on; settle the slot.
    Slot(Slot),
    /// Locked until then.
    Locked(UnixMillis),
}

impl Engine {
    /// Reserves a slot of `key`. When every slot is taken by attempts still in flight (many
    /// correct logins of one account at once), waits for one to end, [`BUSY_WAIT`] at most, then
    /// answers locked for one second: those attempts are no failures, and the key is not locked.
    pub(crate) async fn reserve_slot(
        &self,
        key: &str,
        policy: LockoutPolicy,
        now: UnixMillis,
    ) -> Result<Reserved, StoreError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.store.lockout_reserve(key, policy, now).await? {
                LockoutDecision::Allowed => {
                    return Ok(Reserved::Slot(Slot {
                        store: self.store.clone(),
                        key: key.to_owned(),
                        settled: false,
                    }));
                }
                LockoutDecision::Locked { until } => return Ok(Reserved::Locked(until)),
                LockoutDecision::Busy if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                LockoutDecision::Busy => return Ok(Reserved::Locked(now + 1_000)),
            }
        }
    }
}
