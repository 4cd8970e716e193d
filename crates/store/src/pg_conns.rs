//! The PostgreSQL store's connections: sqlx's pool, with a short list of its own in front that
//! gives back a connection whose statement ran to its end without sqlx's check.
//!
//! sqlx 0.9 pings every connection it takes back into its pool, a whole round trip after every
//! statement (a third of a password login's round trips), because a connection dropped in the
//! middle of a statement may still have answers to read or a transaction to roll back. A
//! connection whose statement ran to its end (or ended in an error the server sent) has neither,
//! so [`PgConns`] keeps it in its own list and hands it out again as it is. A connection dropped
//! early (its caller was cancelled) or broken (an I/O error) goes back through sqlx's check, which
//! reads what is left or closes it. Transactions are the store's own ([`PgTx`]): a connection
//! goes back on the list after `COMMIT` or `ROLLBACK`, and one dropped inside a transaction is
//! rolled back first.
//!
//! A connection goes back to sqlx's pool after its first use five minutes after it was taken
//! from there, so that sqlx's maximum lifetime and idle timeout still recycle connections.
//!
//! A semaphore with one permit per connection bounds the connections in use: a caller holding a
//! permit always finds a listed connection or room in sqlx's pool, so no caller waits in sqlx's
//! pool for a connection that sits in this list.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Execute, Executor, PgConnection, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listed connection unused for this long is pinged before it is handed out again (a restarted
/// server has closed it meanwhile); a more recently used one is handed out as it is.
pub(crate) const RECENTLY_USED: Duration = Duration::from_secs(1);

/// A connection taken from sqlx's pool this long ago goes back there after its next use, so that
/// sqlx's own rules (its maximum lifetime and idle timeout) still recycle it now and then.
const BACK_TO_SQLX_AFTER: Duration = Duration::from_secs(300);

/// The store's connections; cheap to clone (all clones share them).
#[derive(Debug, Clone)]
pub(crate) struct PgConns(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    /// Connections ready for use; `None` once closed.
    idle: Mutex<Option<Vec<Listed>>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// A connection ready for use, when it was last used, and when it was taken from sqlx's pool.
type Listed = (PoolConnection<Postgres>, Instant, Instant);

/// One connection, for one statement. Given back to the list when [`Lease::finished`] saw the
/// statement end; otherwise to sqlx's pool, through its check.
struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    /// When the connection was taken from sqlx's pool.
    taken_at: Instant,
    reusable: bool,
    conns: Arc<Inner>,
    permit: Option<OwnedSemaphorePermit>,
}

/// A transaction on one of the store's connections; derefs to the connection. Committed or
/// rolled back, its connection goes back on the list. Dropped while open (an error returned from
/// inside it, or a cancelled caller), it is rolled back in a task of its own, which then lists
/// the connection, or closes it if the rollback fails.
pub(crate) struct PgTx {
    lease: Lease,
    open: bool,
}

impl PgConns {
    /// Wraps `pool`, whose size and acquire timeout this keeps to.
    pub(crate) fn new(pool: PgPool) -> PgConns {
        let size = pool.options().get_max_connections() as usize;
        let acquire_timeout = pool.options().get_acquire_timeout();
        PgConns(Arc::new(Inner {
            pool,
            idle: Mutex::new(Some(Vec::with_capacity(size))),
            permits: Arc::new(Semaphore::new(size)),
            acquire_timeout,
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
        let (conn, taken_at) = loop {
            let listed = match inner.idle.lock().expect("connection list").as_mut() {
                Some(idle) => idle.pop(),
                None => return Err(sqlx::Error::PoolClosed),
            };
            let Some((mut conn, used_at, taken_at)) = listed else {
                // The permit guarantees room in sqlx's pool (or one of its connections on the way
                // back there), so this does not wait for a listed connection.
                break (inner.pool.acquire().await?, Instant::now());
            };
            if used_at.elapsed() < RECENTLY_USED || sqlx::Connection::ping(&mut *conn).await.is_ok()
            {
                break (conn, taken_at);
            }
            conn.close_on_drop();
        };
        Ok(Lease {
            conn: Some(conn),
            taken_at,
            reusable: false,
            conns: self.0.clone(),
            permit: Some(permit),
        })
    }

    /// Starts a transaction (with `statement`, or a plain `BEGIN`). The transaction counts as
    /// open from before `BEGIN` is sent: a caller cancelled while waiting for the answer drops a
    /// connection that may be inside it, and the drop rolls it back. (sqlx 0.9's own
    /// transactions count as open only once `BEGIN` is answered, so such a connection went back
    /// to its pool inside a transaction that nobody rolled back, and every later user of it
    /// failed: "cannot execute INSERT in a read-only transaction", then "current transaction is
    /// aborted". Proved by the conformance case
    /// `cancelled_calls_leave_no_connection_in_a_transaction`.)
    pub(crate) async fn begin(&self, statement: Option<&'static str>) -> Result<PgTx, sqlx::Error> {
        let mut tx = PgTx {
            lease: self.lease().await?,
            open: true,
        };
        let begun = sqlx::raw_sql(statement.unwrap_or("BEGIN"))
            .execute(tx.lease.conn())
            .await;
        if begun.is_err() && server_answered(&begun) {
            // An error the server sent: no transaction was started.
            tx.ended();
        }
        begun.map(|_| tx)
    }

    /// Closes every connection, waiting for those in use to come back.
    pub(crate) async fn close(&self) {
        self.0.permits.close();
        let listed = self.0.idle.lock().expect("connection list").take();
        drop(listed);
        self.0.pool.close().await;
    }
}

/// Whether a statement's outcome is the server's answer (rows, or an error the server sent): the
/// connection then read everything up to that answer and is intact. After any other error (I/O,
/// protocol) it may be broken; after a `FATAL` or `PANIC` error the server has closed it
/// (`terminating connection due to administrator command` when the server shuts down, fails
/// over or an operator ends the session): listing it again would fail the next caller too.
fn server_answered<T>(result: &Result<T, sqlx::Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(sqlx::Error::Database(e)) => !e
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| {
                matches!(
                    pg.severity(),
                    sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
                )
            }),
        Err(_) => false,
    }
}

impl Inner {
    /// Puts a connection outside any transaction, with nothing left to read, on the list. Once
    /// closed, or once the connection was taken from sqlx's pool [`BACK_TO_SQLX_AFTER`] ago,
    /// gives it back to sqlx's pool instead.
    fn list(&self, conn: PoolConnection<Postgres>, taken_at: Instant) {
        if taken_at.elapsed() >= BACK_TO_SQLX_AFTER {
            return;
        }
        if let Some(idle) = self.idle.lock().expect("connection list").as_mut() {
            idle.push((conn, Instant::now(), taken_at));
        }
    }
}

impl Lease {
    /// Records how the statement ended: a connection that answered (rows, or an error the server
    /// sent) may be listed again; after an I/O or protocol error it goes through sqlx's check.
    fn finished<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.reusable = server_answered(result);
    }

    fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("a lease has its connection")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.reusable {
            self.conns.list(conn, self.taken_at);
        }
        // Otherwise dropped here: back to sqlx's pool, which checks it.
    }
}

impl PgTx {
    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.end("COMMIT").await
    }

    /// Rolls the transaction back.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end("ROLLBACK").await
    }

    async fn end(mut self, statement: &'static str) -> Result<(), sqlx::Error> {
        let ended = sqlx::raw_sql(statement).execute(self.lease.conn()).await;
        // After an error the server sent (a commit that failed), the transaction is over too:
        // PostgreSQL rolled it back.
        if server_answered(&ended) {
            self.ended();
        }
        ended.map(|_| ())
    }

    /// The connection is outside any transaction again, and may be listed.
    fn ended(&mut self) {
        self.open = false;
        self.lease.reusable = true;
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if !self.open {
            return; // the lease lists the connection
        }
        let (Some(conn), Some(permit)) = (self.lease.conn.take(), self.lease.permit.take()) else {
            return;
        };
        let rolling_back = RollingBack(Some(conn));
        let (conns, taken_at) = (self.lease.conns.clone(), self.lease.taken_at);
        // Outside a runtime (never in the server), `rolling_back` is dropped here: closed.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(rolling_back.run(conns, taken_at, permit));
        }
    }
}

/// A connection being rolled back after its transaction was dropped while open; closed if the
/// rollback does not finish (it failed, or the runtime shut down under it).
struct RollingBack(Option<PoolConnection<Postgres>>);

impl RollingBack {
    async fn run(mut self, conns: Arc<Inner>, taken_at: Instant, _permit: OwnedSemaphorePermit) {
        let Some(conn) = self.0.as_mut() else { return };
        // Reads whatever the cancelled statement left unread, then ends the transaction.
        if sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await.is_ok()
            && let Some(conn) = self.0.take()
        {
            conns.list(conn, taken_at);
        }
    }
}

impl Drop for RollingBack {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

impl std::ops::Deref for PgTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.lease
            .conn
            .as_ref()
            .expect("an open transaction has its connection")
    }
}

impl std::ops::DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.lease.conn()
    }
}

impl<'p> Executor<'p> for &'_ PgConns {
    type Database = Postgres;

    /// Runs the statement to its end on one connection and then yields its results: the
    /// connection is free again before the caller reads them. (The store's statements return a
    /// bounded number of rows.)
    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conns = self.clone();
        stream::once(async move {
            let mut lease = conns.lease().await?;
            let results: Result<Vec<_>, _> = lease.conn().fetch_many(query).try_collect().await;
            lease.finished(&results);
            results
        })
        .map_ok(|results| stream::iter(results.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let conns = self.clone();
        Box::pin(async move {
            let mut lease = conns.lease().await?;
            let row = lease.conn().fetch_optional(query).await;
            lease.finished(&row);
            row
        })
    }

    fn prepare_with<'e>(
        self,
        sql: sqlx::SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let conns = self.clone();
        Box::pin(async move {
            let mut lease = conns.lease().await?;
            let statement = lease.conn().prepare_with(sql, parameters).await;
            lease.finished(&statement);
            statement
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(conns: &PgConns) -> usize {
        conns.0.idle.lock().unwrap().as_ref().map_or(0, Vec::len)
    }

    /// Against the PostgreSQL of the store's tests (`PORTCULLIS_TEST_POSTGRES`, default the
    /// local server's `test` database).
    #[tokio::test]
    async fn finished_connections_are_listed_and_old_ones_go_back_to_sqlx() {
        let url = std::env::var("PORTCULLIS_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("the store's tests need PostgreSQL");
        let conns = PgConns::new(pool);

        sqlx::query("SELECT 1").execute(&conns).await.unwrap();
        assert_eq!(
            listed(&conns),
            1,
            "a finished statement's connection is listed"
        );
        let failed = sqlx::query("SELECT 1/0").execute(&conns).await;
        assert!(matches!(failed, Err(sqlx::Error::Database(_))));
        assert_eq!(
            listed(&conns),
            1,
            "so is one whose statement the server refused"
        );
        let tx = conns.begin(None).await.unwrap();
        assert_eq!(listed(&conns), 0);
        tx.commit().await.unwrap();
        assert_eq!(listed(&conns), 1, "and one whose transaction was committed");

        let mut lease = conns.lease().await.unwrap();
        lease.taken_at = Instant::now()
            .checked_sub(BACK_TO_SQLX_AFTER)
            .expect("the machine has been up for minutes");
        lease.reusable = true;
        drop(lease);
        assert_eq!(
            listed(&conns),
            0,
            "an old connection goes back to sqlx's pool"
        );
        // sqlx takes it back in a task of its own (after its check).
        let deadline = Instant::now() + Duration::from_secs(10);
        while conns.0.pool.num_idle() == 0 {
            assert!(Instant::now() < deadline, "sqlx's pool never got it back");
            tokio::task::yield_now().await;
        }
        conns.close().await;
    }

    /// A connection the server ended (an operator's `pg_terminate_backend`, a shutdown) fails the
    /// statement that finds out, and only that one: it is not listed again.
    #[tokio::test]
    async fn a_connection_the_server_ended_is_not_listed_again() {
        let url = std::env::var("PORTCULLIS_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("the store's tests need PostgreSQL");
        let conns = PgConns::new(pool);
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&conns)
            .await
            .unwrap();
        assert_eq!(listed(&conns), 1);
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(ended);
        // The listed connection was used less than a second ago, so it is handed out unpinged:
        // this statement finds the connection ended (as the server's FATAL error or as EOF).
        let failed = sqlx::query("SELECT 1").execute(&conns).await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(listed(&conns), 0, "the ended connection is not listed");
        let again: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&conns)
            .await
            .expect("the next statement gets a new connection");
        assert_eq!(again, 1);
        conns.close().await;
    }
}
