//! Conformance cases for lockout counters.

use std::sync::Arc;

use super::{race, record, sample_user, session};
use crate::{LockoutDecision, LockoutPolicy, LoginRecord, Store, StoreError, StoreResult};

/// The multi-key lockout calls with one key, as most cases use them.
#[async_trait::async_trait]
trait OneKey {
    async fn reserve_one(
        &self,
        key: &str,
        policy: LockoutPolicy,
        now: i64,
    ) -> StoreResult<LockoutDecision>;
    async fn fail_one(
        &self,
        key: &str,
        policy: LockoutPolicy,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    async fn release_one(&self, key: &str) -> StoreResult<()>;
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> OneKey for S {
    async fn reserve_one(
        &self,
        key: &str,
        policy: LockoutPolicy,
        now: i64,
    ) -> StoreResult<LockoutDecision> {
        let decisions = self.lockout_reserve(&[(key, policy)], now).await?;
        assert_eq!(decisions.len(), 1, "one decision per key");
        Ok(decisions[0])
    }

    async fn fail_one(
        &self,
        key: &str,
        policy: LockoutPolicy,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let locks = self.lockout_fail(&[(key, policy)], now).await?;
        assert_eq!(locks.len(), 1, "one answer per key");
        Ok(locks[0])
    }

    async fn release_one(&self, key: &str) -> StoreResult<()> {
        self.lockout_release(&[key]).await
    }
}

const MINUTE: i64 = 60_000;

async fn reserve_and_fail(
    store: &dyn Store,
    key: &str,
    policy: LockoutPolicy,
    now: i64,
) -> Option<i64> {
    assert_eq!(
        store.reserve_one(key, policy, now).await.unwrap(),
        LockoutDecision::Allowed,
        "{key} at {now}"
    );
    store.fail_one(key, policy, now).await.unwrap()
}

/// The `max_failures`-th failure in a window locks the key for a window from that failure.
pub async fn lockout_locks_after_max_failures(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: MINUTE,
    };
    assert_eq!(store.lockout_status("user:alice", 0).await.unwrap(), None);
    assert_eq!(
        reserve_and_fail(&*store, "user:alice", policy, 1_000).await,
        None
    );
    assert_eq!(
        reserve_and_fail(&*store, "user:alice", policy, 2_000).await,
        None
    );
    assert_eq!(
        store.lockout_status("user:alice", 2_000).await.unwrap(),
        None
    );
    assert_eq!(
        reserve_and_fail(&*store, "user:alice", policy, 3_000).await,
        Some(3_000 + MINUTE)
    );
    assert_eq!(
        store.lockout_status("user:alice", 3_001).await.unwrap(),
        Some(3_000 + MINUTE)
    );
    assert_eq!(
        store
            .reserve_one("user:alice", policy, 3_001)
            .await
            .unwrap(),
        LockoutDecision::Locked {
            until: 3_000 + MINUTE
        }
    );
    assert_eq!(
        store.reserve_one("user:bob", policy, 3_001).await.unwrap(),
        LockoutDecision::Allowed,
        "keys are independent"
    );
    assert_eq!(
        store.lockout_status("ip:10.0.0.1", 3_001).await.unwrap(),
        None
    );
}

/// A lock ends at its time (judged by the `now` passed in) and a fresh window starts.
pub async fn lockout_lock_expires_after_window(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 2,
        window_ms: 1_000,
    };
    assert_eq!(reserve_and_fail(&*store, "k", policy, 10_000).await, None);
    assert_eq!(
        reserve_and_fail(&*store, "k", policy, 10_400).await,
        Some(11_400)
    );
    assert_eq!(
        store.reserve_one("k", policy, 11_399).await.unwrap(),
        LockoutDecision::Locked { until: 11_400 }
    );
    assert_eq!(
        store.lockout_status("k", 11_399).await.unwrap(),
        Some(11_400)
    );
    assert_eq!(store.lockout_status("k", 11_400).await.unwrap(), None);
    assert_eq!(
        reserve_and_fail(&*store, "k", policy, 11_400).await,
        None,
        "the old failures are forgotten"
    );
    assert_eq!(
        reserve_and_fail(&*store, "k", policy, 11_500).await,
        Some(12_500)
    );
}

/// Failures older than the window no longer count.
pub async fn lockout_window_rolls_over(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: 1_000,
    };
    for key in ["inside", "after"] {
        assert_eq!(reserve_and_fail(&*store, key, policy, 0).await, None);
        assert_eq!(reserve_and_fail(&*store, key, policy, 500).await, None);
    }
    assert_eq!(
        reserve_and_fail(&*store, "inside", policy, 999).await,
        Some(1_999)
    );
    assert_eq!(
        reserve_and_fail(&*store, "after", policy, 1_000).await,
        None,
        "a new window started at 1000"
    );
    assert_eq!(
        reserve_and_fail(&*store, "after", policy, 1_100).await,
        None
    );
    assert_eq!(
        reserve_and_fail(&*store, "after", policy, 1_999).await,
        Some(2_999)
    );
}

/// The end of a login creates its session, gives every key's slot back and adds its record (and
/// the last login time), all or nothing: a record or session that cannot be added gives no slot
/// back and leaves nothing behind.
pub async fn finish_login_is_all_or_nothing(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 1,
        window_ms: MINUTE,
    };
    store.create_user(&sample_user("rr")).await.unwrap();
    let keys = [("user:rr", policy), ("ip:rr", policy)];
    let names = ["user:rr", "ip:rr"];
    let reserve = || store.lockout_reserve(&keys, 10);
    assert_eq!(reserve().await.unwrap(), [LockoutDecision::Allowed; 2]);
    assert_eq!(reserve().await.unwrap()[0], LockoutDecision::Busy);

    let first = session("rr-s1", "rr", 7_000, None);
    store
        .finish_login(Some(&first), &names, &record("rr-1", "rr", 7_000))
        .await
        .unwrap();
    assert_eq!(store.get_session("rr-s1").await.unwrap(), Some(first));
    let (records, total) = store.list_login_records("rr", 0, 10).await.unwrap();
    assert_eq!((records.len(), total), (1, 1));
    assert_eq!(records[0].id, "rr-1");
    let user = store.get_user("rr").await.unwrap().unwrap();
    assert_eq!(user.last_login_at, Some(7_000));
    // Both slots are back: the next attempt reserves both again.
    assert_eq!(reserve().await.unwrap(), [LockoutDecision::Allowed; 2]);

    // The same record id again: refused, no new session, and the slots stay reserved.
    let refused = store
        .finish_login(
            Some(&session("rr-s2", "rr", 8_000, None)),
            &names,
            &record("rr-1", "rr", 8_000),
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("rr-1")),
        "{refused:?}"
    );
    // The same session id again: refused too, naming the session.
    let refused = store
        .finish_login(
            Some(&session("rr-s1", "rr", 8_000, None)),
            &names,
            &record("rr-2", "rr", 8_000),
        )
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("rr-s1")),
        "{refused:?}"
    );
    assert_eq!(store.get_session("rr-s2").await.unwrap(), None);
    assert_eq!(reserve().await.unwrap()[0], LockoutDecision::Busy);
    let user = store.get_user("rr").await.unwrap().unwrap();
    assert_eq!(
        user.last_login_at,
        Some(7_000),
        "nothing of them was written"
    );
    assert_eq!(store.list_login_records("rr", 0, 10).await.unwrap().1, 1);

    // Without a session (a disabled account): the slots back and a failed record only.
    let failed = LoginRecord {
        success: false,
        reason: "account is disabled".to_owned(),
        ..record("rr-3", "rr", 9_000)
    };
    store.finish_login(None, &names, &failed).await.unwrap();
    assert_eq!(reserve().await.unwrap(), [LockoutDecision::Allowed; 2]);
    let (records, total) = store.list_login_records("rr", 0, 10).await.unwrap();
    assert_eq!((records[0].id.as_str(), total), ("rr-3", 2));
    let user = store.get_user("rr").await.unwrap().unwrap();
    assert_eq!(user.last_login_at, Some(7_000), "a failure is no login");
}

/// Many logins of one account from one address at once: every call takes the same two counter
/// rows, and none may wait on another in a cycle. PostgreSQL's `finish_login` and
/// `lockout_release` once locked them in the table's physical order while the reservation locked
/// them in key order, and a login rush deadlocked (a one-second stall, then an error).
pub async fn lockout_rows_of_a_login_rush_never_deadlock(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const LOGINS: usize = 60;
    let policy = LockoutPolicy {
        max_failures: 1_000,
        window_ms: MINUTE,
    };
    store.create_user(&sample_user("rush")).await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                // Keys in both orders: callers need not sort them.
                let names = if t % 2 == 0 {
                    ["user:rush", "ip:rush"]
                } else {
                    ["ip:rush", "user:rush"]
                };
                let keys = [(names[0], policy), (names[1], policy)];
                for i in 0..LOGINS {
                    let decisions = store.lockout_reserve(&keys, 10).await?;
                    assert_eq!(decisions, [LockoutDecision::Allowed; 2]);
                    if i % 3 == 2 {
                        store.lockout_release(&names).await?;
                    } else {
                        let id = format!("rush-{t}-{i}");
                        let session = session(&id, "rush", 10, None);
                        let with_session = (i % 3 == 0).then_some(&session);
                        store
                            .finish_login(with_session, &names, &record(&id, "rush", 10))
                            .await?;
                    }
                }
                StoreResult::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Every slot came back: a policy of one failure still allows the next attempt.
    let one = LockoutPolicy {
        max_failures: 1,
        ..policy
    };
    assert_eq!(
        store
            .lockout_reserve(&[("user:rush", one), ("ip:rush", one)], 10)
            .await
            .unwrap(),
        [LockoutDecision::Allowed; 2]
    );
}

/// Released reservations give their slot back; reservations in flight hold theirs.
pub async fn lockout_release_gives_slot_back(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 2,
        window_ms: 1_000,
    };
    for _ in 0..5 {
        assert_eq!(
            store.reserve_one("k", policy, 0).await.unwrap(),
            LockoutDecision::Allowed
        );
        store.release_one("k").await.unwrap();
    }
    assert_eq!(store.lockout_status("k", 0).await.unwrap(), None);

    // Two attempts in flight fill the window without locking it.
    assert_eq!(
        store.reserve_one("k", policy, 10).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(
        store.reserve_one("k", policy, 20).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(
        store.reserve_one("k", policy, 30).await.unwrap(),
        LockoutDecision::Busy
    );
    assert_eq!(
        store.lockout_status("k", 30).await.unwrap(),
        None,
        "full, but not locked"
    );
    store.release_one("k").await.unwrap();
    assert_eq!(
        store.reserve_one("k", policy, 40).await.unwrap(),
        LockoutDecision::Allowed
    );
    // One of the two in flight succeeds, the other fails: one failure, no lock.
    store.release_one("k").await.unwrap();
    assert_eq!(store.fail_one("k", policy, 50).await.unwrap(), None);
    assert_eq!(store.lockout_status("k", 50).await.unwrap(), None);
    assert_eq!(
        reserve_and_fail(&*store, "k", policy, 60).await,
        Some(1_060)
    );
    // A failure while another attempt is still in flight: the reserved slot counts, so the
    // window is full and the failure locks.
    let policy3 = LockoutPolicy {
        max_failures: 3,
        window_ms: 1_000,
    };
    assert_eq!(reserve_and_fail(&*store, "w", policy3, 0).await, None);
    assert_eq!(
        store.reserve_one("w", policy3, 1).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(
        store.reserve_one("w", policy3, 2).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(store.fail_one("w", policy3, 3).await.unwrap(), Some(1_003));

    // Releasing never goes below zero, and releasing an unknown key is fine.
    store.release_one("unknown").await.unwrap();
    assert_eq!(
        store.reserve_one("z", policy, 0).await.unwrap(),
        LockoutDecision::Allowed
    );
    for _ in 0..3 {
        store.release_one("z").await.unwrap();
    }
    assert_eq!(
        store.reserve_one("z", policy, 1).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(
        store.reserve_one("z", policy, 2).await.unwrap(),
        LockoutDecision::Allowed
    );
    assert_eq!(
        store.reserve_one("z", policy, 3).await.unwrap(),
        LockoutDecision::Busy
    );
}

/// Clearing a key unlocks it at once.
pub async fn lockout_clear(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 1,
        window_ms: MINUTE,
    };
    assert_eq!(
        reserve_and_fail(&*store, "user:alice", policy, 0).await,
        Some(MINUTE)
    );
    assert_eq!(
        store.lockout_status("user:alice", 1).await.unwrap(),
        Some(MINUTE)
    );
    store.lockout_clear("user:alice").await.unwrap();
    assert_eq!(store.lockout_status("user:alice", 1).await.unwrap(), None);
    assert_eq!(
        store.reserve_one("user:alice", policy, 1).await.unwrap(),
        LockoutDecision::Allowed
    );
    store.lockout_clear("unknown").await.unwrap();
}

/// 50 simultaneous reservations against `max_failures = 5` give exactly 5 `Allowed`.
pub async fn lockout_concurrent_reservations(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 5,
        window_ms: MINUTE,
    };
    let now = 1_000;
    let decisions = race(&store, 50, |store, _| async move {
        store.reserve_one("user:alice", policy, now).await.unwrap()
    })
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| **d == LockoutDecision::Allowed)
        .count();
    assert_eq!(allowed, 5, "{decisions:?}");
    assert!(
        decisions
            .iter()
            .all(|d| matches!(d, LockoutDecision::Allowed | LockoutDecision::Busy)),
        "full with attempts in flight is busy, not locked: {decisions:?}"
    );

    // The five attempts fail at once: the key ends up locked.
    let locks = race(&store, 5, |store, i| async move {
        store
            .fail_one("user:alice", policy, now + i as i64)
            .await
            .unwrap()
    })
    .await;
    assert!(locks.iter().any(Option::is_some), "{locks:?}");
    assert!(
        store
            .lockout_status("user:alice", now + 5)
            .await
            .unwrap()
            .is_some()
    );
}

/// Pruning drops counters whose window is over and that are not locked.
pub async fn lockout_prune(store: Arc<dyn Store>) {
    let policy = LockoutPolicy {
        max_failures: 2,
        window_ms: 1_000,
    };
    assert_eq!(reserve_and_fail(&*store, "a", policy, 0).await, None);
    assert_eq!(reserve_and_fail(&*store, "b", policy, 0).await, None);
    assert_eq!(
        reserve_and_fail(&*store, "b", policy, 500).await,
        Some(1_500)
    );
    assert_eq!(
        store.reserve_one("c", policy, 900).await.unwrap(),
        LockoutDecision::Allowed
    );

    assert_eq!(store.prune_lockouts(999).await.unwrap(), 0);
    assert_eq!(store.prune_lockouts(1_000).await.unwrap(), 1);
    assert_eq!(
        store.lockout_status("b", 1_000).await.unwrap(),
        Some(1_500),
        "a locked key is kept"
    );
    assert_eq!(store.prune_lockouts(1_500).await.unwrap(), 1);
    assert_eq!(store.lockout_status("b", 1_000).await.unwrap(), None);
    assert_eq!(store.prune_lockouts(1_900).await.unwrap(), 1);
    assert_eq!(store.prune_lockouts(i64::MAX).await.unwrap(), 0);
    assert_eq!(
        reserve_and_fail(&*store, "a", policy, 2_000).await,
        None,
        "a pruned key starts afresh"
    );
}

/// A job lease belongs to one holder until it expires; the holder renews it; another takes it
/// only once expired.
pub async fn job_lease_is_exclusive_until_expiry(store: Arc<dyn Store>) {
    assert!(store.try_lease("retention", "a", 0, MINUTE).await.unwrap());
    assert!(
        !store
            .try_lease("retention", "b", 1_000, MINUTE)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease("other-job", "b", 1_000, MINUTE)
            .await
            .unwrap(),
        "per name"
    );
    assert!(
        store
            .try_lease("retention", "a", 30_000, MINUTE)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !store
            .try_lease("retention", "b", MINUTE + 1_000, MINUTE)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lease("retention", "b", 30_000 + MINUTE, MINUTE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease("retention", "a", 30_000 + MINUTE + 1, MINUTE)
            .await
            .unwrap()
    );
    let mut winners = 0;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.try_lease("race", &format!("h{i}"), 0, MINUTE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "concurrent takers: exactly one wins");
}

/// Several keys in one call (a login reserves its address's and its account's slot together):
/// reserved all or none, failed and released together, each under its own policy.
pub async fn lockout_keys_all_or_none(store: Arc<dyn Store>) {
    let two = LockoutPolicy {
        max_failures: 2,
        window_ms: MINUTE,
    };
    let three = LockoutPolicy {
        max_failures: 3,
        window_ms: MINUTE,
    };
    let both = [("user:a", two), ("ip:b", three)];
    let allowed = vec![LockoutDecision::Allowed, LockoutDecision::Allowed];
    assert_eq!(store.lockout_reserve(&both, 1_000).await.unwrap(), allowed);
    assert_eq!(
        store.lockout_fail(&both, 1_000).await.unwrap(),
        vec![None, None]
    );
    assert_eq!(store.lockout_reserve(&both, 2_000).await.unwrap(), allowed);
    // The second failure locks `user:a` (two allowed), not `ip:b` (three allowed).
    assert_eq!(
        store.lockout_fail(&both, 2_000).await.unwrap(),
        vec![Some(2_000 + MINUTE), None]
    );
    // Refused for one key: the other is not reserved either.
    assert_eq!(
        store.lockout_reserve(&both, 3_000).await.unwrap(),
        vec![
            LockoutDecision::Locked {
                until: 2_000 + MINUTE
            },
            LockoutDecision::Allowed
        ]
    );
    assert_eq!(
        store.reserve_one("ip:b", three, 3_000).await.unwrap(),
        LockoutDecision::Allowed,
        "the refused call must not have taken the third slot of ip:b"
    );
    assert_eq!(
        store.reserve_one("ip:b", three, 3_000).await.unwrap(),
        LockoutDecision::Busy
    );
    store.release_one("ip:b").await.unwrap();

    // Released together: both slots come back.
    let fresh = [("user:c", two), ("ip:d", two)];
    for _ in 0..2 {
        assert_eq!(store.lockout_reserve(&fresh, 4_000).await.unwrap(), allowed);
    }
    assert_eq!(
        store.lockout_reserve(&fresh, 4_000).await.unwrap(),
        vec![LockoutDecision::Busy, LockoutDecision::Busy]
    );
    store.lockout_release(&["user:c", "ip:d"]).await.unwrap();
    assert_eq!(store.lockout_reserve(&fresh, 4_000).await.unwrap(), allowed);
    assert_eq!(store.lockout_status("user:c", 4_000).await.unwrap(), None);

    // A key given twice is refused, and changes nothing.
    let twice = [("user:e", two), ("user:e", two)];
    assert!(matches!(
        store.lockout_reserve(&twice, 5_000).await,
        Err(crate::StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.lockout_fail(&twice, 5_000).await,
        Err(crate::StoreError::Conflict(_))
    ));
    assert_eq!(
        reserve_and_fail(&*store, "user:e", two, 5_000).await,
        None,
        "the refused calls must not have counted"
    );
}
