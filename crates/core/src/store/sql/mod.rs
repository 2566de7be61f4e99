//! The SQL every module runs through the store, on either back end: one
//! connection type, one statement type, one row type, with the names and
//! shapes of rusqlite's (which the embedded back end runs on), so a module's
//! SQL reads the same whichever database holds it.
//!
//! Values are SQLite's storage classes without REAL: NULL, a 64-bit
//! integer, text and bytes. Money is integer minor units, booleans are 0 and
//! 1, times are integers (microseconds) or ISO text; a float read from the
//! database is a conversion error, never a rounded amount.
//!
//! Statements use numbered placeholders (`?1`, `?2`, ...); on PostgreSQL
//! the store writes them `$1`, `$2`, ... and binds each value by the type
//! the server inferred for its placeholder (see `postgres`). What has no
//! common spelling goes through [`Dialect`] (a list of texts:
//! [`Dialect::text_list`]).

mod error;

pub use error::{Error, OptionalExtension, Result};

/// An owned value of a column or parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A borrowed value of a column or parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl ValueRef<'_> {
    /// The storage class, for error messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ValueRef::Null => "NULL",
            ValueRef::Integer(_) => "an integer",
            ValueRef::Text(_) => "text",
            ValueRef::Blob(_) => "bytes",
        }
    }
}

/// A Rust value that can be bound as a parameter.
pub trait ToSql {
    /// The value to bind.
    ///
    /// # Errors
    /// A reason when the value has no SQL form (an unsigned integer past
    /// `i64::MAX`).
    fn to_sql(&self) -> Result<ValueRef<'_>, String>;
}

/// A Rust value that can be read from a column.
pub trait FromSql: Sized {
    /// Converts the column's value.
    ///
    /// # Errors
    /// A reason when the value has the wrong type or range.
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String>;
}

fn expected(what: &str, found: ValueRef<'_>) -> String {
    format!("expected {what}, found {}", found.kind())
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        (**self).to_sql()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        self.as_ref().map_or(Ok(ValueRef::Null), ToSql::to_sql)
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Null => Ok(None),
            value => T::from_sql(value).map(Some),
        }
    }
}

/// Integers: bound as i64, read back with a range check.
macro_rules! integer {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> Result<ValueRef<'_>, String> {
                i64::try_from(*self)
                    .map(ValueRef::Integer)
                    .map_err(|_| format!("{self} does not fit a 64-bit signed integer"))
            }
        }

        impl FromSql for $t {
            fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
                match value {
                    ValueRef::Integer(i) => <$t>::try_from(i)
                        .map_err(|_| format!("{i} is out of range for {}", stringify!($t))),
                    other => Err(expected("an integer", other)),
                }
            }
        }
    )*};
}

integer!(i64, i32, i16, i8, u64, u32, u16, u8, usize);

impl ToSql for bool {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Integer(i64::from(*self)))
    }
}

impl FromSql for bool {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Integer(i) => Ok(i != 0),
            other => Err(expected("an integer (0 or 1)", other)),
        }
    }
}

impl ToSql for str {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Text(self))
    }
}

impl ToSql for String {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Text(self))
    }
}

impl FromSql for String {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Text(s) => Ok(s.to_owned()),
            other => Err(expected("text", other)),
        }
    }
}

impl ToSql for [u8] {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Blob(self))
    }
}

impl ToSql for Vec<u8> {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Blob(self))
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Blob(self))
    }
}

impl FromSql for Vec<u8> {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            other => Err(expected("bytes", other)),
        }
    }
}

impl<const N: usize> FromSql for [u8; N] {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        match value {
            ValueRef::Blob(b) => {
                <[u8; N]>::try_from(b).map_err(|_| format!("expected {N} bytes, found {}", b.len()))
            }
            other => Err(expected("bytes", other)),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        })
    }
}

impl FromSql for Value {
    fn from_sql(value: ValueRef<'_>) -> Result<Self, String> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

/// The parameters of one execution: `params![a, b]`, an array of one type
/// (`[id]`), or a slice of [`Value`]s built at run time.
pub trait Params {
    /// Calls `f` with the parameters in order.
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Params for &[&dyn ToSql] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

/// `[]`: no parameters.
impl Params for [&dyn ToSql; 0] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

/// `[a]`, `[a, b]`, ...: parameters of one type (not for zero, which is
/// `[]` above, so that `[]` needs no type).
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
                f(&self.each_ref().map(|p| p as &dyn ToSql))
            }
        }
    )*};
}

array_params!(1, 2, 3, 4, 5, 6, 7, 8);

impl<T: ToSql> Params for &Vec<T> {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.iter().map(|p| p as &dyn ToSql).collect();
        f(&refs)
    }
}

/// `params![a, b, c]`: the parameters `?1`, `?2`, `?3` (of mixed types).
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::sql::ToSql]
    };
    ($($param:expr),+ $(,)?) => {
        &[$(&$param as &dyn $crate::store::sql::ToSql),+] as &[&dyn $crate::store::sql::ToSql]
    };
}

pub use crate::params;

/// The texts of a list bound as one parameter (see
/// [`Dialect::text_list`]): a JSON array of strings on both back ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextList(String);

impl TextList {
    /// The list of `texts`, in order.
    pub fn new<I>(texts: I) -> TextList
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let texts: Vec<_> = texts
            .into_iter()
            .map(|t| serde_json::Value::String(t.as_ref().to_owned()))
            .collect();
        TextList(serde_json::Value::Array(texts).to_string())
    }
}

impl ToSql for TextList {
    fn to_sql(&self) -> Result<ValueRef<'_>, String> {
        Ok(ValueRef::Text(&self.0))
    }
}

/// The SQL dialect of a connection, for the few constructs that have no
/// common spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite database.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Dialect {
    /// A subquery of one column, `value`, with a row for each text of the
    /// [`TextList`] bound as parameter `?param`: usable as
    /// `x IN {list}` or `FROM {list} AS j JOIN t ON t.x = j.value`.
    #[must_use]
    pub fn text_list(self, param: usize) -> String {
        match self {
            Dialect::Sqlite => format!("(SELECT value FROM json_each(?{param}))"),
            Dialect::Postgres => format!(
                "(SELECT json_array_elements_text(CAST(CAST(?{param} AS TEXT) AS JSON)) AS value)"
            ),
        }
    }
}

/// A connection to the store's database: a writer's (inside its
/// transaction) or a reader's (a snapshot per statement).
pub struct Connection {
    backend: Backend,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(super::postgres::Client),
}

impl Connection {
    /// Wraps an open embedded connection.
    pub fn from_sqlite(conn: rusqlite::Connection) -> Connection {
        Connection {
            backend: Backend::Sqlite(conn),
        }
    }

    /// Wraps an open PostgreSQL client.
    pub(crate) fn from_postgres(client: super::postgres::Client) -> Connection {
        Connection {
            backend: Backend::Postgres(client),
        }
    }

    /// The embedded connection, for the store's own housekeeping
    /// (transactions, pragmas, checkpoints); `None` on PostgreSQL.
    pub(crate) fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(conn) => Some(conn),
            Backend::Postgres(_) => None,
        }
    }

    /// The connection's dialect.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether the connection may go back to the read pool: no transaction
    /// left open (SQLite), not closed (PostgreSQL).
    pub(crate) fn is_idle(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(conn) => conn.is_autocommit(),
            Backend::Postgres(client) => !client.is_closed(),
        }
    }

    /// Runs `f` with SQLite's page cache of this connection raised to
    /// `kib` KiB, and sets it back after; on PostgreSQL (whose cache is the
    /// server's) just runs `f`. For a bulk job that touches an index all
    /// over.
    ///
    /// # Errors
    /// The database's, or `f`'s.
    pub fn with_page_cache<T>(&self, kib: i64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let Backend::Sqlite(conn) = &self.backend else {
            return f();
        };
        let before: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        conn.pragma_update(None, "cache_size", -kib)?;
        let done = f();
        conn.pragma_update(None, "cache_size", before)?;
        done
    }

    /// A statement prepared once per connection and kept for reuse.
    ///
    /// # Errors
    /// The database's, for a statement it cannot prepare.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(Statement {
                inner: StatementInner::Sqlite(conn, conn.prepare_cached(sql)?),
            }),
            Backend::Postgres(client) => Ok(Statement {
                inner: StatementInner::Postgres(client, client.prepare(sql)?),
            }),
        }
    }

    /// [`prepare_cached`](Self::prepare_cached) for an `INSERT` of one row
    /// into a table keyed `id`, run by [`Statement::insert`]: on PostgreSQL
    /// the store adds `RETURNING id`; SQLite reads the new rowid instead,
    /// since a `RETURNING` clause makes it buffer the row and journal the
    /// statement (a fifth of a load file's import).
    ///
    /// # Errors
    /// The database's, for a statement it cannot prepare.
    pub fn prepare_insert(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.backend {
            Backend::Sqlite(_) => self.prepare_cached(sql),
            Backend::Postgres(_) => self.prepare_cached(&format!("{sql} RETURNING id")),
        }
    }

    /// Runs one statement; returns how many rows it changed.
    ///
    /// # Errors
    /// The database's, or a parameter's.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs a query and converts its first row; [`Error::NoRows`] when it
    /// has none.
    ///
    /// # Errors
    /// The database's, a parameter's, `f`'s, or [`Error::NoRows`].
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs statements separated by semicolons, without parameters (on
    /// PostgreSQL in the simple protocol: no `?N`).
    ///
    /// # Errors
    /// The database's, for the first statement that fails.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Backend::Postgres(client) => client.batch_execute(sql),
        }
    }
}

/// A prepared statement.
pub struct Statement<'c> {
    inner: StatementInner<'c>,
}

enum StatementInner<'c> {
    Sqlite(&'c rusqlite::Connection, rusqlite::CachedStatement<'c>),
    Postgres(&'c super::postgres::Client, tokio_postgres::Statement),
}

/// Binds our parameters on a rusqlite statement.
struct Bind<'p>(&'p dyn ToSql, usize);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as Raw};
        let value = self.0.to_sql().map_err(|reason| {
            rusqlite::Error::ToSqlConversionFailure(
                format!("parameter {}: {reason}", self.1).into(),
            )
        })?;
        Ok(ToSqlOutput::Borrowed(match value {
            ValueRef::Null => Raw::Null,
            ValueRef::Integer(i) => Raw::Integer(i),
            ValueRef::Text(s) => Raw::Text(s.as_bytes()),
            ValueRef::Blob(b) => Raw::Blob(b),
        }))
    }
}

fn sqlite_params<'p>(params: &'p [&'p dyn ToSql]) -> impl rusqlite::Params + 'p {
    rusqlite::params_from_iter(params.iter().enumerate().map(|(i, p)| Bind(*p, i + 1)))
}

impl Statement<'_> {
    /// Runs the statement; returns how many rows it changed.
    ///
    /// # Errors
    /// The database's, or a parameter's.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        match &mut self.inner {
            StatementInner::Sqlite(_, stmt) => {
                params.with(|p| stmt.execute(sqlite_params(p)).map_err(Error::from))
            }
            StatementInner::Postgres(client, stmt) => params.with(|p| client.execute(stmt, p)),
        }
    }

    /// Runs a statement of [`Connection::prepare_insert`]; the new row's
    /// `id`.
    ///
    /// # Errors
    /// The database's, or a parameter's.
    pub fn insert(&mut self, params: impl Params) -> Result<i64> {
        match &mut self.inner {
            StatementInner::Sqlite(conn, stmt) => params.with(|p| {
                stmt.execute(sqlite_params(p))?;
                Ok(conn.last_insert_rowid())
            }),
            StatementInner::Postgres(..) => self.query_row(params, |r| r.get(0)),
        }
    }

    /// Runs the query and converts its first row; [`Error::NoRows`] when it
    /// has none.
    ///
    /// # Errors
    /// The database's, a parameter's, `f`'s, or [`Error::NoRows`].
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match &mut self.inner {
            StatementInner::Sqlite(_, stmt) => params.with(|p| {
                let mut rows = stmt.query(sqlite_params(p))?;
                match rows.next()? {
                    Some(row) => f(&Row::sqlite(row)),
                    None => Err(Error::NoRows),
                }
            }),
            StatementInner::Postgres(client, stmt) => {
                let rows = params.with(|p| client.query(stmt, p))?;
                match rows.first() {
                    Some(row) => f(&Row::postgres(row)),
                    None => Err(Error::NoRows),
                }
            }
        }
    }

    /// Runs the query; the iterator converts its rows with `f`, in order.
    ///
    /// # Errors
    /// The database's, or a parameter's; each row's conversion error comes
    /// from the iterator.
    pub fn query_map<T, F>(&mut self, params: impl Params, f: F) -> Result<MappedRows<'_, F>>
    where
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        match &mut self.inner {
            StatementInner::Sqlite(_, stmt) => params.with(|p| {
                let rows = stmt.query(sqlite_params(p))?;
                Ok(MappedRows {
                    rows: RowsInner::Sqlite(rows),
                    f,
                })
            }),
            StatementInner::Postgres(client, stmt) => {
                let rows = params.with(|p| client.query(stmt, p))?;
                Ok(MappedRows {
                    rows: RowsInner::Postgres(rows.into_iter()),
                    f,
                })
            }
        }
    }

    /// Whether the query returns at least one row.
    ///
    /// # Errors
    /// The database's, or a parameter's.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        self.query_row(params, |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }
}

/// The rows of [`Statement::query_map`], converted one by one.
pub struct MappedRows<'s, F> {
    rows: RowsInner<'s>,
    f: F,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    /// Read whole by the query (see `postgres::Client::query`).
    Postgres(std::vec::IntoIter<tokio_postgres::Row>),
}

impl<T, F> Iterator for MappedRows<'_, F>
where
    F: FnMut(&Row<'_>) -> Result<T>,
{
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match &mut self.rows {
            RowsInner::Sqlite(rows) => match rows.next() {
                Ok(Some(row)) => Some((self.f)(&Row::sqlite(row))),
                Ok(None) => None,
                Err(e) => Some(Err(e.into())),
            },
            RowsInner::Postgres(rows) => rows.next().map(|row| (self.f)(&Row::postgres(&row))),
        }
    }
}

/// One row of a query's result.
pub struct Row<'r> {
    inner: RowInner<'r>,
}

enum RowInner<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

impl<'r> Row<'r> {
    fn sqlite(row: &'r rusqlite::Row<'r>) -> Row<'r> {
        Row {
            inner: RowInner::Sqlite(row),
        }
    }

    fn postgres(row: &'r tokio_postgres::Row) -> Row<'r> {
        Row {
            inner: RowInner::Postgres(row),
        }
    }

    /// The value of column `column` (zero-based).
    ///
    /// # Errors
    /// [`Error::Column`] when there is no such column or the value has
    /// another type.
    pub fn get_ref(&self, column: usize) -> Result<ValueRef<'_>> {
        use rusqlite::types::ValueRef as Raw;
        match &self.inner {
            RowInner::Sqlite(row) => match row.get_ref(column)? {
                Raw::Null => Ok(ValueRef::Null),
                Raw::Integer(i) => Ok(ValueRef::Integer(i)),
                Raw::Text(t) => std::str::from_utf8(t)
                    .map(ValueRef::Text)
                    .map_err(|e| Error::bad_column(column, format!("text is not UTF-8: {e}"))),
                Raw::Blob(b) => Ok(ValueRef::Blob(b)),
                Raw::Real(r) => Err(Error::bad_column(
                    column,
                    format!("found the float {r}; the store keeps no floats"),
                )),
            },
            RowInner::Postgres(row) => super::postgres::column(row, column),
        }
    }

    /// Column `column` (zero-based) converted to `T`.
    ///
    /// # Errors
    /// [`Error::Column`] when there is no such column or its value does not
    /// convert.
    pub fn get<T: FromSql>(&self, column: usize) -> Result<T> {
        T::from_sql(self.get_ref(column)?).map_err(|reason| Error::Column { column, reason })
    }
}
