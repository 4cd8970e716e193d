//! The conformance suite and SQLite-specific checks against real database files in a temp dir.

use std::future::Future;
use std::sync::Arc;

use portcullis_store::sqlite::SqliteStore;
use portcullis_store::{LoginRecordStore, Store, StoreError, UserStore};

/// Runs one conformance case on a fresh database file, in a directory that does not exist yet.
/// Prune batches are tiny so the batching loops run many times.
async fn harness<F, Fut>(_name: &str, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/portcullis.db");
    let store = Arc::new(
        SqliteStore::open(path.to_str().unwrap())
            .await
            .unwrap()
            .with_prune_batch(3),
    );
    case(store.clone()).await;
    store.close().await;
}

portcullis_store::conformance_tests!(harness);

async fn journal_mode(path: &std::path::Path) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    mode
}

#[tokio::test]
async fn file_is_created_in_wal_mode_and_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/portcullis.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store
        .create_user(&portcullis_store::conformance::sample_user("alice"))
        .await
        .unwrap();
    store.close().await;
    assert!(path.exists());
    assert_eq!(journal_mode(&path).await, "wal");

    // Reopening runs the (already applied) migrations again without harm.
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    assert_eq!(
        store.get_user("alice").await.unwrap().unwrap().name,
        "alice"
    );
    store.close().await;
}

#[tokio::test]
async fn open_dispatches_sqlite_urls() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("sqlite://{}/one.db", dir.path().display()),
        format!("sqlite:{}/two.db", dir.path().display()),
    ] {
        let store = portcullis_store::open(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.ping().await.unwrap();
        store.close().await;
    }
    assert!(dir.path().join("one.db").exists() && dir.path().join("two.db").exists());
    match portcullis_store::open("mysql://root:hunter2@db/portcullis").await {
        Err(StoreError::InvalidUrl(message)) => {
            assert!(
                message.contains("mysql://root:***@db/portcullis"),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
        }
        Err(other) => panic!("expected InvalidUrl, got {other:?}"),
        Ok(_) => panic!("expected InvalidUrl, got a store"),
    }
}

#[tokio::test]
async fn in_memory_database_works() {
    let store = SqliteStore::open(":memory:").await.unwrap();
    store
        .create_user(&portcullis_store::conformance::sample_user("alice"))
        .await
        .unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    store.close().await;
}

#[tokio::test]
async fn unusable_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("portcullis.db");
    match SqliteStore::open(path.to_str().unwrap()).await {
        Err(StoreError::CreateDir { path: reported, .. }) => assert_eq!(reported, file),
        Err(other) => panic!("expected CreateDir, got {other:?}"),
        Ok(_) => panic!("expected CreateDir, got a store"),
    }
}

/// Many concurrent writers on one file: writes queue for the single writer connection instead of
/// failing with SQLITE_BUSY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_do_not_fail_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(dir.path().join("busy.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..25 {
                let record = portcullis_store::LoginRecord {
                    id: format!("{t}-{i}"),
                    user: format!("user{t}"),
                    at: i,
                    login_type: "Token".into(),
                    provider: String::new(),
                    source_ip: "10.0.0.1".into(),
                    user_agent: "test".into(),
                    success: true,
                    reason: "authenticated successfully".into(),
                };
                store.add_login_record(&record).await.unwrap();
                store
                    .list_login_records(&format!("user{t}"), 0, 5)
                    .await
                    .unwrap();
            }
        });
    }
    tasks.join_all().await;
    assert_eq!(store.list_login_records("user3", 0, 1).await.unwrap().1, 25);
    store.close().await;
}

/// Revoking a user's live sessions reads only the live ones: revoked sessions stay until they
/// expire, and with `multipleLogin: false` every login revokes the others, so a scan over all of
/// a user's sessions made each login slower than the one before.
#[tokio::test]
async fn a_users_live_sessions_are_found_through_the_partial_index() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN UPDATE sessions SET revoked_at = 1 \
         WHERE user_name = 'alice' AND revoked_at IS NULL AND (NULL IS NULL OR id <> 'x')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert!(
        plan.iter()
            .any(|(.., detail)| detail.contains("USING INDEX sessions_live_user_idx")),
        "{plan:?}"
    );
}
