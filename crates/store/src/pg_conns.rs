//! The PostgreSQL store's connections: sqlx's pool, with a short list of its own in front that
//! gives back a connection whose statement ran to its end without sqlx's check.
//!
//! sqlx 0.9 pings every connection it takes back into its pool, a whole round trip after every
//! statement (a third of a password login's round trips), because a connection dropped in the
//! middle of a statement may still have answers to read or a transaction to roll back. A
//! connection whose statement ran to its end (or ended in an error the server sent) has neither,
//! so [`PgConns`] keeps it in its own list and hands it out again as it is. A connection dropped
//! early (its caller was cancelled) or broken (an I/O error) goes back through sqlx's check, which
//! reads what is left or closes it, and so does the connection of every transaction.
//!
//! A semaphore with one permit per connection bounds the connections in use: a caller holding a
//! permit always finds a listed connection or room in sqlx's pool, so no caller waits in sqlx's
//! pool for a connection that sits in this list.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use either::Either;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use sqlx::pool::{MaybePoolConnection, PoolConnection};
use sqlx::postgres::{PgPool, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Execute, Executor, PgConnection, Postgres, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listed connection unused for this long is pinged before it is handed out again (a restarted
/// server has closed it meanwhile); a more recently used one is handed out as it is.
pub(crate) const RECENTLY_USED: Duration = Duration::from_secs(1);

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

/// A connection ready for use, and when it was last used.
type Listed = (PoolConnection<Postgres>, Instant);

/// One connection, for one statement. Given back to the list when [`Lease::finished`] saw the
/// statement end; otherwise to sqlx's pool, through its check.
struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    reusable: bool,
    conns: Arc<Inner>,
    permit: Option<OwnedSemaphorePermit>,
}

/// A transaction on one of the store's connections; derefs to the connection.
pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    _permit: OwnedSemaphorePermit,
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
        let conn = loop {
            let listed = match inner.idle.lock().expect("connection list").as_mut() {
                Some(idle) => idle.pop(),
                None => return Err(sqlx::Error::PoolClosed),
            };
            let Some((mut conn, used_at)) = listed else {
                // The permit guarantees room in sqlx's pool (or one of its connections on the way
                // back there), so this does not wait for a listed connection.
                break inner.pool.acquire().await?;
            };
            if used_at.elapsed() < RECENTLY_USED || sqlx::Connection::ping(&mut *conn).await.is_ok()
            {
                break conn;
            }
            conn.close_on_drop();
        };
        Ok(Lease {
            conn: Some(conn),
            reusable: false,
            conns: self.0.clone(),
            permit: Some(permit),
        })
    }

    /// Starts a transaction (with `statement`, or a plain `BEGIN`), in a task of its own so that
    /// it always runs to completion. sqlx 0.9 counts a transaction as open only once the server
    /// has answered `BEGIN`: a caller cancelled in between (a client that gave up) returned a
    /// connection inside a transaction that nobody would roll back, and every later user of that
    /// connection failed ("cannot execute INSERT in a read-only transaction", then "current
    /// transaction is aborted"). Run to completion, `BEGIN` either fails or yields a
    /// `Transaction`, whose drop rolls back, even when the caller is gone and drops the result.
    /// Proved by the conformance case `cancelled_calls_leave_no_connection_in_a_transaction`.
    pub(crate) async fn begin(&self, statement: Option<&'static str>) -> Result<PgTx, sqlx::Error> {
        let (conn, permit) = self.lease().await?.into_parts();
        let started = tokio::spawn(Transaction::begin(
            MaybePoolConnection::PoolConnection(conn),
            statement
                .map(sqlx::AssertSqlSafe)
                .map(sqlx::SqlSafeStr::into_sql_str),
        ));
        match started.await {
            Ok(tx) => Ok(PgTx {
                tx: tx?,
                _permit: permit,
            }),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(sqlx::Error::WorkerCrashed),
        }
    }

    /// Closes every connection, waiting for those in use to come back.
    pub(crate) async fn close(&self) {
        self.0.permits.close();
        let listed = self.0.idle.lock().expect("connection list").take();
        drop(listed);
        self.0.pool.close().await;
    }
}

impl Lease {
    /// Records how the statement ended: a connection that answered (rows, or an error the server
    /// sent) may be listed again; after an I/O or protocol error it goes through sqlx's check.
    fn finished<T>(&mut self, result: &Result<T, sqlx::Error>) {
        self.reusable = matches!(result, Ok(_) | Err(sqlx::Error::Database(_)));
    }

    /// The connection and the permit, for a transaction, whose connection goes back to sqlx's
    /// pool (and its check) when the transaction ends.
    fn into_parts(mut self) -> (PoolConnection<Postgres>, OwnedSemaphorePermit) {
        let parts = (self.conn.take(), self.permit.take());
        match parts {
            (Some(conn), Some(permit)) => (conn, permit),
            _ => unreachable!("a lease has its connection and permit until dropped"),
        }
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
        if self.reusable
            && let Some(idle) = self.conns.idle.lock().expect("connection list").as_mut()
        {
            idle.push((conn, Instant::now()));
            return;
        }
        // Dropped here, outside the lock: back to sqlx's pool, which checks it.
        drop(conn);
    }
}

impl PgTx {
    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls the transaction back.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for PgTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
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
