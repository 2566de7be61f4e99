//! The PostgreSQL side of [`sql`](super::sql): one client connection,
//! driven synchronously.
//!
//! The modules' closures are synchronous, tokio-postgres is not. Each
//! connection's I/O task (`tokio_postgres::Connection`) runs on a small
//! runtime the store owns; the [`Client`]'s futures only exchange messages
//! with that task over channels, so the calling thread drives them with
//! `futures::executor::block_on`. That works on any thread, a tokio worker
//! included (no reactor or timer is needed on the calling side); the
//! `postgres` crate's blocking client would panic there.
//!
//! Every round trip is bounded (`reach`): a connection whose server did not
//! answer in time is dropped, its outcome an [`Error::Timeout`].
//!
//! Statements are written with SQLite's `?N` placeholders; [`translate`]
//! turns them into PostgreSQL's `$N`. Each connection prepares a statement
//! once and keeps it, by its SQL text.

mod backend;
mod reach;
mod types;

pub(super) use backend::Postgres;
pub use backend::location;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::sql::{Error, Result, ToSql, ValueRef};
use reach::Reach;
use types::{Param, ParamError};

pub(super) use types::column;

/// Prepared statements kept per connection; past this the cache starts
/// over (the modules use a few dozen statements).
const STATEMENT_CACHE: usize = 256;

/// One open connection: the client half; the I/O half runs on the store's
/// runtime until the client is dropped, or until a round trip outlives its
/// bound (then it is aborted: the socket closes).
pub(crate) struct Client {
    client: tokio_postgres::Client,
    /// Prepared statements by their `?N` text.
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
    /// The connection's I/O task.
    io: AbortHandle,
    /// The longest wait for one answer on this connection.
    round_trip: Duration,
    /// A round trip outlived its bound: the connection is not used again.
    dropped: Cell<bool>,
    /// Told when the server does not answer in time.
    reach: Arc<Reach>,
}

impl Client {
    fn new(
        client: tokio_postgres::Client,
        io: AbortHandle,
        round_trip: Duration,
        reach: Arc<Reach>,
    ) -> Client {
        Client {
            client,
            statements: RefCell::new(HashMap::new()),
            io,
            round_trip,
            dropped: Cell::new(false),
            reach,
        }
    }

    /// Whether the server or the network closed the connection, or it was
    /// dropped after a round trip outlived its bound.
    pub(crate) fn is_closed(&self) -> bool {
        self.dropped.get() || self.client.is_closed()
    }

    /// `future`'s answer, or [`Error::Timeout`] when the server gave none
    /// within the bound: then the connection is dropped (its I/O task
    /// aborted) and the store told the server does not answer.
    fn answer<T>(
        &self,
        future: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match self.reach.bounded(self.round_trip, future) {
            Ok(answer) => answer.map_err(from_pg),
            Err(_) => {
                self.io.abort();
                self.dropped.set(true);
                self.reach.lost();
                Err(Error::Timeout(self.round_trip))
            }
        }
    }

    /// `sql` (with `?N` placeholders) prepared once per connection.
    pub(crate) fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.answer(self.client.prepare(&translate(sql)))?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs a prepared statement; returns how many rows it changed.
    pub(crate) fn execute(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&dyn ToSql],
    ) -> Result<usize> {
        let params = bind(statement, params)?;
        let changed = self.answer(self.client.execute_raw(statement, params))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    /// Runs a prepared query and returns all its rows (read whole, so the
    /// caller may run other statements while it walks them).
    pub(crate) fn query(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&dyn ToSql],
    ) -> Result<Vec<tokio_postgres::Row>> {
        use futures::TryStreamExt;
        let params = bind(statement, params)?;
        self.answer(async {
            self.client
                .query_raw(statement, params)
                .await?
                .try_collect()
                .await
        })
    }

    /// Statements separated by semicolons, in the simple protocol (no
    /// parameters, no `?N` translation).
    pub(crate) fn batch_execute(&self, sql: &str) -> Result<()> {
        self.answer(self.client.batch_execute(sql))
    }
}

/// Our parameters, converted and counted for `statement`.
fn bind<'p>(
    statement: &tokio_postgres::Statement,
    params: &'p [&'p dyn ToSql],
) -> Result<Vec<Param<'p>>> {
    let expected: &[Type] = statement.params();
    if params.len() != expected.len() {
        return Err(Error::Parameter {
            // The first one missing, or the first one too many.
            index: params.len().min(expected.len()) + 1,
            reason: format!(
                "{} parameters given, the statement has {}",
                params.len(),
                expected.len()
            ),
        });
    }
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let value: ValueRef<'p> = p.to_sql().map_err(|reason| Error::Parameter {
                index: i + 1,
                reason,
            })?;
            Ok(Param {
                value,
                index: i + 1,
            })
        })
        .collect()
}

/// tokio-postgres' error, or ours when a parameter could not be encoded.
fn from_pg(e: tokio_postgres::Error) -> Error {
    match e.source().and_then(|s| s.downcast_ref::<ParamError>()) {
        Some(ParamError { index, reason }) => Error::Parameter {
            index: *index,
            reason: reason.clone(),
        },
        None => Error::Postgres(e),
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Postgres(e)
    }
}

/// The server's SQLSTATE, for a database error.
pub(super) fn sqlstate(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

/// A unique or primary key refused the row.
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    sqlstate(e) == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A serialization failure, a deadlock or a lock not available: the
/// transaction may succeed when tried again.
pub(super) fn is_busy(e: &tokio_postgres::Error) -> bool {
    matches!(
        sqlstate(e),
        Some(
            &SqlState::T_R_SERIALIZATION_FAILURE
                | &SqlState::T_R_DEADLOCK_DETECTED
                | &SqlState::LOCK_NOT_AVAILABLE
        )
    )
}

/// The server's words for an error (severity, SQLSTATE, message, detail),
/// or the client's with its cause: tokio-postgres alone says "db error".
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// `sql` with each `?N` outside string literals, quoted identifiers and
/// comments written `$N`.
pub(crate) fn translate(sql: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Code,
        Literal,
        Identifier,
        LineComment,
        BlockComment,
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = At::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        at = match (at, c) {
            (At::Code, '?') if next.is_some_and(|n| n.is_ascii_digit()) => {
                out.push('$');
                continue;
            }
            (At::Code, '\'') => At::Literal,
            (At::Code, '"') => At::Identifier,
            (At::Code, '-') if next == Some('-') => At::LineComment,
            (At::Code, '/') if next == Some('*') => At::BlockComment,
            // A doubled quote inside a literal or identifier closes and
            // reopens it: the same state after both characters.
            (At::Literal, '\'') | (At::Identifier, '"') | (At::LineComment, '\n') => At::Code,
            (At::BlockComment, '*') if next == Some('/') => {
                out.push_str("*/");
                chars.next();
                at = At::Code;
                continue;
            }
            (at, _) => at,
        };
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_become_dollars_outside_quotes_and_comments() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10)"
        );
        assert_eq!(
            translate("SELECT '?1', 'it''s ?2', \"odd?3\" FROM t WHERE x = ?4"),
            "SELECT '?1', 'it''s ?2', \"odd?3\" FROM t WHERE x = $4"
        );
        assert_eq!(
            translate("SELECT ?1 -- not ?2\n, ?3 /* nor ?4 */ , ?5"),
            "SELECT $1 -- not ?2\n, $3 /* nor ?4 */ , $5"
        );
        // A lone `?` is not ours to change.
        assert_eq!(translate("SELECT ? , ?x"), "SELECT ? , ?x");
    }
}
