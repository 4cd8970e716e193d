//! The conformance suite and PostgreSQL-specific checks against a real server.
//!
//! Uses `postgres://postgres@127.0.0.1:5432/test`, or the URL in `PORTCULLIS_TEST_POSTGRES`.
//! Each test works in a fresh schema that it drops at the end. When the server is unreachable
//! the tests fail (they do not skip): CI runs PostgreSQL.

use std::future::Future;
use std::sync::Arc;

use portcullis_store::postgres::PostgresStore;
use portcullis_store::{Store, UserStore, redact_url};
use sqlx::Connection;

fn url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn fresh_schema() -> String {
    format!("portcullis_test_{}", uuid::Uuid::new_v4().simple())
}

async fn open(schema: &str) -> PostgresStore {
    let url = url();
    PostgresStore::open_with_schema(&url, schema).await.unwrap_or_else(|e| {
        panic!(
            "these tests need PostgreSQL at {} (set PORTCULLIS_TEST_POSTGRES to use another server): {e}",
            redact_url(&url)
        )
    })
}

async fn drop_schema(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Runs one conformance case in a fresh schema, then drops the schema even when the case panics.
async fn harness<F, Fut>(name: &str, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = fresh_schema();
    let store = Arc::new(open(&schema).await.with_prune_batch(3));
    let outcome = tokio::spawn(case(store.clone())).await;
    store.close().await;
    drop_schema(&schema).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("case {name} did not finish: {e}"),
        }
    }
}

portcullis_store::conformance_tests!(harness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let schema = fresh_schema();
    // Create the schema first: CREATE SCHEMA IF NOT EXISTS itself can race on the catalog.
    open(&schema).await.close().await;
    let (a, b, c) = tokio::join!(open(&schema), open(&schema), open(&schema));
    a.create_user(&portcullis_store::conformance::sample_user("alice"))
        .await
        .unwrap();
    assert_eq!(c.get_user("alice").await.unwrap().unwrap().name, "alice");
    for store in [a, b, c] {
        store.close().await;
    }
    drop_schema(&schema).await;
}

#[tokio::test]
async fn open_dispatches_postgres_urls() {
    let schema = fresh_schema();
    open(&schema).await.close().await;
    // `options=-c search_path=...` in the URL reaches the server as a startup option.
    let with_path = format!("{}?options=-c%20search_path%3D{schema}", url());
    let store = portcullis_store::open(&with_path).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    store
        .create_user(&portcullis_store::conformance::sample_user("bob"))
        .await
        .unwrap();
    store.close().await;
    let direct = open(&schema).await;
    assert_eq!(direct.count_users().await.unwrap(), 1);
    direct.close().await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    for bad in [
        "",
        "Upper",
        "1abc",
        "a-b",
        "a\"; DROP TABLE x; --",
        &"x".repeat(64),
    ] {
        match PostgresStore::open_with_schema(&url(), bad).await {
            Err(portcullis_store::StoreError::InvalidUrl(_)) => {}
            Err(other) => panic!("{bad:?}: expected InvalidUrl, got {other:?}"),
            Ok(_) => panic!("{bad:?}: expected InvalidUrl, got a store"),
        }
    }
}

/// Revoking a user's live sessions can read only the live ones (see the SQLite test of the same
/// name). Sequential scans are switched off for the check: on an empty table the planner would
/// rightly prefer one.
#[tokio::test]
async fn a_users_live_sessions_are_found_through_the_partial_index() {
    let schema = fresh_schema();
    open(&schema).await.close().await;
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET search_path = \"{schema}\"; SET enable_seqscan = off"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN UPDATE sessions SET revoked_at = 1 \
         WHERE user_name = 'alice' AND revoked_at IS NULL AND (NULL::text IS NULL OR id <> 'x')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    drop_schema(&schema).await;
    assert!(
        plan.iter()
            .any(|line| line.contains("sessions_live_user_idx")),
        "{plan:?}"
    );
}
