//! SQLite's in-memory lockout slots against the rules PostgreSQL stores (`common`'s, applied to
//! a map as PostgreSQL applies them to its table), over long random runs of reservations,
//! failures, releases, finished logins and clears; and what the design promises: a successful
//! login writes nothing to the lockout table, and a restart forgets the slots in flight.

use std::collections::HashMap;
use std::str::FromStr as _;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, SqliteConnection};

use super::SqliteStore;
use crate::common::{self, Counter};
use crate::{LockoutDecision, LockoutPolicy, LockoutStore as _, LoginRecord, Store as _};

/// The counters as PostgreSQL keeps them: slots in flight counted in the stored row.
#[derive(Default)]
struct Model(HashMap<String, Counter>);

impl Model {
    fn reserve(&mut self, keys: &[(&str, LockoutPolicy)], now: i64) -> Vec<LockoutDecision> {
        let stored: Vec<Option<Counter>> =
            keys.iter().map(|(k, _)| self.0.get(*k).copied()).collect();
        let (decisions, changes) = common::lockout_reserve_all(&stored, keys, now);
        for (i, c) in changes {
            self.0.insert(keys[i].0.to_owned(), c);
        }
        decisions
    }

    fn fail(&mut self, keys: &[(&str, LockoutPolicy)], now: i64) -> Vec<Option<i64>> {
        keys.iter()
            .map(|(k, policy)| {
                let c = common::lockout_fail(self.0.get(*k).copied(), *policy, now);
                self.0.insert((*k).to_owned(), c);
                c.locked_until
            })
            .collect()
    }

    /// Gives one slot of each key back; a key given twice once (PostgreSQL's `IN (...)`).
    fn release(&mut self, keys: &[&str]) {
        let mut seen: Vec<&str> = Vec::new();
        for k in keys {
            if seen.contains(k) {
                continue;
            }
            seen.push(k);
            if let Some(c) = self.0.get_mut(*k) {
                c.failures = (c.failures - 1).max(0);
            }
        }
    }
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn table(conn: &mut SqliteConnection) -> HashMap<String, Counter> {
    let rows: Vec<(String, i64, i64, Option<i64>)> =
        sqlx::query_as("SELECT lock_key, window_start, failures, locked_until FROM lockouts")
            .fetch_all(conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(k, window_start, failures, locked_until)| {
            (
                k,
                Counter {
                    window_start,
                    failures,
                    locked_until,
                },
            )
        })
        .collect()
}

fn record(id: usize, at: i64) -> LoginRecord {
    LoginRecord {
        id: format!("r{id}"),
        user: "u".into(),
        at,
        login_type: "Token".into(),
        provider: String::new(),
        source_ip: "10.0.0.1".into(),
        user_agent: "test".into(),
        success: false,
        reason: "account is disabled".into(),
    }
}

async fn open(dir: &tempfile::TempDir) -> (SqliteStore, SqliteConnection) {
    let path = dir.path().join("lockout.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (store, conn)
}

#[tokio::test]
async fn random_runs_answer_and_store_what_postgresql_would() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut conn) = open(&dir).await;
    let names = ["user:a", "user:b", "ip:c"];
    let policies = [
        LockoutPolicy {
            max_failures: 3,
            window_ms: 1_000,
        },
        LockoutPolicy {
            max_failures: 1,
            window_ms: 700,
        },
        LockoutPolicy {
            max_failures: 2,
            window_ms: 1_500,
        },
    ];
    let mut model = Model::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut in_flight: Vec<Vec<usize>> = Vec::new();
    let mut now = 1_000_000;
    let mut checked_quiet = 0;
    for step in 0..3_000 {
        now += rng.below(250) as i64;
        // One or two distinct keys.
        let first = rng.below(3) as usize;
        let mut picked = vec![first];
        if rng.below(2) == 0 {
            picked.push((first + 1 + rng.below(2) as usize) % 3);
        }
        let keys: Vec<(&str, LockoutPolicy)> =
            picked.iter().map(|&i| (names[i], policies[i])).collect();
        let case = format!("step {step} at {now}: {keys:?}");
        match rng.below(10) {
            0..=3 => {
                let got = store.lockout_reserve(&keys, now).await.unwrap();
                assert_eq!(got, model.reserve(&keys, now), "reserve, {case}");
                if got.iter().all(|d| *d == LockoutDecision::Allowed) {
                    in_flight.push(picked);
                }
            }
            4..=7 if !in_flight.is_empty() => {
                let held = in_flight.swap_remove(rng.below(in_flight.len() as u64) as usize);
                let keys: Vec<(&str, LockoutPolicy)> =
                    held.iter().map(|&i| (names[i], policies[i])).collect();
                let plain: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                match rng.below(3) {
                    0 => {
                        let got = store.lockout_fail(&keys, now).await.unwrap();
                        assert_eq!(got, model.fail(&keys, now), "fail, {case}");
                    }
                    1 => {
                        store.lockout_release(&plain).await.unwrap();
                        model.release(&plain);
                    }
                    _ => {
                        store
                            .finish_login(None, &plain, &record(step, now))
                            .await
                            .unwrap();
                        model.release(&plain);
                    }
                }
            }
            4..=8 => {
                // A release or failure without a reservation, also while other attempts are in
                // flight; a release may name a key twice.
                let mut plain: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
                if rng.below(4) == 0 {
                    plain.push(plain[0]);
                }
                if rng.below(2) == 0 {
                    store.lockout_release(&plain).await.unwrap();
                    model.release(&plain);
                } else {
                    let got = store.lockout_fail(&keys, now).await.unwrap();
                    assert_eq!(got, model.fail(&keys, now), "unreserved fail, {case}");
                }
            }
            _ => {
                store.lockout_clear(keys[0].0).await.unwrap();
                model.0.remove(keys[0].0);
            }
        }
        for (name, _) in &keys {
            let expected = model
                .0
                .get(*name)
                .and_then(|c| c.locked_until)
                .filter(|&u| u > now);
            assert_eq!(
                store.lockout_status(name, now).await.unwrap(),
                expected,
                "status, {case}"
            );
        }
        if in_flight.is_empty() {
            // Nothing in flight: the table holds exactly what PostgreSQL's would.
            assert_eq!(table(&mut conn).await, model.0, "table, {case}");
            checked_quiet += 1;
        }
    }
    assert!(checked_quiet > 100, "the run settled {checked_quiet} times");
}

/// `PRAGMA data_version` of a connection changes when another connection commits.
async fn data_version(conn: &mut SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_successful_login_writes_nothing_to_the_lockout_table() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut conn) = open(&dir).await;
    let policy = LockoutPolicy {
        max_failures: 5,
        window_ms: 60_000,
    };
    let keys = [("ip:10.0.0.1", policy), ("user:alice", policy)];
    // The first attempt of a window writes the window.
    let version = data_version(&mut conn).await;
    assert_eq!(
        store.lockout_reserve(&keys, 1_000).await.unwrap(),
        [LockoutDecision::Allowed; 2]
    );
    assert_ne!(data_version(&mut conn).await, version);
    store
        .lockout_release(&["ip:10.0.0.1", "user:alice"])
        .await
        .unwrap();
    let stored = table(&mut conn).await;

    // Later logins in the window: reserve and release, nothing committed.
    let version = data_version(&mut conn).await;
    for at in [2_000, 3_000] {
        assert_eq!(
            store.lockout_reserve(&keys, at).await.unwrap(),
            [LockoutDecision::Allowed; 2]
        );
        store
            .lockout_release(&["ip:10.0.0.1", "user:alice"])
            .await
            .unwrap();
    }
    assert_eq!(data_version(&mut conn).await, version);
    assert_eq!(table(&mut conn).await, stored);
    // A login's end (its record written) changes nothing in the lockout table either.
    store.lockout_reserve(&keys, 3_500).await.unwrap();
    store
        .finish_login(None, &["ip:10.0.0.1", "user:alice"], &record(1, 3_500))
        .await
        .unwrap();
    assert_eq!(table(&mut conn).await, stored);
    assert!(
        store.in_flight.lock().await.is_empty(),
        "the slots came back"
    );

    // A failure is written at once, with the slots of the others in flight left out.
    store.lockout_reserve(&keys, 4_000).await.unwrap();
    store.lockout_reserve(&keys, 4_001).await.unwrap();
    store.lockout_fail(&keys, 4_002).await.unwrap();
    let failures: Vec<i64> = table(&mut conn)
        .await
        .values()
        .map(|c| c.failures)
        .collect();
    assert_eq!(failures, [1, 1]);
}

/// A login's end waits for the one writer, which a long statement can hold for tens of
/// milliseconds (a retention batch): other logins' reservations go on meanwhile, instead of
/// queueing behind it one at a time.
#[tokio::test]
async fn a_login_ending_behind_a_long_write_does_not_hold_up_reservations() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _conn) = open(&dir).await;
    let policy = LockoutPolicy {
        max_failures: 5,
        window_ms: 60_000,
    };
    let alice = [("user:alice", policy)];
    let bob = [("user:bob", policy)];
    // Both windows exist, so the reservations below write nothing.
    for keys in [&alice, &bob] {
        store.lockout_reserve(keys, 1_000).await.unwrap();
        store.lockout_release(&[keys[0].0]).await.unwrap();
    }
    store.lockout_reserve(&alice, 2_000).await.unwrap();

    // The writer is busy; alice's login ends and waits for it.
    let long_write = store.begin_write().await.unwrap();
    let ending = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .finish_login(None, &["user:alice"], &record(1, 2_001))
                .await
        }
    });
    // This test's runtime has one thread: the task runs until it waits for the writer.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        !ending.is_finished(),
        "the login's end waits for the writer"
    );

    let reserved = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.lockout_reserve(&bob, 2_002),
    )
    .await
    .expect("a reservation does not wait for another login's end");
    assert_eq!(reserved.unwrap(), [LockoutDecision::Allowed]);

    drop(long_write);
    ending.await.unwrap().unwrap();
    store.lockout_release(&["user:bob"]).await.unwrap();
    assert!(
        store.in_flight.lock().await.is_empty(),
        "both slots came back"
    );
}

#[tokio::test]
async fn a_restart_forgets_the_slots_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let policy = LockoutPolicy {
        max_failures: 1,
        window_ms: 60_000,
    };
    let keys = [("user:alice", policy)];
    let (store, _conn) = open(&dir).await;
    assert_eq!(
        store.lockout_reserve(&keys, 1_000).await.unwrap(),
        [LockoutDecision::Allowed]
    );
    assert_eq!(
        store.lockout_reserve(&keys, 1_001).await.unwrap(),
        [LockoutDecision::Busy],
        "the one slot is in flight"
    );
    store.close().await;
    drop(store);
    // The process that held the slot is gone: its attempt proved nothing and counts for nothing.
    let (store, _conn) = open(&dir).await;
    assert_eq!(
        store.lockout_reserve(&keys, 1_002).await.unwrap(),
        [LockoutDecision::Allowed]
    );
}

/// `portcullis user enable` clears a key from another process while this one has attempts in
/// flight: the next failure starts from no counter, as on PostgreSQL, instead of writing the old
/// lock back.
#[tokio::test]
async fn a_clear_by_another_process_is_taken_while_attempts_are_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: 60_000,
    };
    let keys = [("user:alice", policy)];
    let (server, mut conn) = open(&dir).await;
    for at in [1_000, 1_001, 1_002] {
        assert_eq!(
            server.lockout_reserve(&keys, at).await.unwrap(),
            [LockoutDecision::Allowed]
        );
    }
    // With the other two in flight, the window is full: the failure locks.
    assert_eq!(
        server.lockout_fail(&keys, 1_003).await.unwrap(),
        [Some(61_003)]
    );
    let (cli, _) = open(&dir).await;
    cli.lockout_clear("user:alice").await.unwrap();
    assert_eq!(
        server.lockout_status("user:alice", 1_004).await.unwrap(),
        None
    );
    assert_eq!(server.lockout_fail(&keys, 1_005).await.unwrap(), [None]);
    assert_eq!(
        server.lockout_status("user:alice", 1_006).await.unwrap(),
        None
    );
    server.lockout_release(&["user:alice"]).await.unwrap();
    let table = table(&mut conn).await;
    assert_eq!(table["user:alice"].locked_until, None, "{table:?}");
    assert_eq!(table["user:alice"].failures, 0, "{table:?}");
}
