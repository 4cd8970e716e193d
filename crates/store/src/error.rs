use thiserror::Error;

/// Errors of every store call.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken; the message names the field (`user name "alice" is taken`).
    #[error("{0}")]
    Conflict(String),
    /// The row the call needs does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The database URL is not one Portcullis understands.
    #[error("{0}")]
    InvalidUrl(String),
    /// Stored data could not be read back (a corrupt row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The directory for a SQLite database file could not be created.
    #[error("cannot create the directory {path:?} for the SQLite database: {source}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// A store call that ended without an answer because the task running it was cancelled (the
    /// runtime is shutting down). It counts as unavailable.
    pub fn interrupted() -> StoreError {
        StoreError::Database(sqlx::Error::WorkerCrashed)
    }

    /// Whether the database could not be reached at all (down, unreachable, no connection
    /// within the pool's timeout), as opposed to a bad row or a broken rule: the caller answers
    /// "try again later" (503) rather than reporting an internal error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // `Protocol`: the connection closed or answered garbage mid-handshake.
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                if let Some(sqlite) = e.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                    return sqlite_unavailable(sqlite);
                }
                // SQLSTATE class 08 (connection exception), 53 (insufficient resources: disk
                // full, out of memory, too many connections) and 57P (the server is shutting
                // down, restarting or refusing connections).
                e.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
                })
            }
            _ => false,
        }
    }
}

/// SQLite's transient failures, by primary result code (the low byte of the extended code):
/// `SQLITE_BUSY` (5, the busy timeout ran out), `SQLITE_IOERR` (10), `SQLITE_FULL` (13, the
/// disk is full) and `SQLITE_CANTOPEN` (14). The database is intact; the write did not happen.
fn sqlite_unavailable(e: &sqlx::sqlite::SqliteError) -> bool {
    use sqlx::error::DatabaseError as _;
    let primary = e
        .code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff);
    matches!(primary, Some(5 | 10 | 13 | 14))
}
