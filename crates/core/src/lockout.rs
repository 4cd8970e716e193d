//! Lockout slots: a password attempt reserves one slot of its account's and its address's
//! counters before the password is checked (so parallel guesses cannot exceed the limit), and
//! settles it afterwards: counted as a failure, or given back.
//!
//! A [`Slot`] that is dropped unsettled gives itself back: an attempt whose request was cancelled
//! (the client went away while the hash ran) or that ended in an error proved nothing, and must not
//! hold its slot for the rest of the window. Before this guard, every login cancelled mid-way
//! leaked a slot, and enough of them made the account answer 429 with no failure at all.
//!
//! Every store call of a slot (reserve, fail, release) runs in a task of its own: a request is
//! cancelled at whichever await it is in when its client goes away, and a reservation the store
//! made but never handed over, or a release never sent, would keep a slot just the same.

use std::sync::Arc;
use std::time::Duration;

use portcullis_store::{
    LockoutDecision, LockoutPolicy, LoginRecord, Session, Store, StoreError, UnixMillis,
};

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
        let store = self.store.clone();
        let keys = std::mem::take(&mut self.keys);
        detached(async move { store.lockout_fail(&key_refs(&keys), now).await }).await
    }

    /// Gives the slots back (the attempt proved the password).
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.settled = true;
        let store = self.store.clone();
        let keys = std::mem::take(&mut self.keys);
        detached(async move { release(store.as_ref(), &keys).await }).await
    }

    /// The attempt ended for another reason than a wrong password: gives the slots back, adds
    /// its login `record` and creates its `session` if it succeeded, all in one store call
    /// ([`Store::finish_login`]), which a cancelled request does not interrupt. When that call
    /// fails, the slots are given back all the same.
    pub async fn finish_login(
        mut self,
        session: Option<Session>,
        record: LoginRecord,
    ) -> Result<(), StoreError> {
        self.settled = true;
        let store = self.store.clone();
        let keys = std::mem::take(&mut self.keys);
        detached(async move {
            let keys: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            let finished = store.finish_login(session.as_ref(), &keys, &record).await;
            if finished.is_err() {
                // Nothing was written, so no slot was given back: an attempt that ended in an
                // error proved nothing and gives its slots back on its own, as a dropped one
                // does (on SQLite they are held in memory, which a full disk does not stop).
                if let Err(e) = store.lockout_release(&keys).await {
                    tracing::warn!(error = %e, "giving back the lockout slots of a login that could not be finished failed");
                }
            }
            finished
        })
        .await
    }
}

fn key_refs(keys: &[(String, LockoutPolicy)]) -> Vec<(&str, LockoutPolicy)> {
    keys.iter().map(|(k, p)| (k.as_str(), *p)).collect()
}

async fn release(store: &dyn Store, keys: &[(String, LockoutPolicy)]) -> Result<(), StoreError> {
    let keys: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    store.lockout_release(&keys).await
}

/// Runs a store call in a task of its own and waits for it. A request is cancelled when its
/// client goes away, at any await; a lockout change must not stop half-way because of that (a
/// reservation made but never handed over, or a release never sent, would keep a slot for the
/// whole window), so it finishes even when nobody waits for it any more.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::interrupted()),
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Slot")
            .field("keys", &keys)
            .field("settled", &self.settled)
            .finish()
    }
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
        let owned: Vec<(String, LockoutPolicy)> =
            keys.iter().map(|(k, p)| ((*k).to_owned(), *p)).collect();
        loop {
            // The slot is made inside the detached task: if this request is cancelled after the
            // store reserved, the unclaimed slot is dropped with the task's output and gives the
            // reservation back.
            let store = self.store.clone();
            let attempt_keys = owned.clone();
            let attempt = detached(async move {
                let decisions = store.lockout_reserve(&key_refs(&attempt_keys), now).await?;
                Ok(match first_refusal(&decisions) {
                    None => Attempt::Reserved(Slot {
                        store,
                        keys: attempt_keys,
                        settled: false,
                    }),
                    Some((index, decision)) => Attempt::Refused(index, decision),
                })
            })
            .await?;
            match attempt {
                Attempt::Reserved(slot) => return Ok(Reserved::Slot(slot)),
                Attempt::Refused(index, LockoutDecision::Locked { until }) => {
                    return Ok(Reserved::Locked { index, until });
                }
                Attempt::Refused(..) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Attempt::Refused(index, _) => {
                    return Ok(Reserved::Locked {
                        index,
                        until: now + 1_000,
                    });
                }
            }
        }
    }
}

/// One reservation's outcome.
enum Attempt {
    Reserved(Slot),
    /// The key at this index refused (locked, or busy).
    Refused(usize, LockoutDecision),
}

/// The refusal that answers a reservation: a locked key first (it answers at once, even when
/// another key is only busy), else the first key that is not `Allowed`.
fn first_refusal(decisions: &[LockoutDecision]) -> Option<(usize, LockoutDecision)> {
    let indexed = || decisions.iter().copied().enumerate();
    indexed()
        .find(|(_, d)| matches!(d, LockoutDecision::Locked { .. }))
        .or_else(|| indexed().find(|(_, d)| *d != LockoutDecision::Allowed))
}
