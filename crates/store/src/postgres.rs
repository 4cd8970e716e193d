//! PostgreSQL backend: the store several replicas share.
//!
//! Design: correctness under concurrency comes from row locks taken in a fixed order, never from
//! a stronger isolation level that would need retry loops. A read-then-write (lockout counters,
//! user updates) locks its row with `SELECT ... FOR UPDATE`; multi-row updates lock rows in `id`
//! order, so two servers never deadlock; appends to the revocation log take a table lock that
//! makes sequence numbers visible in commit order (see [`PostgresStore::revoke_session`]'s SQL);
//! prune deletes skip rows that are locked and leave them to the next run.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection, PgConnection, Postgres};

use crate::common::{
    self, Counter, MigrationFile, PRUNE_BATCH, PRUNE_USER_PAGE, link_columns, record_columns,
    session_columns, session_with_user_select, user_columns,
};
use crate::oidc::{bind_grant, grant_columns};
use crate::pg_conns::{PgConns, PgTx};
use crate::{
    IdentityLink, IdentityStore, LockoutDecision, LockoutPolicy, LockoutStore, LoginRecord,
    LoginRecordStore, OidcGrant, Revocation, Session, SessionStore, Store, StoreError, StoreResult,
    UnixMillis, User, UserStore, UserUpdate, redact_url,
};

/// The embedded migrations, in order (checked against `migrations/postgres` by a test).
pub(crate) const MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "federation",
        include_str!("../migrations/postgres/0002_federation.sql"),
    ),
    (
        3,
        "oidc",
        include_str!("../migrations/postgres/0003_oidc.sql"),
    ),
    (
        4,
        "upstream_groups",
        include_str!("../migrations/postgres/0004_upstream_groups.sql"),
    ),
    (
        5,
        "job_leases",
        include_str!("../migrations/postgres/0005_job_leases.sql"),
    ),
    (
        6,
        "upstream_email_verified",
        include_str!("../migrations/postgres/0006_upstream_email_verified.sql"),
    ),
    (
        7,
        "live_sessions_index",
        include_str!("../migrations/postgres/0007_live_sessions_index.sql"),
    ),
    (
        8,
        "lockout reserve function",
        include_str!("../migrations/postgres/0008_lockout_reserve_function.sql"),
    ),
];

/// Connections per server.
const MAX_CONNECTIONS: u32 = 10;

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgConns,
    prune_batch: i64,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=...`) and runs the
    /// migrations. sqlx's migrator holds an advisory lock meanwhile, so replicas that start
    /// together migrate one after the other.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::connect(parse_url(url)?).await
    }

    /// Like [`PostgresStore::open`], but keeps every table in `schema` (created if missing) by
    /// setting `search_path` on each connection: several stores, for example one per test, can
    /// then share one database. `schema` must be a plain lower-case identifier
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn open_with_schema(url: &str, schema: &str) -> StoreResult<Self> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return Err(StoreError::InvalidUrl(format!(
                "invalid PostgreSQL schema name {schema:?}: expected [a-z_][a-z0-9_]*, at most 63 bytes"
            )));
        }
        let options = parse_url(url)?;
        let mut conn = PgConnection::connect_with(&options).await?;
        // The name was checked above to be a plain identifier, so quoting it is enough.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Self::connect(options.options([("search_path", schema)])).await
    }

    async fn connect(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            // A database outage must turn into a prompt 503, not a request hanging for long.
            .acquire_timeout(Duration::from_secs(5))
            // sqlx pings every connection when it goes back to the pool, and by default again
            // before handing it out: two extra round trips per query, which doubled the database
            // cost of a password login. A connection returned within the last second was just
            // checked; only one idle for longer (a restarted server has closed it meanwhile) is
            // pinged before use. (A transaction cancelled before `BEGIN` was answered is rolled
            // back by `PgTx`, not by this ping.)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for < crate::pg_conns::RECENTLY_USED {
                        return Ok(true);
                    }
                    sqlx::Connection::ping(conn).await.map(|()| true)
                })
            })
            .connect_with(options.clone())
            .await?;
        // On a connection of its own that does not log slow statements (`common::run_migrations`).
        let mut conn = options
            .log_slow_statements(log::LevelFilter::Off, Duration::ZERO)
            .connect()
            .await?;
        common::run_migrations(MIGRATIONS, &mut conn).await?;
        conn.close().await?;
        Ok(PostgresStore {
            pool: PgConns::new(pool),
            prune_batch: PRUNE_BATCH,
        })
    }

    /// Uses batches of `rows` rows in the prune calls instead of 10,000 (tests use tiny batches to
    /// exercise the batching loop).
    pub fn with_prune_batch(mut self, rows: i64) -> Self {
        self.prune_batch = rows.max(1);
        self
    }

    /// Locks the counter rows of `keys` (distinct), creating fresh ones for keys without a row,
    /// and returns them in the order of `keys`: one statement. Rows are locked in key order in
    /// every call, so two calls cannot deadlock; a fresh row reads exactly like no row.
    async fn lock_counters(
        tx: &mut PgTx,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<Counter>> {
        let names = common::distinct_keys(keys)?;
        let fresh = Counter {
            window_start: now,
            failures: 0,
            locked_until: None,
        };
        let expires: Vec<i64> = keys.iter().map(|(_, p)| fresh.expires_at(*p)).collect();
        // `DO UPDATE` (of nothing) rather than `DO NOTHING`: it locks an existing row and returns
        // it, where `DO NOTHING` would need a second `SELECT ... FOR UPDATE`.
        let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
            "INSERT INTO lockouts (lock_key, window_start, failures, locked_until, expires_at) \
             SELECT k, $2, 0, NULL, e FROM unnest($1::text[], $3::int8[]) AS t(k, e) ORDER BY k \
             ON CONFLICT (lock_key) DO UPDATE SET lock_key = excluded.lock_key \
             RETURNING lock_key, window_start, failures, locked_until",
        )
        .bind(&names)
        .bind(now)
        .bind(&expires)
        .fetch_all(&mut **tx)
        .await?;
        names
            .iter()
            .map(|name| {
                rows.iter()
                    .find(|(k, ..)| k == name)
                    .map(|&(_, window_start, failures, locked_until)| Counter {
                        window_start,
                        failures,
                        locked_until,
                    })
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("lockout row {name:?} was not returned"))
                    })
            })
            .collect()
    }

    /// Stores counters of locked rows (`(index into keys, counter)`), in one statement.
    async fn save_counters(
        tx: &mut PgTx,
        keys: &[(&str, LockoutPolicy)],
        changes: &[(usize, Counter)],
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = changes.iter().map(|&(i, _)| keys[i].0).collect();
        let starts: Vec<i64> = changes.iter().map(|(_, c)| c.window_start).collect();
        let failures: Vec<i64> = changes.iter().map(|(_, c)| c.failures).collect();
        let locked: Vec<Option<i64>> = changes.iter().map(|(_, c)| c.locked_until).collect();
        let expires: Vec<i64> = changes
            .iter()
            .map(|&(i, c)| c.expires_at(keys[i].1))
            .collect();
        sqlx::query(
            "UPDATE lockouts AS l SET window_start = v.ws, failures = v.f, locked_until = v.lu, expires_at = v.ea \
             FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[]) AS v(k, ws, f, lu, ea) \
             WHERE l.lock_key = v.k",
        )
        .bind(&names)
        .bind(&starts)
        .bind(&failures)
        .bind(&locked)
        .bind(&expires)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Runs a `DELETE` that removes at most `self.prune_batch` rows per execution until it removes
    /// fewer. `bind` binds the other parameters; the batch size is bound last, so it must be the
    /// highest-numbered parameter. Each execution is its own short transaction.
    async fn delete_in_batches(
        &self,
        sql: &'static str,
        bind: impl Fn(PgQuery) -> PgQuery,
    ) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let done = bind(sqlx::query(sql))
                .bind(self.prune_batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += done;
            if done < self.prune_batch as u64 {
                return Ok(total);
            }
        }
    }
}

type PgQuery = sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments>;

fn parse_url(url: &str) -> StoreResult<PgConnectOptions> {
    url.parse().map_err(|e| {
        StoreError::InvalidUrl(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
    })
}

#[async_trait]
impl UserStore for PostgresStore {
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
        .execute(&self.pool)
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
        .fetch_optional(&self.pool)
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
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(common::user_from_row).collect()
    }

    async fn count_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn update_user(&self, name: &str, update: &UserUpdate) -> StoreResult<User> {
        let mut tx = self.pool.begin(None).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE name = $1 FOR UPDATE"
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
            .execute(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, name: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin(None).await?;
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
impl IdentityStore for PostgresStore {
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
        .execute(&self.pool)
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
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(common::link_from_row).collect()
    }

    async fn unlink_identity(&self, provider: &str, upstream_uid: &str) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM identity_links WHERE provider = $1 AND upstream_uid = $2")
                .bind(provider)
                .bind(upstream_uid)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// `sql` with the record's fields bound as `$1`..`$9` (id, user, at, type, provider, address,
/// user agent, success, reason).
fn record_query<'q>(
    sql: &'static str,
    r: &'q LoginRecord,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    common::bind_record!(sqlx::query(sql), r)
}

#[async_trait]
impl LoginRecordStore for PostgresStore {
    async fn add_login_record(&self, r: &LoginRecord) -> StoreResult<()> {
        record_query(
            concat!(
                "WITH last_login AS (UPDATE users SET last_login_at = $3 WHERE $8 AND name = $2) ",
                "INSERT INTO login_records (",
                record_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            r,
        )
        .execute(&self.pool)
        .await
        .map_err(|e| common::login_write_error(e, None, r))?;
        Ok(())
    }

    async fn list_login_records(
        &self,
        user: &str,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<LoginRecord>, i64)> {
        let (offset, limit) = common::page(offset, limit);
        // One snapshot for the page and the total.
        let mut tx = self
            .pool
            .begin(Some("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            .await?;
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
                "DELETE FROM login_records WHERE id IN (SELECT id FROM login_records WHERE at < $1 LIMIT $2)",
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
            let users: Vec<String> = page.fetch_all(&self.pool).await?;
            for user in &users {
                let cutoff: Option<(i64, String)> = sqlx::query_as(
                    "SELECT at, id FROM login_records WHERE user_name = $1 ORDER BY at DESC, id DESC LIMIT 1 OFFSET $2",
                )
                .bind(user)
                .bind(max_per_user - 1)
                .fetch_optional(&self.pool)
                .await?;
                let Some((at, id)) = cutoff else { continue };
                total += self
                    .delete_in_batches(
                        "DELETE FROM login_records WHERE id IN (SELECT id FROM login_records \
                         WHERE user_name = $1 AND (at, id) < ($2, $3) LIMIT $4)",
                        |q| q.bind(user.clone()).bind(at).bind(id.clone()),
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
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        common::bind_session!(
            sqlx::query(concat!(
                "INSERT INTO sessions (",
                session_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )),
            s
        )
        .execute(&self.pool)
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
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(common::session_from_row).transpose()
    }

    async fn get_session_with_user(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Session, Option<User>)>> {
        let row = sqlx::query(session_with_user_select!())
            .bind(id)
            .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
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
             last_seen_at = GREATEST(last_seen_at, $4) \
             WHERE id = $1 AND refresh_generation = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(id)
        .bind(expected)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_session(&self, id: &str, at: UnixMillis) -> StoreResult<bool> {
        let mut tx = begin_log_append(&self.pool).await?;
        let logged = sqlx::query(
            "WITH revoked AS (UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING id, expires_at) \
             INSERT INTO revocations (session_id, expires_at) SELECT id, expires_at FROM revoked",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(logged == 1)
    }

    async fn revoke_unstored(&self, id: &str, expires_at: UnixMillis) -> StoreResult<()> {
        let mut tx = begin_log_append(&self.pool).await?;
        sqlx::query("INSERT INTO revocations (session_id, expires_at) VALUES ($1, $2)")
            .bind(id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_user_sessions(
        &self,
        user: &str,
        except: Option<&str>,
        at: UnixMillis,
    ) -> StoreResult<Vec<String>> {
        let mut tx = begin_log_append(&self.pool).await?;
        let mut revoked: Vec<String> = sqlx::query_scalar(
            "WITH revoked AS ( \
                UPDATE sessions SET revoked_at = $2 \
                WHERE revoked_at IS NULL AND id IN ( \
                    SELECT id FROM sessions \
                    WHERE user_name = $1 AND revoked_at IS NULL AND ($3::text IS NULL OR id <> $3) \
                    ORDER BY id FOR UPDATE) \
                RETURNING id, expires_at) \
             INSERT INTO revocations (session_id, expires_at) SELECT id, expires_at FROM revoked ORDER BY id \
             RETURNING session_id",
        )
        .bind(user)
        .bind(at)
        .bind(except)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        revoked.sort();
        Ok(revoked)
    }

    async fn revocations_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Revocation>> {
        let rows: Vec<(i64, String, Option<i64>)> =
            sqlx::query_as("SELECT seq, session_id, expires_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit.max(0))
                .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM revocations")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn touch_sessions(&self, seen: &[(String, UnixMillis)]) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let (ids, times) = common::merge_touches(seen);
        let mut tx = self.pool.begin(None).await?;
        // Lock in id order first (as revoke_user_sessions does), so concurrent batches that share
        // sessions queue instead of deadlocking.
        sqlx::query("SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions AS s SET last_seen_at = v.at FROM UNNEST($1::text[], $2::bigint[]) AS v(id, at) \
             WHERE s.id = v.id AND s.last_seen_at < v.at",
        )
        .bind(&ids)
        .bind(&times)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_sessions(&self, before: UnixMillis) -> StoreResult<u64> {
        // `expires_at < $1` is false for NULL: sessions and log entries without an expiry stay.
        let sessions = self
            .delete_in_batches(
                "DELETE FROM sessions WHERE id IN \
                 (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
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

/// A transaction that may append to the revocation log. It first takes a lock that only other
/// appenders conflict with (readers do not), so appends are serialised: an entry's `seq` is taken
/// after every earlier appender committed, and a poller reading `seq > cursor` can never see entry
/// n+1 before entry n becomes visible (with concurrent appenders it could, and would skip n).
async fn begin_log_append(pool: &PgConns) -> StoreResult<PgTx> {
    let mut tx = pool.begin(None).await?;
    sqlx::query("LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Gives one slot of each of the lockout keys in the array parameter `$keys` back. The rows are
/// locked in key order first, as [`PostgresStore::lock_counters`] locks them: a plain
/// `UPDATE ... WHERE lock_key = ANY(...)` locks in the table's physical order, which every update
/// changes, and a login rush of one account deadlocked against the reservations
/// (`lockout_rows_of_a_login_rush_never_deadlock`).
macro_rules! release_slots {
    ($keys:literal) => {
        concat!(
            "UPDATE lockouts SET failures = failures - 1 WHERE lock_key IN ",
            "(SELECT lock_key FROM lockouts WHERE lock_key = ANY(",
            $keys,
            ") ORDER BY lock_key FOR UPDATE) AND failures > 0"
        )
    };
}

#[async_trait]
impl LockoutStore for PostgresStore {
    async fn lockout_reserve(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<LockoutDecision>> {
        // One round trip instead of four (BEGIN, lock, save, COMMIT): the function
        // (migration 0008) runs the rules of `common::lockout_reserve_all` in the database.
        let names = common::distinct_keys(keys)?;
        let (max_failures, windows): (Vec<i64>, Vec<i64>) = keys
            .iter()
            .map(|(_, policy)| common::clamp(*policy))
            .unzip();
        let rows: Vec<(String, Option<i64>, bool)> = sqlx::query_as(
            "SELECT reserved_key, lock_end, busy FROM lockout_reserve($1, $2, $3, $4)",
        )
        .bind(&names)
        .bind(&max_failures)
        .bind(&windows)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        if rows.len() != names.len() || rows.iter().zip(&names).any(|(row, name)| row.0 != *name) {
            return Err(StoreError::Corrupt(
                "lockout_reserve returned other keys than it was given".to_owned(),
            ));
        }
        Ok(rows
            .into_iter()
            .map(|(_, lock_end, busy)| match lock_end {
                Some(until) => LockoutDecision::Locked { until },
                None if busy => LockoutDecision::Busy,
                None => LockoutDecision::Allowed,
            })
            .collect())
    }

    async fn lockout_fail(
        &self,
        keys: &[(&str, LockoutPolicy)],
        now: UnixMillis,
    ) -> StoreResult<Vec<Option<UnixMillis>>> {
        let mut tx = self.pool.begin(None).await?;
        let stored = Self::lock_counters(&mut tx, keys, now).await?;
        let changes: Vec<(usize, Counter)> = stored
            .into_iter()
            .zip(keys)
            .map(|(c, (_, policy))| common::lockout_fail(Some(c), *policy, now))
            .enumerate()
            .collect();
        Self::save_counters(&mut tx, keys, &changes).await?;
        tx.commit().await?;
        Ok(changes.iter().map(|(_, c)| c.locked_until).collect())
    }

    async fn lockout_release(&self, keys: &[&str]) -> StoreResult<()> {
        sqlx::query(release_slots!("$1"))
            .bind(keys)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn lockout_status(&self, key: &str, now: UnixMillis) -> StoreResult<Option<UnixMillis>> {
        Ok(sqlx::query_scalar(
            "SELECT locked_until FROM lockouts WHERE lock_key = $1 AND locked_until > $2",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn lockout_clear(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM lockouts WHERE lock_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_lockouts(&self, now: UnixMillis) -> StoreResult<u64> {
        self.delete_in_batches(
            "DELETE FROM lockouts WHERE lock_key IN \
             (SELECT lock_key FROM lockouts WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
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
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn finish_login(
        &self,
        session: Option<&Session>,
        release: &[&str],
        record: &LoginRecord,
    ) -> StoreResult<()> {
        // One statement, so one round trip and all or nothing.
        const FINISH: &str = concat!(
            "WITH released AS (",
            release_slots!("$10"),
            "), ",
            "last_login AS (UPDATE users SET last_login_at = $3 WHERE $8 AND name = $2) ",
            "INSERT INTO login_records (",
            record_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        const FINISH_WITH_SESSION: &str = concat!(
            "WITH released AS (",
            release_slots!("$10"),
            "), ",
            "last_login AS (UPDATE users SET last_login_at = $3 WHERE $8 AND name = $2), ",
            "record AS (INSERT INTO login_records (",
            record_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)) ",
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        );
        let query = record_query(
            if session.is_some() {
                FINISH_WITH_SESSION
            } else {
                FINISH
            },
            record,
        )
        .bind(release);
        let query = match session {
            Some(s) => common::bind_session!(query, s),
            None => query,
        };
        query
            .execute(&self.pool)
            .await
            .map_err(|e| common::login_write_error(e, session, record))?;
        Ok(())
    }

    async fn create_granted_session(&self, s: &Session, g: &OidcGrant) -> StoreResult<()> {
        // One statement, so one round trip and all or nothing.
        const SQL: &str = concat!(
            "WITH session AS (INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)) ",
            "INSERT INTO oidc_grants (",
            grant_columns!(),
            ") VALUES ($13, $14, $15, $16, $17, $18, $19)"
        );
        common::check_grant_of(s, g)?;
        bind_grant!(common::bind_session!(sqlx::query(SQL), s), g)
            .execute(&self.pool)
            .await
            .map_err(|e| common::session_write_error(e, s))?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
#[path = "pg_reserve_tests.rs"]
mod reserve_tests;
