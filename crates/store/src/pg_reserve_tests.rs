//! The reservation function of migration 0008 against the Rust rules it must agree with
//! (`common::lockout_reserve_all`), over every combination of stored states of two keys, on the
//! local PostgreSQL (`PORTCULLIS_TEST_POSTGRES` or `postgres://postgres@127.0.0.1:5432/test`).

use sqlx::{Connection as _, Row as _};

use super::PostgresStore;
use crate::common::{self, Counter};
use crate::reserve_cases::{NOW, POLICIES, states, store_states};
use crate::{LockoutStore as _, Store as _};

fn url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
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
