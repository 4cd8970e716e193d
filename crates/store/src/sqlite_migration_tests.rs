//! Migration 0008 (login records and lockouts stored in key order) on a database that already
//! holds rows: every row is kept, the tables are WITHOUT ROWID, and the store reads and writes
//! them as before (sessions, untouched, too).

use std::str::FromStr as _;

use sqlx::Row as _;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

use super::{MIGRATIONS, SqliteStore};
use crate::common;
use crate::{
    LockoutDecision, LockoutPolicy, LockoutStore as _, LoginRecord, LoginRecordStore as _,
    SessionStore as _, Store as _,
};

/// The rows written at version 7, as plain SQL.
const ROWS_AT_VERSION_7: &str = "
INSERT INTO users (name, uid, state, created_at) VALUES ('alice', 'u-alice', 'Active', 1);
INSERT INTO login_records (id, user_name, at, login_type, provider, source_ip, user_agent, success, reason)
VALUES ('r1', 'alice', 100, 'Token', '', '10.0.0.1', 'curl', 1, 'authenticated successfully'),
       ('r2', 'bob',   150, 'Token', 'ldap', '10.0.0.2', 'kubectl', 0, 'incorrect password'),
       ('r3', 'alice', 300, 'Token', '', '10.0.0.1', 'curl', 1, 'authenticated successfully'),
       ('r4', 'alice', 200, 'Basic', '', '10.0.0.3', 'ua', 0, 'incorrect password');
INSERT INTO sessions (id, user_name, client_id, provider, created_at, expires_at, last_seen_at,
                      refresh_generation, revoked_at, source_ip, user_agent, upstream_groups)
VALUES ('s1', 'alice', 'console', '', 10, 9000000000000, 20, 3, NULL, '10.0.0.1', 'curl', '[\"devs\"]'),
       ('s2', 'alice', '', 'github', 11, NULL, 11, 0, 12, '10.0.0.2', 'ua', '[]');
INSERT INTO lockouts (lock_key, window_start, failures, locked_until, expires_at)
VALUES ('user:alice', 1000, 3, 9000000000000, 9000000000000);
";

#[tokio::test]
async fn migration_8_keeps_every_row_and_stores_the_tables_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgrade.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let mut conn = options.connect().await.unwrap();
    assert_eq!(MIGRATIONS[7].0, 8);
    common::migrator(&MIGRATIONS[..7])
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(ROWS_AT_VERSION_7)
        .execute(&mut conn)
        .await
        .unwrap();
    // What the start-up log announces before migrating: only 0008.
    assert_eq!(
        common::pending_migrations(MIGRATIONS, &mut conn).await,
        [(8, "clustered_tables")]
    );
    conn.close().await.unwrap();

    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    let mut conn = options.connect().await.unwrap();
    assert_eq!(common::pending_migrations(MIGRATIONS, &mut conn).await, []);
    conn.close().await.unwrap();
    let tables: Vec<(String, String)> = sqlx::query(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'table' \
         AND name IN ('login_records', 'lockouts') ORDER BY name",
    )
    .fetch_all(&store.reader)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert_eq!(tables.len(), 2, "{tables:?}");
    for (name, sql) in &tables {
        assert!(sql.ends_with("WITHOUT ROWID"), "{name}: {sql}");
    }

    let (records, total) = store.list_login_records("alice", 0, 10).await.unwrap();
    assert_eq!(total, 3);
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r3", "r4", "r1"]);
    assert_eq!(
        records[1],
        LoginRecord {
            id: "r4".into(),
            user: "alice".into(),
            at: 200,
            login_type: "Basic".into(),
            provider: String::new(),
            source_ip: "10.0.0.3".into(),
            user_agent: "ua".into(),
            success: false,
            reason: "incorrect password".into(),
        }
    );
    let (bob, total) = store.list_login_records("bob", 0, 10).await.unwrap();
    assert_eq!((bob[0].provider.as_str(), total), ("ldap", 1));
    // Record ids stay unique across users and times.
    let duplicate = LoginRecord {
        user: "carol".into(),
        at: 999,
        ..records[0].clone()
    };
    assert!(store.add_login_record(&duplicate).await.is_err());

    let s1 = store.get_session("s1").await.unwrap().unwrap();
    assert_eq!(
        (
            s1.refresh_generation,
            s1.upstream_groups.clone(),
            s1.last_seen_at
        ),
        (3, vec!["devs".to_string()], 20)
    );
    let s2 = store.get_session("s2").await.unwrap().unwrap();
    assert_eq!((s2.revoked_at, s2.expires_at), (Some(12), None));
    let live = store.list_active_sessions("alice", 50).await.unwrap();
    assert_eq!(
        live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s1"]
    );

    // The stored lock still holds.
    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: 60_000,
    };
    let decisions = store
        .lockout_reserve(&[("user:alice", policy)], 2_000)
        .await
        .unwrap();
    assert_eq!(
        decisions,
        [LockoutDecision::Locked {
            until: 9_000_000_000_000
        }]
    );
    store.close().await;
}

#[tokio::test]
async fn a_new_database_has_every_migration_pending() {
    let mut conn = SqliteConnectOptions::from_str("sqlite::memory:")
        .unwrap()
        .connect()
        .await
        .unwrap();
    let pending = common::pending_migrations(MIGRATIONS, &mut conn).await;
    let all: Vec<(i64, &str)> = MIGRATIONS.iter().map(|&(v, d, _)| (v, d)).collect();
    assert_eq!(pending, all);
}
