//! The SQLite store's connections: a small pool of its own instead of sqlx's.
//!
//! Every command on a sqlx SQLite connection is a hand-over to the connection's own thread and
//! back, two context switches, and sqlx 0.9's pool adds one more command, a ping, every time it
//! takes a connection back. A password login made about 24 hand-overs, 5 of them these pings; on
//! a busy core the switches cost more than the statements (a `perf` profile of federated logins
//! put a quarter of the server's CPU time in the kernel's `finish_task_switch`).
//!
//! The ping protects network connections, which a cancelled caller can leave with answers unread.
//! A SQLite connection has none: its thread runs commands in order, so the next caller's command
//! simply waits behind whatever is left of a cancelled one. [`SqliteConns`] therefore lists a
//! connection again as soon as its caller is done with it. Transactions are the one state that
//! outlives a command: [`SqliteTx`] queues a rollback when it is dropped open (as sqlx's own
//! transactions do), and a connection still inside a transaction when it is handed out is checked
//! and, if stuck, replaced (see [`not_stuck_in_a_transaction`]).
//!
//! The hottest writes (a login's end, a granted session) skip even the transaction's own
//! hand-overs: [`SqliteConns::execute_in_transaction`] sends `BEGIN IMMEDIATE; ...; COMMIT` as one
//! command. A caller cancelled inside it leaves the connection marked, and the connection's next
//! lease rolls back whatever the batch left open before handing it out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement,
    SqliteTransactionManager, SqliteTypeInfo,
};
use sqlx::{ConnectOptions as _, Connection as _, Execute, Executor, Sqlite};
use sqlx_core::transaction::TransactionManager as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections to one SQLite database, opened on demand up to a size; cheap to clone (all
/// clones share them).
#[derive(Debug, Clone)]
pub(crate) struct SqliteConns(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    options: SqliteConnectOptions,
    size: u32,
    /// Connections ready for use, the most recently used last; `None` once closed.
    idle: Mutex<Option<Vec<Listed>>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    /// Whether a connection stuck in a transaction is replaced (not for an in-memory database,
    /// which lives only as long as its one connection).
    replace_stuck: bool,
}

/// A connection ready for use.
#[derive(Debug)]
struct Listed {
    conn: SqliteConnection,
    /// Its last caller went away inside a one-command transaction, which may still be open.
    batch_unfinished: bool,
}

/// One connection, lent to one caller; listed again when dropped.
struct Lease {
    conn: Option<SqliteConnection>,
    conns: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
    /// A one-command transaction was sent and has not been seen to end.
    batch_unfinished: bool,
}

/// A transaction on one of the store's connections; derefs to the connection. Dropped while open
/// (an error returned from inside it, or a cancelled caller), it queues a `ROLLBACK` on the
/// connection's thread, ahead of any later caller's command.
pub(crate) struct SqliteTx {
    lease: Lease,
    open: bool,
}

impl SqliteConns {
    /// Wraps `first`, an open connection made with `options`, and opens up to `size` in all on
    /// demand.
    pub(crate) fn new(
        first: SqliteConnection,
        options: SqliteConnectOptions,
        size: u32,
        acquire_timeout: Duration,
    ) -> SqliteConns {
        Self::build(first, options, size, acquire_timeout, true)
    }

    /// Wraps the one connection of an in-memory database, which lives only as long as that
    /// connection: it is never replaced, not even when stuck in a transaction.
    pub(crate) fn in_memory(
        only: SqliteConnection,
        options: SqliteConnectOptions,
        acquire_timeout: Duration,
    ) -> SqliteConns {
        Self::build(only, options, 1, acquire_timeout, false)
    }

    fn build(
        first: SqliteConnection,
        options: SqliteConnectOptions,
        size: u32,
        acquire_timeout: Duration,
        replace_stuck: bool,
    ) -> SqliteConns {
        SqliteConns(Arc::new(Inner {
            options,
            size,
            idle: Mutex::new(Some(vec![Listed {
                conn: first,
                batch_unfinished: false,
            }])),
            permits: Arc::new(Semaphore::new(size as usize)),
            acquire_timeout,
            replace_stuck,
        }))
    }

    async fn lease(&self) -> Result<Lease, sqlx::Error> {
        let inner = &self.0;
        let permit = match tokio::time::timeout(
            inner.acquire_timeout,
            inner.permits.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let conn = loop {
            let listed = match inner.idle.lock().expect("connection list").as_mut() {
                Some(idle) => idle.pop(),
                None => return Err(sqlx::Error::PoolClosed),
            };
            // The permit guarantees that fewer than `size` connections are open or lent.
            let Some(Listed {
                mut conn,
                batch_unfinished,
            }) = listed
            else {
                break inner.options.connect().await?;
            };
            let usable = (!batch_unfinished || end_unfinished_batch(&mut conn).await)
                && (!inner.replace_stuck || not_stuck_in_a_transaction(&mut conn).await?);
            if usable || !inner.replace_stuck {
                break conn;
            }
            // Its thread closes the database handle when the connection is dropped, which also
            // rolls back what it left open.
        };
        Ok(Lease {
            conn: Some(conn),
            conns: self.0.clone(),
            _permit: permit,
            batch_unfinished: false,
        })
    }

    /// Runs `query`, whose statements must be wrapped as `BEGIN IMMEDIATE; ...; COMMIT` (see
    /// [`in_one_transaction`]), as one command to a connection's thread: all of it or none. On an
    /// error the transaction is rolled back before the error is returned; a caller cancelled
    /// before the answer leaves that to the connection's next lease.
    pub(crate) async fn execute_in_transaction<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<SqliteQueryResult, sqlx::Error> {
        let mut lease = self.lease().await?;
        lease.batch_unfinished = true;
        let result = lease.conn().execute(query).await;
        if result.is_err() && !end_unfinished_batch(lease.conn()).await {
            // Listed as unfinished: the next lease tries again, or replaces the connection.
            return result;
        }
        lease.batch_unfinished = false;
        result
    }

    /// Starts a transaction, with `statement` (`BEGIN IMMEDIATE` for writes) or a plain `BEGIN`.
    pub(crate) async fn begin(
        &self,
        statement: Option<&'static str>,
    ) -> Result<SqliteTx, sqlx::Error> {
        let mut lease = self.lease().await?;
        // A caller cancelled while waiting for the answer is covered by the connection's thread:
        // it rolls back a `BEGIN` nobody received the answer to.
        SqliteTransactionManager::begin(lease.conn(), statement.map(sqlx::SqlStr::from_static))
            .await?;
        Ok(SqliteTx { lease, open: true })
    }

    /// Waits for the connections in use to come back, then closes them all.
    pub(crate) async fn close(&self) {
        let all = self.0.permits.acquire_many(self.0.size).await;
        self.0.permits.close();
        let listed = self.0.idle.lock().expect("connection list").take();
        drop(all);
        for Listed { conn, .. } in listed.unwrap_or_default() {
            if let Err(e) = conn.close().await {
                tracing::warn!(error = %e, "closing a SQLite connection failed");
            }
        }
    }
}

/// Wraps a batch of statements for [`SqliteConns::execute_in_transaction`].
macro_rules! in_one_transaction {
    ($($sql:expr),+ $(,)?) => {
        concat!("BEGIN IMMEDIATE; ", $($sql,)+ "; COMMIT")
    };
}
pub(crate) use in_one_transaction;

/// Rolls back what a one-command transaction left open, if anything; whether the connection is
/// out of any transaction now. SQLite answers "no transaction is active" when the batch had
/// ended (committed, or rolled back by SQLite itself).
async fn end_unfinished_batch(conn: &mut SqliteConnection) -> bool {
    match conn.execute("ROLLBACK").await {
        Ok(_) => true,
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => true,
        Err(e) => {
            tracing::warn!(error = %e, "rolling back an unfinished SQLite transaction failed");
            false
        }
    }
}

/// Whether a connection may be handed out: not when it is stuck in a transaction.
///
/// Works around sqlx 0.9's SQLite worker: when `COMMIT` fails with `SQLITE_FULL` or an I/O error,
/// SQLite has already rolled the transaction back, so the `ROLLBACK` sqlx sends when the
/// transaction is dropped fails too and the worker keeps a transaction depth of 1 forever; every
/// later `BEGIN` on that connection would fail ("begin_with at non-zero transaction depth"). Such a
/// connection is closed instead (a new one is opened). The ping goes through the connection's
/// command queue, behind any rollback a dropped transaction queued, so a connection whose
/// rollback is merely pending is kept.
async fn not_stuck_in_a_transaction(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let stuck = conn.is_in_transaction();
    if stuck {
        tracing::warn!("closing a SQLite connection left inside a failed transaction");
    }
    Ok(!stuck)
}

impl Lease {
    fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a lease has its connection")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Some(idle) = self.conns.idle.lock().expect("connection list").as_mut()
        {
            idle.push(Listed {
                conn,
                batch_unfinished: self.batch_unfinished,
            });
        }
        // Once closed, the connection is dropped here and its thread closes it.
    }
}

impl SqliteTx {
    /// Commits the transaction.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::commit(self.lease.conn()).await?;
        self.open = false;
        Ok(())
    }

    /// Rolls the transaction back.
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        SqliteTransactionManager::rollback(self.lease.conn()).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(self.lease.conn());
        }
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.lease
            .conn
            .as_ref()
            .expect("an open transaction has its connection")
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.lease.conn()
    }
}

impl<'p> Executor<'p> for &'_ SqliteConns {
    type Database = Sqlite;

    /// Runs the statement to its end on one connection and then yields its results: the
    /// connection is free again before the caller reads them. (The store's statements return a
    /// bounded number of rows.)
    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let conns = self.clone();
        stream::once(async move {
            let mut lease = conns.lease().await?;
            let results: Vec<_> = lease.conn().fetch_many(query).try_collect().await?;
            Ok::<_, sqlx::Error>(results)
        })
        .map_ok(|results| stream::iter(results.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let conns = self.clone();
        Box::pin(async move { conns.lease().await?.conn().fetch_optional(query).await })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<SqliteStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let conns = self.clone();
        Box::pin(async move {
            conns
                .lease()
                .await?
                .conn()
                .prepare_with(sql, parameters)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(conns: &SqliteConns) -> usize {
        conns.0.idle.lock().unwrap().as_ref().map_or(0, Vec::len)
    }

    async fn open(dir: &tempfile::TempDir, size: u32) -> SqliteConns {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true);
        let first = options.connect().await.unwrap();
        SqliteConns::new(first, options, size, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn connections_are_listed_after_use_and_reused_without_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir, 2).await;
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(&conns)
            .await
            .unwrap();
        assert_eq!(listed(&conns), 1, "one connection, listed again after use");
        let failed = sqlx::query("INSERT INTO t (v) VALUES (NULL)")
            .execute(&conns)
            .await;
        assert!(matches!(failed, Err(sqlx::Error::Database(_))));
        assert_eq!(listed(&conns), 1, "also after a statement SQLite refused");

        let mut tx = conns.begin(Some("BEGIN IMMEDIATE")).await.unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        // Another caller meanwhile gets a second connection, which sees nothing uncommitted.
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&conns)
            .await
            .unwrap();
        assert_eq!(seen, 0);
        tx.commit().await.unwrap();
        assert_eq!(listed(&conns), 2);

        // Dropped open: rolled back before the connection's next command.
        let mut tx = conns.begin(Some("BEGIN IMMEDIATE")).await.unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        for _ in 0..4 {
            let values: Vec<i64> = sqlx::query_scalar("SELECT v FROM t")
                .fetch_all(&conns)
                .await
                .unwrap();
            assert_eq!(values, vec![1]);
        }
        let tx = conns.begin(Some("BEGIN IMMEDIATE")).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(listed(&conns), 2, "no connection was replaced");
        conns.close().await;
        assert!(matches!(
            sqlx::query("SELECT 1").execute(&conns).await,
            Err(sqlx::Error::PoolClosed)
        ));
    }

    async fn values(conns: &SqliteConns) -> Vec<i64> {
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(conns)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_one_command_transaction_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir, 1).await;
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(&conns)
            .await
            .unwrap();
        let done = conns
            .execute_in_transaction(sqlx::query(in_one_transaction!(
                "INSERT INTO t (v) VALUES ($1); INSERT INTO t (v) VALUES ($2)"
            )))
            .await;
        assert!(done.is_err(), "no values bound: the first insert fails");
        let both = sqlx::query(in_one_transaction!(
            "INSERT INTO t (v) VALUES ($1); INSERT INTO t (v) VALUES ($2)"
        ));
        conns
            .execute_in_transaction(both.bind(1).bind(2))
            .await
            .unwrap();
        // The second statement fails: the first one's row is rolled back with it.
        let failing = sqlx::query(in_one_transaction!(
            "INSERT INTO t (v) VALUES ($1); INSERT INTO t (v) VALUES ($2)"
        ));
        let failed = conns
            .execute_in_transaction(failing.bind(3).bind(None::<i64>))
            .await;
        assert!(
            matches!(failed, Err(sqlx::Error::Database(_))),
            "{failed:?}"
        );
        assert_eq!(values(&conns).await, [1, 2]);
        // The connection is out of the transaction: a new one starts and commits.
        let tx = conns.begin(Some("BEGIN IMMEDIATE")).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(listed(&conns), 1);
        conns.close().await;
    }

    #[tokio::test]
    async fn a_transaction_left_open_by_a_cancelled_batch_is_rolled_back_at_the_next_lease() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir, 1).await;
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(&conns)
            .await
            .unwrap();
        // What a caller cancelled half-way through a batch leaves: the batch's transaction
        // open, with a statement done and no `COMMIT`.
        let mut lease = conns.lease().await.unwrap();
        lease.batch_unfinished = true;
        lease
            .conn()
            .execute("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES (7)")
            .await
            .unwrap();
        drop(lease);
        assert_eq!(values(&conns).await, Vec::<i64>::new());
        conns
            .execute_in_transaction(sqlx::query(in_one_transaction!(
                "INSERT INTO t (v) VALUES (8)"
            )))
            .await
            .unwrap();
        assert_eq!(values(&conns).await, [8]);
        // A batch that did end (committed) before its caller went away: the extra rollback
        // finds nothing to do, and the connection stays.
        let mut lease = conns.lease().await.unwrap();
        lease.batch_unfinished = true;
        drop(lease);
        assert_eq!(values(&conns).await, [8]);
        assert_eq!(listed(&conns), 1, "no connection was replaced");
        conns.close().await;
    }

    #[tokio::test]
    async fn callers_wait_for_a_connection_when_all_are_lent() {
        let dir = tempfile::tempdir().unwrap();
        let conns = open(&dir, 1).await;
        let tx = conns.begin(None).await.unwrap();
        let waiting = tokio::spawn({
            let conns = conns.clone();
            async move { sqlx::query("SELECT 1").execute(&conns).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the only connection is lent");
        tx.commit().await.unwrap();
        waiting.await.unwrap().unwrap();
        assert_eq!(listed(&conns), 1);
        conns.close().await;
    }
}
