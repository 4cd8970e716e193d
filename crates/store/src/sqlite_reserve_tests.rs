//! The one-statement reservation (`RESERVE_ALL_OR_NONE`) against the Rust rules it must agree
//! with (`common::lockout_reserve_all`), over every combination of stored states of two keys.

use sqlx::Row as _;

use super::{RESERVE_ALL_OR_NONE, SqliteStore, reservation_json};
use crate::common::{self, Counter};
use crate::reserve_cases::{NOW, POLICIES, states, store_states};
use crate::{LockoutDecision, Store as _};

async fn stored(store: &SqliteStore, key: &str) -> Option<(Counter, i64)> {
    sqlx::query(
        "SELECT window_start, failures, locked_until, expires_at FROM lockouts WHERE lock_key = $1",
    )
    .bind(key)
    .fetch_optional(&store.reader)
    .await
    .unwrap()
    .map(|row| {
        let counter = Counter {
            window_start: row.get(0),
            failures: row.get(1),
            locked_until: row.get(2),
        };
        (counter, row.get(3))
    })
}

#[tokio::test]
async fn the_one_statement_reservation_follows_the_rust_rules_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reserve.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let keys = [("ip:a", POLICIES[0]), ("user:b", POLICIES[1])];
    let mut cases = 0;
    for policy_of_second in POLICIES {
        let keys = [keys[0], (keys[1].0, policy_of_second)];
        for first in states() {
            for second in states() {
                let before = [first, second];
                store_states!(&store.writer, keys, before);
                let (decisions, changes) = common::lockout_reserve_all(&before, &keys, NOW);
                let reserved: Vec<String> = sqlx::query_scalar(RESERVE_ALL_OR_NONE)
                    .bind(reservation_json(&keys).unwrap())
                    .bind(NOW)
                    .fetch_all(&store.writer)
                    .await
                    .unwrap();
                let allowed = decisions.iter().all(|d| *d == LockoutDecision::Allowed);
                let case = format!("{before:?} with {keys:?}: {decisions:?}");
                if allowed {
                    assert_eq!(reserved, ["ip:a", "user:b"], "{case}");
                    assert_eq!(changes.len(), 2, "{case}");
                } else {
                    assert!(reserved.is_empty(), "{case}");
                    assert!(changes.is_empty(), "{case}");
                }
                for (i, (key, policy)) in keys.iter().enumerate() {
                    let expected = changes
                        .iter()
                        .find(|(index, _)| *index == i)
                        .map(|(_, c)| *c)
                        .or(before[i])
                        .map(|c| (c, c.expires_at(*policy)));
                    assert_eq!(stored(&store, key).await, expected, "{key} in {case}");
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 200);
    store.close().await;
}
