//! What the store's SQL fails with, and `optional()` for a query whose
//! row may be missing.

use std::fmt;

/// What a query or statement may fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded database refused or failed the statement.
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// The PostgreSQL server refused or failed the statement, or the
    /// connection to it failed.
    #[error("postgres: {}", crate::store::postgres::describe(.0))]
    Postgres(tokio_postgres::Error),
    /// The store is shutting down and opens no new connection.
    #[error("the store is closing")]
    Closing,
    /// PostgreSQL did not answer within the store's bound (connecting, a
    /// statement, `COMMIT`): the connection was dropped; a `COMMIT`'s
    /// outcome is unknown.
    #[error("postgres: no answer within {} ms; connection dropped", .0.as_millis())]
    Timeout(std::time::Duration),
    /// PostgreSQL did not answer the last connection attempt and another
    /// one is under way: not tried again (the job fails fast).
    #[error("postgres: the server does not answer; another connection is trying it")]
    Unreachable,
    /// A query that must return a row returned none.
    #[error("the query returned no rows")]
    NoRows,
    /// A column's value is not what the reader expects (type, range or
    /// content).
    #[error("column {column}: {reason}")]
    Column {
        /// Zero-based column index.
        column: usize,
        /// What was wrong, in words.
        reason: String,
    },
    /// A parameter cannot be bound (an unsigned value past `i64::MAX`, a
    /// value the module could not encode).
    #[error("parameter {index}: {reason}")]
    Parameter {
        /// One-based parameter number.
        index: usize,
        /// What was wrong, in words.
        reason: String,
    },
}

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A column whose value the module cannot use (e.g. an unknown state
    /// name), with the module's reason.
    pub fn bad_column(column: usize, reason: impl fmt::Display) -> Error {
        Error::Column {
            column,
            reason: reason.to_string(),
        }
    }

    /// Whether a UNIQUE or PRIMARY KEY constraint refused the row.
    #[must_use]
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Sqlite(e) => {
                matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ConstraintViolation)
                ) && matches!(
                    e,
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
            }
            Error::Postgres(e) => crate::store::postgres::is_unique_violation(e),
            _ => false,
        }
    }

    /// Whether another connection held the database (SQLite: busy or
    /// locked; PostgreSQL: a serialization failure, a deadlock, a lock not
    /// available): a retry may succeed.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Error::Postgres(e) => crate::store::postgres::is_busy(e),
            _ => false,
        }
    }

    /// Whether the connection to the PostgreSQL server was lost, or the
    /// server did not answer in time (the statement's outcome is unknown if
    /// it was a `COMMIT`); a retry on a new connection may succeed.
    #[must_use]
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Postgres(e) => e.is_closed(),
            Error::Timeout(_) | Error::Unreachable => true,
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRows,
            rusqlite::Error::FromSqlConversionFailure(column, _, reason) => Error::Column {
                column,
                reason: reason.to_string(),
            },
            e => Error::Sqlite(e),
        }
    }
}

/// `query_row(...).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`Error::NoRows`], everything else unchanged.
    ///
    /// # Errors
    /// Every error but [`Error::NoRows`].
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
