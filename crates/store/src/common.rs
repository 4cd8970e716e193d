//! What both SQL backends share: row decoding, the lockout arithmetic, conflict messages, and the
//! embedded migrations. The SQL text itself stays in each backend, written for its dialect, but
//! for the few statements that read the same in both.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::error::ErrorKind;
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};

use crate::{
    IdentityLink, LockoutDecision, LockoutPolicy, LoginRecord, Session, StoreError, StoreResult,
    UnixMillis, User, UserState, UserUpdate,
};

/// Rows deleted per statement by the prune calls, so a huge table is never one long transaction.
pub(crate) const PRUNE_BATCH: i64 = 10_000;

/// Users over the per-user record limit looked up per statement while pruning login records.
pub(crate) const PRUNE_USER_PAGE: i64 = 500;

/// The first page of users with more than `$1` login records (at most `$2` of them), in name
/// order: one pass over the `(user_name, at, id)` index.
pub(crate) const USERS_OVER_LIMIT_FIRST: &str = "SELECT user_name FROM login_records \
     GROUP BY user_name HAVING COUNT(*) > $1 ORDER BY user_name LIMIT $2";

/// The next page, after user `$3`. A separate statement rather than `($3 IS NULL OR user_name >
/// $3)`, which SQLite cannot turn into an index range: every page would rescan the index from
/// its start, so a million records and thousands of users over the limit cost one full scan per
/// 500 of them.
pub(crate) const USERS_OVER_LIMIT_AFTER: &str = "SELECT user_name FROM login_records \
     WHERE user_name > $3 GROUP BY user_name HAVING COUNT(*) > $1 ORDER BY user_name LIMIT $2";

/// One embedded migration file: version, description, SQL.
pub(crate) type MigrationFile = (i64, &'static str, &'static str);

/// A migrator over migration files embedded with `include_str!`. This gives what `sqlx::migrate!`
/// gives (same versions, descriptions and checksums, so either can take over a database) without
/// compiling sqlx's proc-macro crate; a test checks the list against the directory.
pub(crate) fn migrator(files: &[MigrationFile]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}

/// The migrations of `files` not yet applied to the database behind `conn`, as (version,
/// description); all of them when it has no migrations table yet (its listing fails then).
pub(crate) async fn pending_migrations<C: Migrate + ?Sized>(
    files: &[MigrationFile],
    conn: &mut C,
) -> Vec<(i64, &'static str)> {
    let applied: Vec<i64> = conn
        .list_applied_migrations("_sqlx_migrations")
        .await
        .map(|m| m.into_iter().map(|m| m.version).collect())
        .unwrap_or_default();
    files
        .iter()
        .filter(|(version, ..)| !applied.contains(version))
        .map(|&(version, description, _)| (version, description))
        .collect()
}

/// Runs the pending migrations of `files` over `conn`, which should not log slow statements
/// (sqlx's warning would print a long migration's whole SQL text): what runs is logged before
/// it starts, since on a large database one can take minutes (0008 rewrites the login records)
/// and a start that seems to hang should say why, and how long it took when it ends.
pub(crate) async fn run_migrations<C: Migrate>(
    files: &[MigrationFile],
    conn: &mut C,
) -> StoreResult<()> {
    let pending = pending_migrations(files, conn).await;
    let started = announce_migrations(files, &pending);
    // What `Migrator::run` does with the connection it acquires.
    migrator(files).run_direct(None, conn, false).await?;
    migrations_applied(started);
    Ok(())
}

/// Logs the migrations about to run; returns what [`migrations_applied`] needs.
fn announce_migrations(
    files: &[MigrationFile],
    pending: &[(i64, &str)],
) -> Option<std::time::Instant> {
    if pending.is_empty() {
        return None;
    }
    if pending.len() == files.len() {
        tracing::info!("creating the database schema");
        return Some(std::time::Instant::now());
    }
    let names: Vec<String> = pending
        .iter()
        .map(|(version, description)| format!("{version:04}_{description}"))
        .collect();
    tracing::info!(
        migrations = %names.join(", "),
        "applying database migrations; on a large database this can take minutes"
    );
    Some(std::time::Instant::now())
}

/// Logs how long the migrations announced by [`announce_migrations`] took.
fn migrations_applied(started: Option<std::time::Instant>) {
    if let Some(started) = started {
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "database migrations applied"
        );
    }
}

/// Typed column access shared by `SqliteRow` and `PgRow`, so the model decoding below is written once.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}

impl_row_ext!(sqlx::sqlite::SqliteRow);
impl_row_ext!(sqlx::postgres::PgRow);

/// Column lists, as macros so they can be spliced into `concat!` and the SQL stays `&'static str`.
macro_rules! user_columns {
    () => {
        "name, uid, email, display_name, groups, state, password_hash, uninitialized, created_at, last_login_at, password_changed_at"
    };
}
/// One session (`$1`) and its user's [`user_columns!`] named `u_<column>`, for
/// [`session_with_user_from_row`].
macro_rules! session_with_user_select {
    () => {
        concat!(
            "SELECT s.*, u.name AS u_name, u.uid AS u_uid, u.email AS u_email, \
             u.display_name AS u_display_name, u.groups AS u_groups, u.state AS u_state, \
             u.password_hash AS u_password_hash, u.uninitialized AS u_uninitialized, \
             u.created_at AS u_created_at, u.last_login_at AS u_last_login_at, \
             u.password_changed_at AS u_password_changed_at \
             FROM (SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1) AS s LEFT JOIN users AS u ON u.name = s.user_name"
        )
    };
}
macro_rules! link_columns {
    () => {
        "provider, upstream_uid, user_name, upstream_username, upstream_email, created_at, upstream_email_verified"
    };
}
macro_rules! record_columns {
    () => {
        "id, user_name, at, login_type, provider, source_ip, user_agent, success, reason"
    };
}
macro_rules! session_columns {
    () => {
        "id, user_name, client_id, provider, created_at, expires_at, last_seen_at, refresh_generation, revoked_at, source_ip, user_agent, upstream_groups"
    };
}
/// Binds a session's fields to `query`, in [`session_columns!`] order.
macro_rules! bind_session {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.id)
            .bind(&$s.user)
            .bind(&$s.client_id)
            .bind(&$s.provider)
            .bind($s.created_at)
            .bind($s.expires_at)
            .bind($s.last_seen_at)
            .bind($s.refresh_generation)
            .bind($s.revoked_at)
            .bind(&$s.source_ip)
            .bind(&$s.user_agent)
            .bind($crate::common::groups_json(&$s.upstream_groups))
    };
}
/// Binds a login record's fields to `query`, in [`record_columns!`] order.
macro_rules! bind_record {
    ($query:expr, $r:expr) => {
        $query
            .bind(&$r.id)
            .bind(&$r.user)
            .bind($r.at)
            .bind(&$r.login_type)
            .bind(&$r.provider)
            .bind(&$r.source_ip)
            .bind(&$r.user_agent)
            .bind($r.success)
            .bind(&$r.reason)
    };
}
pub(crate) use {
    bind_record, bind_session, link_columns, record_columns, session_columns,
    session_with_user_select, user_columns,
};

pub(crate) fn user_from_row(r: &impl RowExt) -> StoreResult<User> {
    let name = r.text("name")?;
    let groups = r.text("groups")?;
    let groups = serde_json::from_str(&groups)
        .map_err(|e| StoreError::Corrupt(format!("groups of user {name:?}: {e}")))?;
    let state = r.text("state")?;
    let state = UserState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown state {state:?} of user {name:?}")))?;
    Ok(User {
        uid: r.text("uid")?,
        email: r.opt_text("email")?,
        display_name: r.opt_text("display_name")?,
        groups,
        state,
        password_hash: r.opt_text("password_hash")?,
        uninitialized: r.flag("uninitialized")?,
        created_at: r.int("created_at")?,
        last_login_at: r.opt_int("last_login_at")?,
        password_changed_at: r.opt_int("password_changed_at")?,
        name,
    })
}

/// A row's columns under a prefix: `Prefixed(row, "u_").text("name")` reads `u_name`.
struct Prefixed<'r, R>(&'r R, &'static str);

impl<R: RowExt> RowExt for Prefixed<'_, R> {
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.0.text(&format!("{}{col}", self.1))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.0.opt_text(&format!("{}{col}", self.1))
    }
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.0.int(&format!("{}{col}", self.1))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.0.opt_int(&format!("{}{col}", self.1))
    }
    fn flag(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.0.flag(&format!("{}{col}", self.1))
    }
}

/// A row of [`session_with_user_select!`]: the session, and its user if one was joined.
pub(crate) fn session_with_user_from_row(r: &impl RowExt) -> StoreResult<(Session, Option<User>)> {
    let session = session_from_row(r)?;
    let user = match r.opt_text("u_name")? {
        Some(_) => Some(user_from_row(&Prefixed(r, "u_"))?),
        None => None,
    };
    Ok((session, user))
}

pub(crate) fn link_from_row(r: &impl RowExt) -> StoreResult<IdentityLink> {
    Ok(IdentityLink {
        provider: r.text("provider")?,
        upstream_uid: r.text("upstream_uid")?,
        user: r.text("user_name")?,
        upstream_username: r.opt_text("upstream_username")?,
        upstream_email: r.opt_text("upstream_email")?,
        upstream_email_verified: r.flag("upstream_email_verified")?,
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn record_from_row(r: &impl RowExt) -> StoreResult<LoginRecord> {
    Ok(LoginRecord {
        id: r.text("id")?,
        user: r.text("user_name")?,
        at: r.int("at")?,
        login_type: r.text("login_type")?,
        provider: r.text("provider")?,
        source_ip: r.text("source_ip")?,
        user_agent: r.text("user_agent")?,
        success: r.flag("success")?,
        reason: r.text("reason")?,
    })
}

pub(crate) fn session_from_row(r: &impl RowExt) -> StoreResult<Session> {
    Ok(Session {
        id: r.text("id")?,
        user: r.text("user_name")?,
        client_id: r.text("client_id")?,
        provider: r.text("provider")?,
        created_at: r.int("created_at")?,
        expires_at: r.opt_int("expires_at")?,
        last_seen_at: r.int("last_seen_at")?,
        refresh_generation: r.int("refresh_generation")?,
        revoked_at: r.opt_int("revoked_at")?,
        source_ip: r.text("source_ip")?,
        user_agent: r.text("user_agent")?,
        upstream_groups: groups_from_json(&r.text("upstream_groups")?, "session")?,
    })
}

/// Applies the `Some` fields of an update.
pub(crate) fn apply_update(user: &mut User, update: &UserUpdate) {
    if let Some(email) = &update.email {
        user.email.clone_from(email);
    }
    if let Some(display_name) = &update.display_name {
        user.display_name.clone_from(display_name);
    }
    if let Some(groups) = &update.groups {
        user.groups.clone_from(groups);
    }
    if let Some(state) = update.state {
        user.state = state;
    }
    if let Some(uninitialized) = update.uninitialized {
        user.uninitialized = uninitialized;
    }
}

/// The stored form of a group list.
/// Takes or renews the lease `$1` for holder `$2` until `$3` when it is free, expired at `$4`,
/// or already held by `$2` (the same statement on SQLite and PostgreSQL).
pub(crate) const TRY_LEASE: &str = "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE job_leases.expires_at <= $4 OR job_leases.holder = excluded.holder";

/// Reads a JSON array of group names (`what` names the row kind in the error).
pub(crate) fn groups_from_json(text: &str, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("upstream groups of a {what}: {e}")))
}

pub(crate) fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups).to_string()
}

/// The key the unique email rule compares: Unicode lower case, computed here so that SQLite (whose
/// `lower()` folds ASCII only) and PostgreSQL (whose `lower()` depends on the locale) agree.
pub(crate) fn email_key(email: Option<&str>) -> Option<String> {
    email.map(str::to_lowercase)
}

/// Which uniqueness rule a failed write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unique {
    UserName,
    UserUid,
    UserEmail,
    Identity,
    Session,
    Other,
}

/// The error of a failed session write: a conflict names the session (or, with
/// `create_granted_session`, its grant, stored under the same id).
pub(crate) fn session_write_error(e: sqlx::Error, session: &crate::Session) -> StoreError {
    match unique_violation(&e) {
        Some(Unique::Session) => {
            StoreError::Conflict(format!("session {:?} already exists", session.id))
        }
        Some(_) => StoreError::Conflict(format!(
            "an OpenID Connect grant for session {:?} already exists",
            session.id
        )),
        None => e.into(),
    }
}

/// A grant must belong to the session it is created with.
pub(crate) fn check_grant_of(
    session: &crate::Session,
    grant: &crate::OidcGrant,
) -> StoreResult<()> {
    if grant.session_id == session.id {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "the grant of session {:?} was given with session {:?}",
            grant.session_id, session.id
        )))
    }
}

/// The error of a failed login-record write (with its session, in `finish_login`): a conflict
/// names the session or the record.
pub(crate) fn login_write_error(
    e: sqlx::Error,
    session: Option<&crate::Session>,
    record: &crate::LoginRecord,
) -> crate::StoreError {
    match (unique_violation(&e), session) {
        (None, _) => e.into(),
        (Some(Unique::Session), Some(s)) => {
            crate::StoreError::Conflict(format!("session {:?} already exists", s.id))
        }
        (Some(_), _) => {
            crate::StoreError::Conflict(format!("login record {:?} already exists", record.id))
        }
    }
}

/// Classifies a unique violation by the constraint name (PostgreSQL) or the message, which names
/// the columns (SQLite). `None` when the error is not a unique violation.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<Unique> {
    let db = err.as_database_error()?;
    if db.kind() != ErrorKind::UniqueViolation {
        return None;
    }
    let what = db.constraint().unwrap_or_else(|| db.message());
    let has = |needles: &[&str]| needles.iter().any(|n| what.contains(n));
    Some(if has(&["users_pkey", "users.name"]) {
        Unique::UserName
    } else if has(&["users_uid_unique", "users.uid"]) {
        Unique::UserUid
    } else if has(&["users_email_unique", "users.email_key"]) {
        Unique::UserEmail
    } else if has(&["identity_links"]) {
        Unique::Identity
    } else if has(&["sessions"]) {
        Unique::Session
    } else {
        Unique::Other
    })
}

/// True when the error is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == ErrorKind::ForeignKeyViolation)
}

/// The conflict error for a rejected user write.
pub(crate) fn user_conflict(err: sqlx::Error, user: &User) -> StoreError {
    user_conflict_parts(err, &user.name, &user.uid, user.email.as_deref())
}

pub(crate) fn user_conflict_parts(
    err: sqlx::Error,
    name: &str,
    uid: &str,
    email: Option<&str>,
) -> StoreError {
    match unique_violation(&err) {
        Some(Unique::UserName) => StoreError::Conflict(format!("user name {name:?} is taken")),
        Some(Unique::UserUid) => {
            StoreError::Conflict(format!("user uid {uid:?} is already used by another user"))
        }
        Some(Unique::UserEmail) => StoreError::Conflict(format!(
            "email {:?} is already used by another user",
            email.unwrap_or_default()
        )),
        Some(_) => StoreError::Conflict(format!(
            "user {name:?} conflicts with an existing row: {err}"
        )),
        None => err.into(),
    }
}

pub(crate) fn identity_conflict(link: &IdentityLink, owner: Option<String>) -> StoreError {
    match owner {
        Some(owner) => StoreError::Conflict(format!(
            "identity {}/{} is already linked to user {owner:?}",
            link.provider, link.upstream_uid
        )),
        // The other link went away between the failed insert and the lookup.
        None => StoreError::Conflict(format!(
            "identity {}/{} is already linked to another user",
            link.provider, link.upstream_uid
        )),
    }
}

pub(crate) fn user_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("user {name:?} does not exist"))
}

/// Clamps paging arguments: negative offsets and limits mean 0 (PostgreSQL rejects a negative
/// `LIMIT` and SQLite reads it as "no limit").
pub(crate) fn page(offset: i64, limit: i64) -> (i64, i64) {
    (offset.max(0), limit.max(0))
}

/// A `touch_sessions` batch with duplicate ids merged (latest time wins), sorted by id so that
/// every server locks rows in the same order.
pub(crate) fn merge_touches(seen: &[(String, UnixMillis)]) -> (Vec<String>, Vec<i64>) {
    let mut merged: BTreeMap<&str, i64> = BTreeMap::new();
    for (id, at) in seen {
        let slot = merged.entry(id.as_str()).or_insert(*at);
        *slot = (*slot).max(*at);
    }
    merged
        .into_iter()
        .map(|(id, at)| (id.to_owned(), at))
        .unzip()
}

/// The stored state of one lockout key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counter {
    pub window_start: UnixMillis,
    /// Failures in the window, counting reserved attempts still in flight.
    pub failures: i64,
    pub locked_until: Option<UnixMillis>,
}

/// The policy with out-of-range values clamped: at least one failure, at least one millisecond.
pub(crate) fn clamp(policy: LockoutPolicy) -> (i64, i64) {
    (policy.max_failures.max(1), policy.window_ms.max(1))
}

impl Counter {
    fn fresh(now: UnixMillis) -> Self {
        Counter {
            window_start: now,
            failures: 0,
            locked_until: None,
        }
    }

    /// When the row carries no more information: its window is over and it is not locked.
    pub(crate) fn expires_at(&self, policy: LockoutPolicy) -> UnixMillis {
        let (_, window) = clamp(policy);
        let window_end = self.window_start.saturating_add(window);
        self.locked_until
            .map_or(window_end, |until| until.max(window_end))
    }

    /// The counter as it stands at `now`: a new window once the current one is over or a lock
    /// on it has run out; otherwise unchanged (an active lock included).
    fn current(stored: Option<Counter>, window: i64, now: UnixMillis) -> Counter {
        match stored {
            Some(c) if now >= c.window_start.saturating_add(window) => Counter::fresh(now),
            Some(c) if c.locked_until.is_some_and(|until| until <= now) => Counter::fresh(now),
            Some(c) => c,
            None => Counter::fresh(now),
        }
    }
}

/// `lockout_reserve`: the decision and, when it changed, the counter to store.
pub(crate) fn lockout_reserve(
    stored: Option<Counter>,
    policy: LockoutPolicy,
    now: UnixMillis,
) -> (LockoutDecision, Option<Counter>) {
    let (max, window) = clamp(policy);
    if let Some(until) = stored
        .and_then(|c| c.locked_until)
        .filter(|&until| until > now)
    {
        return (LockoutDecision::Locked { until }, None);
    }
    let mut counter = Counter::current(stored, window, now);
    if counter.failures < max {
        counter.failures += 1;
        (LockoutDecision::Allowed, Some(counter))
    } else {
        // Every slot of this window is taken by failures and attempts in flight, and it is not
        // locked (the failure that fills the window locks it), so some attempt is in flight.
        // `current` only starts a fresh window (failures 0), so the stored counter is unchanged.
        (LockoutDecision::Busy, None)
    }
}

/// The keys of one lockout call, refused when one is given twice (PostgreSQL could not lock its
/// row twice in one statement, and a double count would be wrong anyway).
pub(crate) fn distinct_keys<'a>(keys: &[(&'a str, LockoutPolicy)]) -> StoreResult<Vec<&'a str>> {
    let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    for (i, k) in names.iter().enumerate() {
        if names[..i].contains(k) {
            return Err(StoreError::Conflict(format!(
                "lockout key {k:?} is given twice in one call"
            )));
        }
    }
    Ok(names)
}

/// `lockout_reserve` over several keys, all or none: the decisions, and the counters to store
/// (with their key's index), which are none unless every key is `Allowed`.
pub(crate) fn lockout_reserve_all(
    stored: &[Option<Counter>],
    keys: &[(&str, LockoutPolicy)],
    now: UnixMillis,
) -> (Vec<LockoutDecision>, Vec<(usize, Counter)>) {
    let (decisions, changes): (Vec<_>, Vec<_>) = stored
        .iter()
        .zip(keys)
        .map(|(c, (_, policy))| lockout_reserve(*c, *policy, now))
        .unzip();
    if decisions.iter().any(|d| *d != LockoutDecision::Allowed) {
        return (decisions, Vec::new());
    }
    let changes = changes
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .collect();
    (decisions, changes)
}

/// `lockout_fail`: the counter to store and the lock end if the key is now locked.
pub(crate) fn lockout_fail(
    stored: Option<Counter>,
    policy: LockoutPolicy,
    now: UnixMillis,
) -> Counter {
    let (max, window) = clamp(policy);
    let active_lock = stored
        .and_then(|c| c.locked_until)
        .filter(|&until| until > now);
    let mut counter = match Counter::current(stored, window, now) {
        // The reserved slot is already counted in this window.
        c if c.failures > 0 => c,
        // A new window, no counter, or a counter released or cleared while the attempt was in
        // flight: this failure is the first one counted.
        c => Counter { failures: 1, ..c },
    };
    counter.locked_until = active_lock;
    if counter.failures >= max {
        let until = now.saturating_add(window);
        counter.locked_until = Some(active_lock.map_or(until, |l| l.max(until)));
    }
    counter
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        max_failures: 3,
        window_ms: 1_000,
    };

    /// Pruning by count pages through the users over the limit: each page after the first must
    /// start where the last one ended (an index range), not rescan the index from its start.
    #[tokio::test]
    async fn next_page_of_users_over_the_limit_is_an_index_range() {
        use crate::Store as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let store = crate::sqlite::SqliteStore::open(path.to_str().unwrap())
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {USERS_OVER_LIMIT_AFTER}"
        )))
        .bind(100)
        .bind(500)
        .bind("user0500")
        .fetch_all(&store.reader)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING PRIMARY KEY (user_name>?)")),
            "{plan:?}"
        );
        store.close().await;
    }

    #[test]
    fn migration_lists_match_directories() {
        for (dir, files) in [
            ("sqlite", crate::sqlite::MIGRATIONS),
            ("postgres", crate::postgres::MIGRATIONS),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut on_disk: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            on_disk.sort();
            let listed: Vec<String> = files
                .iter()
                .map(|(v, d, _)| format!("{v:04}_{}.sql", d.replace(' ', "_")))
                .collect();
            assert_eq!(
                listed, on_disk,
                "every file in migrations/{dir} must be listed in MIGRATIONS, in order"
            );
            for (i, (v, _, _)) in files.iter().enumerate() {
                assert_eq!(*v, i as i64 + 1, "migration versions must be 1, 2, 3, ...");
            }
        }
    }

    #[test]
    fn reserve_counts_slots_and_refuses_when_full() {
        let (d, c) = lockout_reserve(None, POLICY, 100);
        assert_eq!(d, LockoutDecision::Allowed);
        let c = c.unwrap();
        assert_eq!(
            c,
            Counter {
                window_start: 100,
                failures: 1,
                locked_until: None
            }
        );
        let full = Counter { failures: 3, ..c };
        assert_eq!(
            lockout_reserve(Some(full), POLICY, 500),
            (LockoutDecision::Busy, None)
        );
        // The window is over: a fresh one starts.
        let (d, c) = lockout_reserve(Some(full), POLICY, 1_100);
        assert_eq!(d, LockoutDecision::Allowed);
        assert_eq!(
            c.unwrap(),
            Counter {
                window_start: 1_100,
                failures: 1,
                locked_until: None
            }
        );
    }

    #[test]
    fn fail_locks_at_max_and_lock_runs_out() {
        let c = Counter {
            window_start: 0,
            failures: 3,
            locked_until: None,
        };
        let locked = lockout_fail(Some(c), POLICY, 400);
        assert_eq!(locked.locked_until, Some(1_400));
        assert_eq!(
            lockout_reserve(Some(locked), POLICY, 1_399),
            (LockoutDecision::Locked { until: 1_400 }, None)
        );
        let (d, c) = lockout_reserve(Some(locked), POLICY, 1_400);
        assert_eq!(d, LockoutDecision::Allowed);
        assert_eq!(
            c.unwrap(),
            Counter {
                window_start: 1_400,
                failures: 1,
                locked_until: None
            }
        );
        assert_eq!(locked.expires_at(POLICY), 1_400);
    }

    #[test]
    fn fail_after_rollover_or_clear_counts_once() {
        assert_eq!(
            lockout_fail(None, POLICY, 50),
            Counter {
                window_start: 50,
                failures: 1,
                locked_until: None
            }
        );
        let old = Counter {
            window_start: 0,
            failures: 2,
            locked_until: None,
        };
        assert_eq!(
            lockout_fail(Some(old), POLICY, 1_000),
            Counter {
                window_start: 1_000,
                failures: 1,
                locked_until: None
            }
        );
        let released = Counter {
            window_start: 0,
            failures: 0,
            locked_until: None,
        };
        assert_eq!(lockout_fail(Some(released), POLICY, 10).failures, 1);
    }

    #[test]
    fn merge_touches_keeps_latest_and_sorts() {
        let seen = vec![
            ("b".to_owned(), 5),
            ("a".to_owned(), 3),
            ("b".to_owned(), 9),
            ("b".to_owned(), 1),
        ];
        assert_eq!(
            merge_touches(&seen),
            (vec!["a".to_owned(), "b".to_owned()], vec![3, 9])
        );
    }
}
