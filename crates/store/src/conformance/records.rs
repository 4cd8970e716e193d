//! Conformance cases for login records.

use std::sync::Arc;

use super::{conflict, record, record_ids};
use crate::{LoginRecord, Store};

/// Records list newest first (ties by id, newest id first) with the user's total.
pub async fn login_records_order_and_total(store: Arc<dyn Store>) {
    let failed = LoginRecord {
        success: false,
        reason: "invalid credentials".into(),
        provider: "ldap".into(),
        login_type: "Basic".into(),
        ..record("r3", "alice", 200)
    };
    for r in [
        record("r1", "alice", 100),
        record("r2", "alice", 300),
        failed.clone(),
        record("r4", "alice", 300),
        record("b1", "bob", 150),
    ] {
        store.add_login_record(&r).await.unwrap();
    }
    assert_eq!(record_ids(&*store, "alice").await, ["r4", "r2", "r3", "r1"]);
    let (page, total) = store.list_login_records("alice", 1, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r3"]
    );
    assert_eq!(page[1], failed);
    assert_eq!(total, 4);
    assert_eq!(
        store.list_login_records("alice", 10, 10).await.unwrap(),
        (Vec::new(), 4)
    );
    assert_eq!(
        store.list_login_records("nobody", 0, 10).await.unwrap(),
        (Vec::new(), 0)
    );
    assert_eq!(store.list_login_records("bob", 0, 10).await.unwrap().1, 1);
    conflict(store.add_login_record(&record("r1", "alice", 999)).await);
}

/// Pruning by age deletes records strictly older than the cut-off, for every user.
pub async fn login_records_prune_by_age(store: Arc<dyn Store>) {
    for at in (100..=1_000).step_by(100) {
        store
            .add_login_record(&record(&format!("a{at:05}"), "alice", at))
            .await
            .unwrap();
    }
    store
        .add_login_record(&record("b1", "bob", 50))
        .await
        .unwrap();
    store
        .add_login_record(&record("b2", "bob", 150))
        .await
        .unwrap();

    assert_eq!(store.prune_login_records(500, 0).await.unwrap(), 6);
    assert_eq!(
        record_ids(&*store, "alice").await,
        ["a01000", "a00900", "a00800", "a00700", "a00600", "a00500"]
    );
    assert!(record_ids(&*store, "bob").await.is_empty());
    assert_eq!(store.prune_login_records(500, 0).await.unwrap(), 0);
    assert_eq!(
        store.prune_login_records(i64::MIN, 0).await.unwrap(),
        0,
        "no limits, nothing to do"
    );
}

/// Pruning by count keeps each user's newest records (ties broken by id), together with the age rule.
pub async fn login_records_prune_by_count(store: Arc<dyn Store>) {
    // alice: a01..a10 at 1..=9, with a09 and a10 both at 9 (a10 is the newer by id).
    for i in 1..=10 {
        store
            .add_login_record(&record(&format!("a{i:02}"), "alice", i.min(9)))
            .await
            .unwrap();
    }
    for i in 1..=3 {
        store
            .add_login_record(&record(&format!("b{i}"), "bob", 100 + i))
            .await
            .unwrap();
    }
    store
        .add_login_record(&record("c1", "carol", 1))
        .await
        .unwrap();

    assert_eq!(store.prune_login_records(i64::MIN, 3).await.unwrap(), 7);
    assert_eq!(record_ids(&*store, "alice").await, ["a10", "a09", "a08"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b3", "b2", "b1"]);
    assert_eq!(record_ids(&*store, "carol").await, ["c1"]);

    assert_eq!(store.prune_login_records(i64::MIN, 1).await.unwrap(), 4);
    assert_eq!(record_ids(&*store, "alice").await, ["a10"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b3"]);

    // Both rules: age first (carol's c1 at 1 goes), then the count.
    store
        .add_login_record(&record("b4", "bob", 104))
        .await
        .unwrap();
    assert_eq!(store.prune_login_records(5, 1).await.unwrap(), 2);
    assert_eq!(record_ids(&*store, "alice").await, ["a10"]);
    assert_eq!(record_ids(&*store, "bob").await, ["b4"]);
    assert!(record_ids(&*store, "carol").await.is_empty());
}

/// Pruning by count works across many users (more than one page of users and one batch of rows).
pub async fn login_records_prune_many_users(store: Arc<dyn Store>) {
    for u in 0..12 {
        for i in 0..4 {
            store
                .add_login_record(&record(&format!("u{u:02}-{i}"), &format!("user{u:02}"), i))
                .await
                .unwrap();
        }
    }
    store
        .add_login_record(&record("empty-name", "", 1))
        .await
        .unwrap();
    store
        .add_login_record(&record("empty-name-2", "", 2))
        .await
        .unwrap();
    assert_eq!(
        store.prune_login_records(i64::MIN, 1).await.unwrap(),
        12 * 3 + 1
    );
    for u in 0..12 {
        assert_eq!(
            record_ids(&*store, &format!("user{u:02}")).await,
            [format!("u{u:02}-3")]
        );
    }
    assert_eq!(record_ids(&*store, "").await, ["empty-name-2"]);
}

/// A request cancelled at any await of a store call (a client that gives up) must not leave a
/// pooled connection inside its transaction, or an aborted one, for the next caller: reads of the
/// records page (a read-only transaction) cancelled at 300 different moments, each followed by a
/// write. (PostgreSQL failed this in most runs with sqlx's own transactions, even with its ping
/// before handing out a connection: "cannot execute INSERT in a read-only transaction", then
/// "current transaction is aborted". See `PgTx` in `pg_conns.rs`.)
pub async fn cancelled_calls_leave_no_connection_in_a_transaction(store: Arc<dyn Store>) {
    for i in 0..200 {
        store
            .add_login_record(&LoginRecord {
                success: false,
                ..record(&format!("r{i}"), "alice", i)
            })
            .await
            .unwrap();
    }
    let mut failures = Vec::new();
    for round in 0..300u64 {
        let s = store.clone();
        let cancel_after = std::time::Duration::from_micros((round * 37) % 3_000);
        let _ = tokio::time::timeout(cancel_after, async move {
            s.list_login_records("alice", 0, 10).await
        })
        .await;
        let write = LoginRecord {
            success: false,
            ..record(&format!("w{round}"), "bob", 1)
        };
        if let Err(e) = store.add_login_record(&write).await {
            failures.push(format!("round {round}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let (_, total) = store.list_login_records("bob", 0, 1).await.unwrap();
    assert_eq!(total, 300);
}

/// Many more concurrent calls than the store has connections, mixing single statements and
/// transactions (read-only and writing), with a third of them cancelled at different moments:
/// none waits out the pool's timeout for a connection that sits unused, and all the others
/// succeed. (The PostgreSQL store keeps finished connections in a list of its own in front of
/// sqlx's pool; a caller that waited in sqlx's pool for one of those would time out.)
pub async fn concurrent_calls_share_the_connections(store: Arc<dyn Store>) {
    let policy = crate::LockoutPolicy {
        max_failures: 5,
        window_ms: 60_000,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300u64 {
        let s = store.clone();
        tasks.spawn(async move {
            let work = async {
                let key = format!("user:c{i}");
                s.lockout_reserve(&[(key.as_str(), policy)], 1_000).await?;
                s.get_user(&format!("c{i}")).await?;
                s.add_login_record(&record(&format!("c{i}"), "carol", 1))
                    .await?;
                s.list_login_records("carol", 0, 5).await?;
                s.lockout_release(&[key.as_str()]).await
            };
            if i % 3 == 0 {
                let cancel_after = std::time::Duration::from_micros((i * 53) % 4_000);
                let _ = tokio::time::timeout(cancel_after, work).await;
                Ok(())
            } else {
                work.await.map_err(|e| format!("call {i}: {e}"))
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("task") {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let (_, total) = store.list_login_records("carol", 0, 1).await.unwrap();
    assert!((200..=300).contains(&total), "{total} records");
}
