//! SQLite backend: the embedded default for a single replica.
//!
//! Design: SQLite allows one writer at a time, so every write goes through a pool of exactly one
//! connection and every write transaction starts with `BEGIN IMMEDIATE`. Writers therefore queue in
//! the pool instead of failing with `SQLITE_BUSY`, and a read-then-write transaction (lockout
//! counters, user updates) can never be overtaken between its read and its write. Reads use a
//! separate pool of `query_only` connections which, thanks to WAL, never wait for the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite};

use crate::sqlite_conns::{SqliteConns, SqliteTx, in_one_transaction};

use crate::common::{
    self, Counter, MigrationFile, PRUNE_USER_PAGE, link_columns, record_columns, session_columns,
    session_with_user_select, user_columns,
};
use crate::oidc::{bind_grant, grant_columns};
use crate::{
    IdentityLink, IdentityStore, LockoutDecision, LockoutPolicy, LockoutStore, LoginRecord,
    LoginRecordStore, OidcGrant, Revocation, Session, SessionStore, Store, StoreError, StoreResult,
    UnixMillis, User, UserStore, UserUpdate,
};

/// The embedded migrations, in order (checked against `migrations/sqlite` by a test).
pub(crate) const MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "federation",
        include_str!("../migrations/sqlite/0002_federation.sql"),
    ),
    (
        3,
        "oidc",
        include_str!("../migrations/sqlite/0003_oidc.sql"),
    ),
    (
        4,
        "upstream_groups",
        include_str!("../migrations/sqlite/0004_upstream_groups.sql"),
    ),
    (
        5,
        "job_leases",
        include_str!("../migrations/sqlite/0005_job_leases.sql"),
    ),
    (
        6,
        "upstream_email_verified",
        include_str!("../migrations/sqlite/0006_upstream_email_verified.sql"),
    ),
    (
        7,
        "live_sessions_index",
        include_str!("../migrations/sqlite/0007_live_sessions_index.sql"),
    ),
    (
        8,
        "clustered_tables",
        include_str!("../migrations/sqlite/0008_clustered_tables.sql"),
    ),
];

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a free connection (writers queue for the one writer) before
/// failing with a timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Read connections; WAL lets them all read while the writer writes.
const READERS: u32 = 4;

/// Rows deleted per statement by the prune calls. Each statement holds the one writer
/// connection and SQLite's write lock, which every login needs too. In the scale benchmark
/// (1,000,000 users, a retention run over a million old records), logins during the job went
/// at 0.06 of their rate after it with 10,000-row statements (PostgreSQL's size), at 0.10-0.41
/// with 1,000-row ones, and at 0.65 with 100-row ones, the job taking about as long
/// (docs/performance.md, "Scale").
const PRUNE_BATCH_SQLITE: i64 = 100;

/// A SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: all writes queue here.
    pub(crate) writer: SqliteConns,
    /// `query_only` connections for plain reads.
    pub(crate) reader: SqliteConns,
    prune_batch: i64,
    /// The lockout slots of the attempts in flight (see `sqlite_lockout.rs`), shared by clones.
    in_flight: std::sync::Arc<lockout::InFlight>,
}

impl SqliteStore {
    /// Runs the pending migrations on a connection of their own that does not log slow
    /// statements ([`common::run_migrations`]).
    async fn migrate(options: &SqliteConnectOptions) -> StoreResult<()> {
        let mut conn = options
            .clone()
            .log_slow_statements(log::LevelFilter::Off, Duration::ZERO)
            .connect()
            .await?;
        common::run_migrations(MIGRATIONS, &mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Opens (creating it and its directory if missing) the database file at `path`, in WAL mode with
    /// `synchronous=NORMAL`, foreign keys on and a 5 s busy timeout, and runs the migrations.
    /// `:memory:` gives a private in-memory database (one connection), for tests.
    pub async fn open(path: &str) -> StoreResult<Self> {
        if path.is_empty() {
            return Err(StoreError::InvalidUrl(
                "the SQLite database path is empty".into(),
            ));
        }
        if path == ":memory:" {
            let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
            // One connection that never closes: the database lives as long as it does.
            let mut conn = options.connect().await?;
            common::migrator(MIGRATIONS).run(&mut conn).await?;
            let pool = SqliteConns::in_memory(conn, options, ACQUIRE_TIMEOUT);
            return Ok(SqliteStore {
                writer: pool.clone(),
                reader: pool,
                prune_batch: PRUNE_BATCH_SQLITE,
                in_flight: Default::default(),
            });
        }

        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        // The writer is opened first: it creates the file and switches it to WAL (a persistent
        // setting) before any reader connects.
        let writer_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        Self::migrate(&writer_options).await?;
        let writer = SqliteConns::new(
            writer_options.connect().await?,
            writer_options,
            1,
            ACQUIRE_TIMEOUT,
        );

        let reader_options = base.pragma("query_only", "ON");
        let reader = SqliteConns::new(
            reader_options.connect().await?,
            reader_options,
            READERS,
            ACQUIRE_TIMEOUT,
        );
        Ok(SqliteStore {
            writer,
            reader,
            prune_batch: PRUNE_BATCH_SQLITE,
            in_flight: Default::default(),
        })
    }

    /// Uses batches of `rows` rows in the prune calls instead of 10,000 (tests use tiny batches to
    /// exercise the batching loop).
    pub fn with_prune_batch(mut self, rows: i64) -> Self {
        self.prune_batch = rows.max(1);
        self
    }

    /// A write transaction that holds SQLite's write lock from its first statement.
    pub(crate) async fn begin_write(&self) -> StoreResult<SqliteTx> {
        Ok(self.writer.begin(Some("BEGIN IMMEDIATE")).await?)
    }

    /// Adds a login record and, for a success, sets the user's last login time: one transaction
    /// in one command to the connection's thread. With `finish`, first gives one lockout slot of
    /// each of its keys back and then creates its session, if any, in the same transaction.
    async fn insert_record(
        &self,
        r: &LoginRecord,
        finish: Option<(&[&str], Option<&Session>)>,
    ) -> StoreResult<()> {
        macro_rules! record_sql {
            () => {
                concat!(
                    "INSERT INTO login_records (",
                    record_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9); ",
                    "UPDATE users SET last_login_at = $3 WHERE $8 AND name = $2"
                )
            };
        }
        macro_rules! release_sql {
            () => {
                concat!(
                    "UPDATE lockouts SET failures = failures - 1 ",
                    "WHERE lock_key IN (SELECT value FROM json_each($10)) AND failures > 0; "
                )
            };
        }
        const RECORD: &str = in_one_transaction!(record_sql!());
        const RELEASE_AND_RECORD: &str = in_one_transaction!(release_sql!(), record_sql!());
        const FINISH_WITH_SESSION: &str = in_one_transaction!(
            release_sql!(),
            record_sql!(),
            "; INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        );
        let sql = match finish {
            None => RECORD,
            Some((_, None)) => RELEASE_AND_RECORD,
            Some((_, Some(_))) => FINISH_WITH_SESSION,
        };
        let mut query = common::bind_record!(sqlx::query(sql), r);
        let mut session = None;
        if let Some((release, s)) = finish {
            query = query.bind(json_keys(release)?);
            session = s;
        }
        if let Some(s) = session {
            query = common::bind_session!(query, s);
        }
        self.writer
            .execute_in_transaction(query)
            .await
            .map_err(|e| common::login_write_error(e, session, r))?;
        Ok(())
    }

    /// Stores the changed counters (`changes` holds indexes into `keys`), all in one command.
    async fn save_counters(
        tx: &mut SqliteTx,
        keys: &[(&str, LockoutPolicy)],
        changes: &[(usize, Counter)],
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let sql: Vec<String> = (0..changes.len())
            .map(|i| {
                let p = |n: usize| format!("${}", i * 5 + n);
                format!(
                    "INSERT INTO lockouts (lock_key, window_start, failures, locked_until, expires_at) \
                     VALUES ({}, {}, {}, {}, {}) ON CONFLICT (lock_key) DO UPDATE SET \
                     window_start = excluded.window_start, failures = excluded.failures, \
                     locked_until = excluded.locked_until, expires_at = excluded.expires_at",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5)
                )
            })
            .collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.join("; ")));
        for &(i, c) in changes {
            let (key, policy) = keys[i];
            query = query
                .bind(key)
                .bind(c.window_start)
                .bind(c.failures)
                .bind(c.locked_until)
                .bind(c.expires_at(policy));
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Runs a `DELETE` that removes at most `self.prune_batch` rows per execution until it removes
    /// fewer. `bind` binds the other parameters; the batch size is bound last, so it must be the
    /// highest-numbered parameter.
    /// Each execution is its own short transaction, so other writers get turns in between.
    async fn delete_in_batches(
        &self,
        sql: &'static str,
        bind: impl Fn(SqliteQuery) -> SqliteQuery,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let done = bind(sqlx::query(sql))
                .bind(self.prune_batch)
                .execute(&self.writer)
                .await?
                .rows_affected();
            total += done;
            if done < self.prune_batch as u64 {
                return Ok(total);
            }
        }
    }
}

type SqliteQuery = sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments>;

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (name, uid, email, email_key, display_name, groups, state, password_hash, uninitialized, \
             created_at, last_login_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&user.name)
        .bind(&user.uid)
        .bind(&user.email)
        .bind(common::email_key(user.email.as_deref()))
        .bind(&user.display_name)
        .bind(common::groups_json(&user.groups))
        .bind(user.state.as_str())
        .bind(&user.password_hash)
        .bind(user.uninitialized)
        .bind(user.created_at)
        .bind(user.last_login_at)
        .bind(user.password_changed_at)
        .execute(&self.writer)
        .await
        .map_err(|e| common::user_conflict(e, user))?;
        Ok(())
    }

    async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(common::user_from_row).transpose()
    }

    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_key = $1"
        ))
        .bind(common::email_key(Some(email)))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(common::user_from_row).transpose()
    }

    async fn list_users(&self, offset: i64, limit: i64) -> StoreResult<Vec<User>> {
        let (offset, limit) = common::page(offset, limit);
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY name LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(common::user_from_row).collect()
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> StoreResult<User> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let mut user = row
            .as_ref()
            .map(common::user_from_row)
            .transpose()?
            .ok_or_else(|| common::user_not_found(name))?;
        common::apply_update(&mut user, update);
        sqlx::query(
            "UPDATE users SET email = $2, email_key = $3, display_name = $4, groups = $5, state = $6, uninitialized = $7 \
             WHERE name = $1",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(common::email_key(user.email.as_deref()))
        .bind(&user.display_name)
        .bind(common::groups_json(&user.groups))
        .bind(user.state.as_str())
        .bind(user.uninitialized)
        .execute(&mut *tx)
        .await
        .map_err(|e| common::user_conflict(e, &user))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn set_password(&self, name: &str, hash: &str, at: UnixMillis) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, uninitialized = FALSE WHERE name = $1")
            .bind(name)
            .bind(hash)
            .bind(at)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(common::user_not_found(name));
        }
        Ok(())
    }

    async fn upgrade_password_hash(&self, name: &str, old: &str, new: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $3 WHERE name = $1 AND password_hash = $2",
        )
        .bind(name)
        .bind(old)
        .bind(new)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        // Identity links go with the user through ON DELETE CASCADE.
        let deleted = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM login_records WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn link_identity(&self, link: &IdentityLink) -> StoreResult<()> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO identity_links (",
            link_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&link.provider)
        .bind(&link.upstream_uid)
        .bind(&link.user)
        .bind(&link.upstream_username)
        .bind(&link.upstream_email)
        .bind(link.created_at)
        .bind(link.upstream_email_verified)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if common::is_foreign_key_violation(&e) => {
                Err(common::user_not_found(&link.user))
            }
            Err(e) if common::unique_violation(&e).is_some() => {
                let owner = self
                    .find_identity(&link.provider, &link.upstream_uid)
                    .await?
                    .map(|l| l.user);
                Err(common::identity_conflict(link, owner))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn find_identity(
        &self,
        provider: &str,
        upstream_uid: &str,
    ) -> StoreResult<Option<IdentityLink>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            link_columns!(),
            " FROM identity_links WHERE provider = $1 AND upstream_uid = $2"
        ))
        .bind(provider)
        .bind(upstream_uid)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(common::link_from_row).transpose()
    }

    async fn list_identities(&self, user: &str) -> StoreResult<Vec<IdentityLink>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            link_columns!(),
            " FROM identity_links WHERE user_name = $1 ORDER BY provider, upstream_uid"
        ))
        .bind(user)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(common::link_from_row).collect()
    }

    async fn unlink_identity(&self, provider: &str, upstream_uid: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM identity_links WHERE provider = $1 AND upstream_uid = $2")
                .bind(provider)
                .bind(upstream_uid)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl LoginRecordStore for SqliteStore {
    async fn add_login_record(&self, r: &LoginRecord) -> StoreResult<()> {
        self.insert_record(r, None).await
    }

    async fn list_login_records(
        &self,
        user: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<LoginRecord>, i64)> {
        let (offset, limit) = common::page(offset, limit);
        // One read transaction, so the page and the total come from the same snapshot.
        let mut tx = self.reader.begin(None).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM login_records WHERE user_name = $1 ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *tx)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM login_records WHERE user_name = $1")
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((
            rows.iter()
                .map(common::record_from_row)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    async fn prune_login_records(
        &self,
        older_than: UnixMillis,
        max_per_user: i64,
    ) -> StoreResult<u64> {
        let mut total = self
            .delete_in_batches(
                "DELETE FROM login_records WHERE (user_name, at, id) IN \
                 (SELECT user_name, at, id FROM login_records WHERE at < $1 LIMIT $2)",
                |q| q.bind(older_than),
            )
            .await?;
        if max_per_user <= 0 {
            return Ok(total);
        }
        // Per user over the limit: find the oldest record to keep, then delete what is older, in
        // batches. Each step is an index range on (user_name, at, id), never a whole-table sort.
        let user_page = self.prune_batch.min(PRUNE_USER_PAGE);
        let mut after: Option<String> = None;
        loop {
            let page = match &after {
                None => sqlx::query_scalar(common::USERS_OVER_LIMIT_FIRST)
                    .bind(max_per_user)
                    .bind(user_page),
                Some(last) => sqlx::query_scalar(common::USERS_OVER_LIMIT_AFTER)
                    .bind(max_per_user)
                    .bind(user_page)
                    .bind(last.clone()),
            };
            let users: Vec<String> = page.fetch_all(&self.reader).await?;
            for user in &users {
                let cutoff: Option<(i64, String)> = sqlx::query_as(
                    "SELECT at, id FROM login_records WHERE user_name = $1 ORDER BY at DESC, id DESC LIMIT 1 OFFSET $2",
                )
                .bind(user)
                .bind(max_per_user - 1)
                .fetch_optional(&self.reader)
                .await?;
                let Some((at, id)) = cutoff else { continue };
                total += self
                    .delete_in_batches(
                        "DELETE FROM login_records WHERE (user_name, at, id) IN (SELECT user_name, at, id \
                         FROM login_records WHERE user_name = $1 AND (at, id) < ($2, $3) LIMIT $4)",
                        |q| q.bind(user).bind(at).bind(&id),
                    )
                    .await?;
            }
            if (users.len() as i64) < user_page {
                return Ok(total);
            }
            after = users.last().cloned();
        }
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        common::bind_session!(
            sqlx::query(concat!(
                "INSERT INTO sessions (",
                session_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )),
            s
        )
        .execute(&self.writer)
        .await
        .map_err(|e| common::session_write_error(e, s))?;
        Ok(())
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(common::session_from_row).transpose()
    }

    async fn get_session_with_user(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        let row = sqlx::query(session_with_user_select!())
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref()
            .map(common::session_with_user_from_row)
            .transpose()
    }

    async fn list_active_sessions(&self, user: &str, now: UnixMillis) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_name = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(user)
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(common::session_from_row).collect()
    }

    async fn advance_refresh(
        &self,
        id: &str,
        expected: i64,
        expires_at: Option<UnixMillis>,
        now: UnixMillis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET refresh_generation = refresh_generation + 1, expires_at = $3, \
             last_seen_at = MAX(last_seen_at, $4) \
             WHERE id = $1 AND refresh_generation = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(id)
        .bind(expected)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_session(&self, id: &str, at: UnixMillis) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let revoked: Option<(String, Option<i64>)> =
            sqlx::query_as("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id, expires_at")
                .bind(id)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, expires_at)) = revoked else {
            return Ok(false);
        };
        log_revocations(&mut tx, &[(id, expires_at)]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_unstored(&self, id: &str, expires_at: UnixMillis) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        log_revocations(&mut tx, &[(id.to_owned(), Some(expires_at))]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_user_sessions(
        &self,
        user: &str,
        except: Option<&str>,
        at: UnixMillis,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let mut revoked: Vec<(String, Option<i64>)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL AND ($3 IS NULL OR id <> $3) \
             RETURNING id, expires_at",
        )
        .bind(user)
        .bind(at)
        .bind(except)
        .fetch_all(&mut *tx)
        .await?;
        revoked.sort();
        log_revocations(&mut tx, &revoked).await?;
        tx.commit().await?;
        Ok(revoked.into_iter().map(|(id, _)| id).collect())
    }

    async fn revocations_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>> {
        let rows: Vec<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT seq, session_id, expires_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit.max(0))
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, session_id, expires_at)| Revocation {
                seq,
                session_id,
                expires_at,
            })
            .collect())
    }

    async fn live_revocations(&self, now: UnixMillis) -> StoreResult<Vec<Revocation>> {
        let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT seq, session_id, expires_at FROM revocations WHERE expires_at IS NULL OR expires_at > $1 ORDER BY seq",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, session_id, expires_at)| Revocation {
                seq,
                session_id,
                expires_at,
            })
            .collect())
    }

    async fn revocation_head(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM revocations")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn touch_sessions(&self, seen: &[(String, UnixMillis)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let (ids, times) = common::merge_touches(seen);
        let mut tx = self.begin_write().await?;
        for (id, at) in ids.iter().zip(times) {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune_sessions(&self, before: UnixMillis) -> StoreResult<u64> {
        // `expires_at < $1` is false for NULL: sessions and log entries without an expiry stay.
        let sessions = self
            .delete_in_batches(
                "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2)",
                |q| q.bind(before),
            )
            .await?;
        let revocations = self
            .delete_in_batches(
                "DELETE FROM revocations WHERE seq IN (SELECT seq FROM revocations WHERE expires_at < $1 LIMIT $2)",
                |q| q.bind(before),
            )
            .await?;
        Ok(sessions + revocations)
    }
}

/// Appends revoked sessions to the log, inside the revoking transaction.
async fn log_revocations(tx: &mut SqliteTx, revoked: &[(String, Option<i64>)]) -> StoreResult<()> {
    for (id, expires_at) in revoked {
        sqlx::query("INSERT INTO revocations (session_id, expires_at) VALUES ($1, $2)")
            .bind(id)
            .bind(expires_at)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Lockout keys as a JSON array, for `json_each`.
fn json_keys(keys: &[&str]) -> StoreResult<String> {
    serde_json::to_string(keys).map_err(|e| StoreError::Corrupt(format!("lockout keys: {e}")))
}

#[async_trait]
impl LockoutStore for SqliteStore {
    async fn lockout_reserve(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<LockoutDecision>> {
        self.reserve_slots(keys, now).await
    }

    async fn lockout_fail(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<Option<UnixMillis>>> {
        self.fail_slots(keys, now).await
    }

    async fn lockout_release(&self, keys: &[&str]) -> StoreResult<()> {
        // The slots held in memory go back even when the table's part fails: nothing else
        // would ever give them back.
        let mut table = Ok(());
        let outcome = &mut table;
        self.release_slots(keys, |unheld| async move {
            if !unheld.is_empty() {
                let keys: Vec<&str> = unheld.iter().map(String::as_str).collect();
                *outcome = sqlx::query(
                    "UPDATE lockouts SET failures = failures - 1 \
                     WHERE lock_key IN (SELECT value FROM json_each($1)) AND failures > 0",
                )
                .bind(json_keys(&keys)?)
                .execute(&self.writer)
                .await
                .map(|_| ())
                .map_err(StoreError::from);
            }
            Ok(())
        })
        .await?;
        table
    }

    async fn lockout_status(&self, key: &str, now: UnixMillis) -> StoreResult<Option<UnixMillis>> {
        Ok(sqlx::query_scalar(
            "SELECT locked_until FROM lockouts WHERE lock_key = $1 AND locked_until > $2",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn lockout_clear(&self, key: &str) -> StoreResult<()> {
        self.clear_slots(key).await
    }

    async fn prune_lockouts(&self, now: UnixMillis) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM lockouts WHERE lock_key IN (SELECT lock_key FROM lockouts WHERE expires_at <= $1 LIMIT $2)",
            |q| q.bind(now),
        )
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixMillis,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(crate::common::TRY_LEASE)
            .bind(name)
            .bind(holder)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn finish_login(
        &self,
        session: Option<&Session>,
        release: &[&str],
        record: &LoginRecord,
    ) -> StoreResult<()> {
        if release.is_empty() {
            return self.insert_record(record, Some((release, session))).await;
        }
        // The slots held here are given back in memory once the transaction is in; the table's
        // counters of any other key are decremented in it.
        self.release_slots(release, |unheld| async move {
            let unheld: Vec<&str> = unheld.iter().map(String::as_str).collect();
            self.insert_record(record, Some((&unheld, session))).await
        })
        .await
    }

    async fn create_granted_session(&self, s: &Session, g: &OidcGrant) -> StoreResult<()> {
        // One write transaction in one command to the connection's thread.
        const SQL: &str = in_one_transaction!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12); ",
            "INSERT INTO oidc_grants (",
            grant_columns!(),
            ") VALUES ($13, $14, $15, $16, $17, $18, $19)"
        );
        common::check_grant_of(s, g)?;
        self.writer
            .execute_in_transaction(bind_grant!(common::bind_session!(sqlx::query(SQL), s), g))
            .await
            .map_err(|e| common::session_write_error(e, s))?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[path = "sqlite_lockout.rs"]
mod lockout;

#[cfg(test)]
#[path = "sqlite_migration_tests.rs"]
mod migration_tests;
