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
