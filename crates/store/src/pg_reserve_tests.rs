//! The reservation function of migration 0008 against the Rust rules it must agree with
//! (`common::lockout_reserve_all`), over every combination of stored states of two keys, on the
//! local PostgreSQL (`PORTCULLIS_TEST_POSTGRES` or `postgres://postgres@127.0.0.1:5432/test`).

use sqlx::{Connection as _, Row as _};

use super::PostgresStore;
use crate::common::{self, Counter};
use crate::{LockoutPolicy, LockoutStore as _, Store as _};

fn url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The time of every case.
const NOW: i64 = 1_000_000;

/// The policies of the second key (the first always has the first).
const POLICIES: [LockoutPolicy; 2] = [
    LockoutPolicy {
        max_failures: 3,
        window_ms: 1_000,
    },
    // Out of range: clamped to one failure and one millisecond, as the Rust rules do.
    LockoutPolicy {
        max_failures: 0,
        window_ms: 0,
    },
];

/// Stored states worth telling apart: none, a window under way with room or full, a window
/// over, an active lock, a lock that has just run out, and one that ends exactly now.
fn states() -> Vec<Option<Counter>> {
    let counter = |window_start, failures, locked_until| {
        Some(Counter {
            window_start,
            failures,
            locked_until,
        })
    };
    vec![
        None,
        counter(NOW - 500, 0, None),
        counter(NOW - 500, 2, None),
        counter(NOW - 500, 3, None),
        counter(NOW - 1_000, 3, None),
        counter(NOW, 0, None),
        counter(NOW - 500, 3, Some(NOW + 100)),
        counter(NOW - 5_000, 3, Some(NOW + 100)),
        counter(NOW - 500, 3, Some(NOW - 1)),
        counter(NOW - 500, 3, Some(NOW)),
    ]
}

/// Replaces the stored lockout rows, through the executor `$exec`, by the states `$before` of the
/// keys `$keys` (`None`: no row).
macro_rules! store_states {
    ($exec:expr, $keys:expr, $before:expr) => {{
        sqlx::query("DELETE FROM lockouts")
            .execute($exec)
            .await
            .unwrap();
        for ((key, policy), counter) in $keys.iter().zip($before) {
            if let Some(c) = counter {
                sqlx::query(
                    "INSERT INTO lockouts \
                     (lock_key, window_start, failures, locked_until, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key)
                .bind(c.window_start)
                .bind(c.failures)
                .bind(c.locked_until)
                .bind(c.expires_at(*policy))
                .execute($exec)
                .await
                .unwrap();
            }
        }
    }};
}

async fn stored(store: &PostgresStore, key: &str) -> Option<(Counter, i64)> {
    sqlx::query(
        "SELECT window_start, failures, locked_until, expires_at FROM lockouts WHERE lock_key = $1",
    )
    .bind(key)
    .fetch_optional(&store.pool)
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
async fn the_reservation_function_follows_the_rust_rules_in_every_state() {
    let schema = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::open_with_schema(&url(), &schema)
        .await
        .expect("this test needs the local PostgreSQL");
    let mut cases = 0;
    for policy_of_second in POLICIES {
        let keys = [("ip:a", POLICIES[0]), ("user:b", policy_of_second)];
        for first in states() {
            for second in states() {
                let before = [first, second];
                store_states!(&store.pool, keys, before);
                let (decisions, changes) = common::lockout_reserve_all(&before, &keys, NOW);
                let case = format!("{before:?} with {keys:?}");
                let answered = store.lockout_reserve(&keys, NOW).await.unwrap();
                assert_eq!(answered, decisions, "{case}");
                for (i, (key, policy)) in keys.iter().enumerate() {
                    // A key without a row gets a fresh one, which reads exactly like none.
                    let fresh = Counter {
                        window_start: NOW,
                        failures: 0,
                        locked_until: None,
                    };
                    let expected = changes
                        .iter()
                        .find(|(index, _)| *index == i)
                        .map(|(_, c)| *c)
                        .or(before[i])
                        .unwrap_or(fresh);
                    let expected = (expected, expected.expires_at(*policy));
                    assert_eq!(stored(&store, key).await, Some(expected), "{key} in {case}");
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 200);
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
