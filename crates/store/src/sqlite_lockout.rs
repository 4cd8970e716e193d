//! SQLite's lockout slots. The counters live in the `lockouts` table, as on PostgreSQL, but the
//! slot an attempt reserves while its password is checked is held in this process's memory: a
//! SQLite database serves one server process (the CLI, in another process, only clears keys,
//! and that is seen: below). A login that succeeds in a window already started writes nothing to
//! the lockout table (the reservation and the release were two writes of every login, about 0.8
//! points of the password grant's overhead beyond its hash), and a restart no longer leaves the
//! slots of the attempts it interrupted counted as failures.
//!
//! The answers are PostgreSQL's rules (`common`; the same store conformance cases run on both):
//! for every key with attempts in flight, [`Overlay::counter`] is the counter PostgreSQL would
//! hold, failures plus slots in flight, and the table holds that counter minus the slots in
//! flight ([`Overlay::stored`]). A reservation that starts a new window (a new key, a window over,
//! a lock run out) writes the new window to the table; a failure writes its count (and lock); a
//! release writes nothing. Every reservation, failure and clear holds one mutex across its table
//! read and write, so the decisions are serialised as PostgreSQL's row locks serialise them, and
//! each reads the table first: where it no longer holds what this process wrote (a clear by
//! another process, a write of this one that failed, a release's decrement), the table wins. A
//! release holds the mutex to sort its keys and to settle them, not across its write (the end
//! of a login, which may wait for the writer behind a long statement). An attempt is
//! settled in memory even when its write fails, so keys without attempts in flight have no entry
//! and the map holds only the logins running now.

use std::collections::HashMap;

use super::{SqliteStore, json_keys};
use crate::common::{self, Counter};
use crate::{LockoutDecision, LockoutPolicy, StoreResult, UnixMillis};

/// The attempts in flight of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overlay {
    /// The counter with the slots in flight counted, as PostgreSQL stores it.
    counter: Option<Counter>,
    /// Slots reserved and not yet settled.
    in_flight: i64,
}

impl Overlay {
    /// What the table holds for this key: the counter without the slots in flight.
    fn stored(&self) -> Option<Counter> {
        self.counter.map(|c| Counter {
            failures: (c.failures - self.in_flight).max(0),
            ..c
        })
    }

    /// One slot given back (never below zero, as PostgreSQL's `failures > 0` guard).
    fn released(self) -> Overlay {
        Overlay {
            counter: self.counter.map(|c| Counter {
                failures: (c.failures - 1).max(0),
                ..c
            }),
            in_flight: (self.in_flight - 1).max(0),
        }
    }
}

/// The keys with attempts in flight, behind the mutex every lockout operation holds.
pub(crate) type InFlight = tokio::sync::Mutex<HashMap<String, Overlay>>;

/// Keeps `overlay` for `key` while attempts are in flight, and drops it when none are.
fn settle(slots: &mut HashMap<String, Overlay>, key: &str, overlay: Overlay) {
    if overlay.in_flight > 0 {
        slots.insert(key.to_owned(), overlay);
    } else {
        slots.remove(key);
    }
}

/// `keys` without repeats, in order (a key given twice is released once, as on PostgreSQL).
fn distinct<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::with_capacity(keys.len());
    for k in keys {
        if !out.contains(k) {
            out.push(k);
        }
    }
    out
}

impl SqliteStore {
    /// The current state of each key, from the table (all keys read in one statement) and the
    /// slots in flight. The table is the truth for what is settled: where it no longer holds
    /// what this process last wrote (a `portcullis user enable` in another process cleared the
    /// key, or a write of this process failed), its row is taken and the slots in flight are
    /// counted on top of it, or, where the row is gone, continue from no counter, as after
    /// [`SqliteStore::clear_slots`].
    async fn current(
        &self,
        slots: &HashMap<String, Overlay>,
        keys: &[&str],
    ) -> StoreResult<Vec<Overlay>> {
        let rows = self.read_counters(keys).await?;
        Ok(keys
            .iter()
            .zip(rows)
            .map(|(k, row)| match slots.get(*k) {
                Some(overlay) if overlay.stored() == row => *overlay,
                Some(overlay) => Overlay {
                    counter: row.map(|c| Counter {
                        failures: c.failures + overlay.in_flight,
                        ..c
                    }),
                    in_flight: overlay.in_flight,
                },
                None => Overlay {
                    counter: row,
                    in_flight: 0,
                },
            })
            .collect())
    }

    /// Writes the counters that changed in the table, in one transaction.
    async fn write_stored(
        &self,
        keys: &[(&str, LockoutPolicy)],
        before: &[Overlay],
        after: &[Overlay],
    ) -> StoreResult<()> {
        let changes: Vec<(usize, Counter)> = before
            .iter()
            .zip(after)
            .enumerate()
            .filter(|(_, (b, a))| b.stored() != a.stored())
            .filter_map(|(i, (_, a))| a.stored().map(|c| (i, c)))
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        Self::save_counters(&mut tx, keys, &changes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `lockout_reserve`: see the module documentation.
    pub(super) async fn reserve_slots(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<LockoutDecision>> {
        let names = common::distinct_keys(keys)?;
        let mut slots = self.in_flight.lock().await;
        let before = self.current(&slots, &names).await?;
        let counters: Vec<Option<Counter>> = before.iter().map(|o| o.counter).collect();
        let (decisions, changes) = common::lockout_reserve_all(&counters, keys, now);
        if decisions.iter().any(|d| *d != LockoutDecision::Allowed) {
            return Ok(decisions);
        }
        let mut after: Vec<Overlay> = before
            .iter()
            .map(|o| Overlay {
                in_flight: o.in_flight + 1,
                ..*o
            })
            .collect();
        for (i, counter) in changes {
            after[i].counter = Some(counter);
        }
        // Only a new window changes what the table holds.
        self.write_stored(keys, &before, &after).await?;
        for (name, overlay) in names.iter().zip(after) {
            settle(&mut slots, name, overlay);
        }
        Ok(decisions)
    }

    /// `lockout_fail`: the attempt's slot becomes a failure in the table.
    pub(super) async fn fail_slots(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<Option<UnixMillis>>> {
        let names = common::distinct_keys(keys)?;
        let mut slots = self.in_flight.lock().await;
        let before = self.current(&slots, &names).await?;
        let after: Vec<Overlay> = before
            .iter()
            .zip(keys)
            .map(|(o, (_, policy))| Overlay {
                counter: Some(common::lockout_fail(o.counter, *policy, now)),
                in_flight: (o.in_flight - 1).max(0),
            })
            .collect();
        // The attempt is settled in memory even when the write fails: its slot must not stay in
        // flight for ever, and the next operation on these keys takes the table's row again.
        let written = self.write_stored(keys, &before, &after).await;
        let locks = after
            .iter()
            .map(|o| o.counter.and_then(|c| c.locked_until))
            .collect();
        for (name, overlay) in names.iter().zip(after) {
            settle(&mut slots, name, overlay);
        }
        written.map(|()| locks)
    }

    /// `lockout_release`, and the release of `finish_login`: `write` runs with the keys that
    /// have no slot in flight here (the table's counter is decremented for those, as on
    /// PostgreSQL), and the slots in flight are given back only when it succeeded.
    pub(super) async fn release_slots<F, Fut>(&self, keys: &[&str], write: F) -> StoreResult<()>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = StoreResult<()>>,
    {
        let keys = distinct(keys);
        let (held, unheld): (Vec<&str>, Vec<&str>) = {
            let slots = self.in_flight.lock().await;
            keys.iter().partition(|k| slots.contains_key(**k))
        };
        // The write runs without the mutex: it may wait for the one writer behind a long
        // statement (a retention batch holds SQLite's write lock for tens of milliseconds), and
        // every reservation needs the mutex, so holding it here made all logins queue behind
        // that statement one at a time. Meanwhile the slots held here stay counted in flight, as
        // PostgreSQL's stay counted until the release commits; a key found unheld that another
        // attempt here reserves meanwhile is reconciled by the table-wins rule of `current`
        // (the table's counter, decremented by this write, no longer matches the overlay).
        write(unheld.iter().map(|k| (*k).to_owned()).collect()).await?;
        let mut slots = self.in_flight.lock().await;
        for key in held {
            if let Some(overlay) = slots.get(key).copied() {
                settle(&mut slots, key, overlay.released());
            }
        }
        Ok(())
    }

    /// `lockout_clear`: the row goes, and attempts in flight continue from no counter.
    pub(super) async fn clear_slots(&self, key: &str) -> StoreResult<()> {
        let mut slots = self.in_flight.lock().await;
        sqlx::query("DELETE FROM lockouts WHERE lock_key = $1")
            .bind(key)
            .execute(&self.writer)
            .await?;
        if let Some(overlay) = slots.get_mut(key) {
            overlay.counter = None;
        }
        Ok(())
    }

    /// The table's counters of `keys`, in order, read in one statement.
    async fn read_counters(&self, keys: &[&str]) -> StoreResult<Vec<Option<Counter>>> {
        let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT lock_key, window_start, failures, locked_until FROM lockouts \
             WHERE lock_key IN (SELECT value FROM json_each($1))",
        )
        .bind(json_keys(keys)?)
        .fetch_all(&self.reader)
        .await?;
        Ok(keys
            .iter()
            .map(|key| {
                rows.iter().find(|row| row.0 == *key).map(
                    |&(_, window_start, failures, locked_until)| Counter {
                        window_start,
                        failures,
                        locked_until,
                    },
                )
            })
            .collect())
    }
}

#[cfg(test)]
#[path = "sqlite_lockout_tests.rs"]
mod tests;
