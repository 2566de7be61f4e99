//! The store: the one database every durable write in cardhub goes
//! through. Two back ends run the same module SQL (see [`sql`]): an embedded
//! SQLite file (the default; one hub per file), with group commit so
//! durability does not cap throughput, and a PostgreSQL server
//! ([`Store::open_postgres`]) that several hubs share.
//!
//! # The durability promise
//!
//! "Durable before answered": a caller answers the switch only after
//! [`Store::write`] (or [`Store::write_blocking`]) has returned `Ok`, and that
//! `Ok` means:
//!
//! - the job's changes are part of a transaction whose `COMMIT` has returned.
//!   SQLite: in WAL mode with `synchronous=FULL`: the WAL, commit record
//!   included, was fsynced (`fdatasync` on Linux; `F_FULLFSYNC` on macOS via
//!   `fullfsync`). The changes survive a killed process, an OS crash and a
//!   power cut, as far as the disk honours flushes. PostgreSQL: the server
//!   answered `COMMIT`; how durable that is is the server's settings
//!   (`fsync`, `synchronous_commit`, replication: docs/deployment.md);
//! - they are visible to every connection that starts reading afterwards,
//!   [`Store::read`] included (on PostgreSQL: every hub's).
//!
//! The other outcomes:
//!
//! - [`StoreError::Query`]: the job's own statements failed; everything it
//!   did was rolled back (to its savepoint, or the lone job's transaction).
//!   Other jobs of the same batch are
//!   unaffected.
//! - [`StoreError::Commit`]: the batch's transaction could not begin or
//!   commit. No job of the batch was acknowledged. After an I/O error *during*
//!   `COMMIT` (PostgreSQL: the connection lost during `COMMIT`, or no answer
//!   to it in time) the outcome is unknown (the rows may appear after a restart), so writes that may be
//!   retried carry their own idempotency key (the journal's primary key is
//!   the transaction id).
//! - [`StoreError::WriterGone`]: the writer thread is not running; nothing was
//!   acknowledged.
//! - Cancelling a `write` future after its job was queued does not withdraw
//!   the job: it may still be committed.
//!
//! # How
//!
//! SQLite: one writer thread owns the only write connection. It takes the
//! first queued job (blocking), then every job already queued (at most
//! [`MAX_BATCH`]), runs `BEGIN IMMEDIATE`, each job in its own `SAVEPOINT`
//! (a lone job needs none: it is the transaction; so a bulk job queued alone
//! does not keep a copy of every page it changes), one `COMMIT` (one fsync
//! for the whole batch), and only then answers every
//! job. Under load, batches grow by themselves: while one commit is syncing,
//! the next batch queues up. The queue is bounded ([`QUEUE_CAPACITY`]); a full
//! queue makes `write` wait, it never drops a job. Jobs run in queue order.
//! Reads go through a small pool of `query_only` connections; WAL lets them
//! read while the writer writes.
//!
//! PostgreSQL: [`PostgresOptions::writers`] writer threads, each with its
//! own connection, take jobs from the same bounded queue; each job is one
//! `SERIALIZABLE` transaction (`BEGIN`, the job, `COMMIT`; `ROLLBACK` when it
//! failed), answered after its `COMMIT`; the server groups concurrent
//! commits into one WAL flush itself. What differs from SQLite:
//!
//! - jobs of one hub run concurrently and commit in any order relative to
//!   each other (jobs of other hubs too): a job queued later may commit
//!   first. Jobs that read, compute and write do not overwrite each other:
//!   one of two conflicting jobs fails with a serialization failure
//!   (retryable, [`StoreError::is_retryable`]) instead;
//! - a job whose statement failed cannot go on in the same transaction
//!   (PostgreSQL aborts it): a job that swallows an error is answered
//!   [`StoreError::Commit`], never `Ok`;
//! - a writer whose connection was lost opens a new one for its next job;
//! - every round trip to the server (connecting, each statement, `COMMIT`)
//!   is bounded ([`PostgresOptions::timeout`], `connect_timeout`): a server
//!   that stops answering fails the job ([`sql::Error::Timeout`]; after
//!   `COMMIT` its outcome is unknown, as for a lost connection) and its
//!   connection is dropped, never a writer stuck. While the server does not
//!   answer, one connection attempt at a time goes out and the other jobs
//!   fail at once ([`sql::Error::Unreachable`]) instead of queueing past
//!   the switch's deadline; the first attempt that succeeds ends that.
//!
//! Reads go through a pool of connections whose transactions are read-only;
//! each statement sees the data committed when it starts.
//!
//! # What this layer does not do
//!
//! It knows no table: the journal, cards and SAF modules own their SQL and
//! run it through [`Store::write`] and [`Store::read`]; the schema lives in
//! `migrations.rs`. Jobs must not manage transactions (`BEGIN`, `COMMIT`, or
//! the writer's savepoint `job`) nor call the store (a job waiting on the
//! writer would wait on itself). It does not retry a job that failed with a
//! serialization failure: the caller decides.

mod checkpoint;
pub mod config;
mod files;
mod migrations;
mod postgres;
pub mod sql;
mod sqlite;

pub use files::{ServeLock, write_private};
pub use postgres::location as postgres_location;

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::ErrorCode;

use sql::Connection;
use tokio::sync::{mpsc, oneshot};

/// The newest schema version (`PRAGMA user_version`) this binary knows.
pub const SCHEMA_VERSION: u32 = migrations::latest();

/// Jobs that may wait for the writer; past this, `write` waits for room.
pub const QUEUE_CAPACITY: usize = 65_536;

/// The most jobs one transaction (one fsync) carries.
pub const MAX_BATCH: usize = 1024;

/// Idle read connections kept open; more may exist while reads overlap.
const MAX_IDLE_READERS: usize = 4;

/// How long a connection waits for a lock held by another process.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default soft cap on the WAL file (see [`StoreOptions::wal_cap_bytes`]).
pub const DEFAULT_WAL_CAP_BYTES: u64 = 64 * 1024 * 1024;

/// The default [`StoreOptions::cache_bytes`].
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The default [`StoreOptions::wal_hold`].
pub const DEFAULT_WAL_HOLD: Duration = Duration::from_secs(1);

/// The default [`PostgresOptions::writers`].
pub const DEFAULT_POSTGRES_WRITERS: usize = 4;

/// The default [`PostgresOptions::timeout`]: well inside the switch's
/// deadline (4.5 s by default), with room for a reconnection after it.
pub const DEFAULT_POSTGRES_TIMEOUT: Duration = Duration::from_secs(1);

/// The default [`PostgresOptions::connect_timeout`].
pub const DEFAULT_POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A handle on the store. Cheap to clone; all clones share one writer thread
/// and one read pool.
///
/// Dropping the last handle closes the queue, lets the writer finish and
/// answer every job already queued, and joins it (this blocks the dropping
/// thread for that long), so the file can be reopened right away.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// How a store is run (`[store]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Soft cap on the WAL: once the log is past half of it, the writer
    /// copies the log into the database between two group commits and the
    /// next commit starts it over at the file's start; past the cap itself,
    /// it holds further batches until that succeeds (see `checkpoint`); a
    /// log SQLite starts over is cut back to this size. The file passes the
    /// cap by at most one batch's writes, unless a read keeps one snapshot
    /// for longer than [`StoreOptions::wal_hold`].
    pub wal_cap_bytes: u64,
    /// The longest the writer holds batches (and so answers) to empty a WAL
    /// past its cap that reads still use. Past it writes resume and the file
    /// grows until the read ends. Not a config key: the hub uses
    /// [`DEFAULT_WAL_HOLD`]; tests set their own.
    pub wal_hold: Duration,
    /// The write connection's page cache, in bytes (SQLite's default is 2
    /// MiB: too small for the indexes a busy journal writes, whose pages
    /// were then read back from the file at every commit).
    pub cache_bytes: u64,
}

/// How a PostgreSQL store is run (`[store]` with a `url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Write connections, each on its own thread running one job (one
    /// transaction) at a time; PostgreSQL groups their concurrent commits.
    /// At least 1.
    pub writers: usize,
    /// The longest wait for one answer from the server (a statement,
    /// `COMMIT`); past it the connection is dropped and the job fails
    /// ([`sql::Error::Timeout`]). Migrations at open wait longer.
    pub timeout: Duration,
    /// The longest wait for a new connection, authentication included.
    pub connect_timeout: Duration,
}

/// Counters since the store was opened, for throughput reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Jobs the writer has answered (successfully or not).
    pub jobs: u64,
    /// Successful `COMMIT`s: SQLite's group commits (fsyncs of the WAL),
    /// or PostgreSQL's one-job transactions.
    pub commits: u64,
    /// Jobs answered with an error: their own, or their batch's.
    pub failed_jobs: u64,
    /// Times the writer held batches because the WAL was past its cap
    /// (SQLite; always 0 on PostgreSQL, whose server manages its WAL).
    pub wal_holds: u64,
}

/// What went wrong in the store, whose fault it is and whether a retry helps
/// (see also [`StoreError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be opened or set up (SQLite: missing folder,
    /// permissions, not a SQLite file, locked by another process past the
    /// busy timeout; PostgreSQL: a malformed URL, the server unreachable,
    /// authentication refused). The operator's or the environment's fault;
    /// retrying helps only once the cause is fixed.
    #[error("cannot open the store at {location}")]
    Open {
        /// The database file, or the server and database (never the
        /// password): [`Store::location`].
        location: String,
        /// The database's reason.
        #[source]
        source: sql::Error,
    },
    /// The database file cannot be created, or the lock file cannot be
    /// created, locked or written (missing folder, permissions). The
    /// operator's or the environment's fault; retrying helps only once the
    /// cause is fixed.
    #[error("cannot create or lock {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Another process serves this store ([`ServeLock`]): two hubs on one
    /// store would both answer and their shadow balances diverge. The
    /// operator's; retrying helps once that hub has stopped.
    #[error(
        "the store {} is already served by another cardhub{}; stop it first",
        path.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse {
        /// The database file.
        path: PathBuf,
        /// The holder's process id, when its lock file names one.
        holder: Option<u32>,
    },
    /// A schema migration failed; its transaction was rolled back, so the
    /// database stays at the previous version. A bug in the migration or a
    /// damaged file (ours); retrying does not help.
    #[error("store migration {version} ({name}) failed")]
    Migration {
        /// The version the migration would have reached.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The database's reason.
        #[source]
        source: sql::Error,
    },
    /// The database was written by a newer cardhub (schema `found`, this
    /// binary knows up to `known`). The operator's: run the newer binary.
    /// The database was not changed; retrying does not help.
    #[error("store schema version {found} is newer than this binary knows ({known})")]
    TooNew {
        /// The database's version (SQLite's `user_version`, PostgreSQL's
        /// `schema_version` row).
        found: u32,
        /// [`SCHEMA_VERSION`].
        known: u32,
    },
    /// The job's own SQL failed (constraint violation, bad statement, ...);
    /// its changes were rolled back, the rest of its batch is unaffected.
    /// The caller's or the data's fault; retrying helps only for a busy or
    /// locked database.
    #[error("store query failed")]
    Query(#[from] sql::Error),
    /// The batch's transaction could not begin or commit (disk full, I/O
    /// error, lock held by another process, PostgreSQL's connection lost or
    /// a serialization failure at commit); every job of the batch gets it.
    /// Not the job's fault. Retrying helps if the cause was transient (busy,
    /// disk space freed); after an I/O error in `COMMIT` the first attempt
    /// may still surface, so retried writes must be idempotent.
    #[error("store commit failed")]
    Commit(#[source] Arc<sql::Error>),
    /// The writer thread is not running: it could not be started, or it
    /// stopped (a bug: ours), or (PostgreSQL) the store's runtime is shutting
    /// down. Retrying does not help; the store must be reopened.
    #[error("the store's writer thread is gone")]
    WriterGone,
}

/// State shared by all handles.
struct Inner {
    /// Sending end of the bounded job queue. `None` only while dropping.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    /// The writer threads (SQLite: one), joined on drop.
    writers: Vec<JoinHandle<()>>,
    /// Idle read connections: `read` takes one (or opens one) and puts it
    /// back.
    readers: Mutex<Vec<Connection>>,
    /// Bumped by the writers, read by `stats`.
    counters: Arc<Counters>,
    /// The database behind the queue; dropped after the writers stopped.
    backend: Backend,
}

/// The database a store runs on.
enum Backend {
    /// The embedded SQLite file (the default).
    Sqlite(sqlite::Sqlite),
    /// A PostgreSQL server shared by several hubs (boxed: its connection
    /// settings are large).
    Postgres(Box<postgres::Postgres>),
}

/// The writers' counters (relaxed atomics: each is a tally on its own).
#[derive(Default)]
struct Counters {
    jobs: AtomicU64,
    commits: AtomicU64,
    failed_jobs: AtomicU64,
}

/// A queued job, type-erased for the queue.
trait Job: Send {
    /// Runs the job on a write connection (inside its savepoint or its
    /// transaction).
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran>;
    /// Answers without running: the batch broke before the job's turn.
    fn abandon(self: Box<Self>, batch_error: &Arc<sql::Error>);
}

/// A job that has run and waits for its batch's fate.
trait Ran: Send {
    /// Whether the job returned `Ok` (else its savepoint or transaction is
    /// rolled back).
    fn succeeded(&self) -> bool;
    /// Whether it failed only because its transaction could not be
    /// serialised with a concurrent one (PostgreSQL): run again, it may
    /// succeed.
    fn failed_to_serialise(&self) -> bool;
    /// Answers the caller, given whether its transaction committed.
    fn finish(self: Box<Self>, batch_error: Option<&Arc<sql::Error>>);
    /// The job again, to run in a new transaction (its outcome dropped).
    fn again(self: Box<Self>) -> Box<dyn Job>;
}

/// A caller's closure and where its answer goes.
struct Submitted<T, F> {
    f: F,
    reply: oneshot::Sender<Answer<T>>,
}

/// The result of a caller's closure, held until the commit.
struct Finished<T, F> {
    f: F,
    outcome: thread::Result<sql::Result<T>>,
    reply: oneshot::Sender<Answer<T>>,
}

/// What the writer tells a caller. A job that panicked has its panic
/// re-raised in the caller, so one bad job does not stop the writer.
enum Answer<T> {
    Done(Result<T, StoreError>),
    Panicked(Box<dyn Any + Send>),
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            writers: DEFAULT_POSTGRES_WRITERS,
            timeout: DEFAULT_POSTGRES_TIMEOUT,
            connect_timeout: DEFAULT_POSTGRES_CONNECT_TIMEOUT,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_cap_bytes: DEFAULT_WAL_CAP_BYTES,
            wal_hold: DEFAULT_WAL_HOLD,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl Store {
    /// [`Store::open_with`] the default [`StoreOptions`].
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates, `0600`) the database at `path`, warns when group
    /// or others may read its files, sets it up for durable
    /// concurrent use (`journal_mode=WAL`, `synchronous=FULL`,
    /// `foreign_keys=ON`, a busy timeout, the WAL's cap), applies pending
    /// migrations in order, each in its own transaction, and starts the
    /// writer and checkpoint threads.
    ///
    /// # Errors
    /// [`StoreError::File`] when the file cannot be created,
    /// [`StoreError::Open`] when it cannot be opened or set up,
    /// [`StoreError::TooNew`] when its schema is newer than this binary
    /// (the file is then left untouched), [`StoreError::Migration`] when a
    /// migration fails, [`StoreError::WriterGone`] when the writer thread
    /// cannot be started.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let counters = Arc::new(Counters::default());
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let (sqlite, writer) = sqlite::Sqlite::open(path, options, queue, &counters)?;
        Ok(Store::assemble(
            jobs,
            vec![writer],
            counters,
            Backend::Sqlite(sqlite),
        ))
    }

    /// Connects to the PostgreSQL database at `url`
    /// (`postgresql://user:password@host:port/database`, or the key=value
    /// form), applies pending migrations (each in its own transaction under
    /// an advisory lock, so hubs starting together migrate once), and
    /// starts [`PostgresOptions::writers`] writer threads. The database must
    /// exist; the store creates its tables in it.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the URL is malformed or the server cannot
    /// be reached or refuses the connection (the message names the server,
    /// never the password), [`StoreError::TooNew`] when the database's
    /// schema is newer than this binary (it is then left untouched),
    /// [`StoreError::Migration`] when a migration fails,
    /// [`StoreError::WriterGone`] when a thread or the runtime cannot be
    /// started.
    pub fn open_postgres(url: &str, options: PostgresOptions) -> Result<Store, StoreError> {
        let counters = Arc::new(Counters::default());
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let (postgres, writers) = postgres::Postgres::open(url, options, queue, &counters)?;
        Ok(Store::assemble(
            jobs,
            writers,
            counters,
            Backend::Postgres(Box::new(postgres)),
        ))
    }

    fn assemble(
        jobs: mpsc::Sender<Box<dyn Job>>,
        writers: Vec<JoinHandle<()>>,
        counters: Arc<Counters>,
        backend: Backend,
    ) -> Store {
        Store {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                writers,
                readers: Mutex::new(Vec::new()),
                counters,
                backend,
            }),
        }
    }

    /// Runs `f` on a write connection as part of the next commit and
    /// resolves once that commit is durable (see the module doc for the
    /// exact promise). Waits while the queue is full.
    ///
    /// On PostgreSQL `f` may run more than once: a transaction that cannot
    /// be serialised with a concurrent one (two jobs on one account) is
    /// rolled back and `f` runs again in a new one. So `f` writes only
    /// through `conn` and keeps what it captured (`FnMut`).
    ///
    /// # Errors
    /// [`StoreError::Query`] with `f`'s own error (its changes rolled
    /// back), [`StoreError::Commit`] when its batch did not commit,
    /// [`StoreError::WriterGone`] when the writer thread is not running.
    ///
    /// # Panics
    /// Re-raises a panic of `f` (the writer survives it).
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> sql::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let queue = self.queue()?;
        let (tx, rx) = oneshot::channel();
        let job = Submitted { f, reply: tx };
        queue
            .send(Box::new(job))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?.into_result()
    }

    /// [`Store::write`] for synchronous callers (the CLI, `spawn_blocking`):
    /// blocks the calling thread until the commit is durable.
    ///
    /// # Errors
    /// As [`Store::write`].
    ///
    /// # Panics
    /// When called on a tokio runtime worker (inside `async` code): that
    /// would stall the runtime, so tokio refuses it; use `write` there.
    /// Also re-raises a panic of `f`.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> sql::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let queue = self.queue()?;
        let (tx, rx) = oneshot::channel();
        let job = Submitted { f, reply: tx };
        queue
            .blocking_send(Box::new(job))
            .map_err(|_| StoreError::WriterGone)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::WriterGone)?
            .into_result()
    }

    /// Runs `f` on a read-only connection from the pool. It sees every write
    /// that was acknowledged before it started, and never blocks the writer
    /// (nor is blocked by it). Runs on the calling thread: keep it short in
    /// async code.
    ///
    /// # Errors
    /// [`StoreError::Query`] with `f`'s error, [`StoreError::Open`] when a
    /// new read connection cannot be opened.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> sql::Result<T>) -> Result<T, StoreError> {
        let idle = self.idle_readers().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => match &self.inner.backend {
                Backend::Sqlite(sqlite) => sqlite.open_reader()?,
                Backend::Postgres(postgres) => postgres.open_reader()?,
            },
        };
        let result = f(&conn);
        // A read that left a transaction open would pin an old snapshot (and
        // stop checkpoints), a closed connection is no use: such a
        // connection is dropped, not pooled.
        if conn.is_idle() {
            let mut idle = self.idle_readers();
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        Ok(result?)
    }

    /// Counters since the store was opened.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        StoreStats {
            jobs: c.jobs.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_jobs: c.failed_jobs.load(Ordering::Relaxed),
            wal_holds: match &self.inner.backend {
                Backend::Sqlite(sqlite) => sqlite.wal.holds(),
                Backend::Postgres(_) => 0,
            },
        }
    }

    /// Jobs waiting in the queue (not yet taken by a writer), for metrics.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.inner
            .jobs
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// The WAL file's size now, in bytes (0 when there is none), for
    /// metrics: the disk it takes, not how much of it is in use (a log that
    /// starts over keeps the file, at most the cap); `None` on PostgreSQL,
    /// whose server manages its own WAL.
    #[must_use]
    pub fn wal_bytes(&self) -> Option<u64> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => Some(sqlite.wal.bytes()),
            Backend::Postgres(_) => None,
        }
    }

    /// The database file; `None` on PostgreSQL.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => Some(&sqlite.path),
            Backend::Postgres(_) => None,
        }
    }

    /// Where the data lives, for messages: the file's path, or
    /// `postgresql://user@host:port/database` (never a password).
    #[must_use]
    pub fn location(&self) -> String {
        match &self.inner.backend {
            Backend::Sqlite(sqlite) => sqlite.path.display().to_string(),
            Backend::Postgres(postgres) => postgres.location().to_owned(),
        }
    }

    fn queue(&self) -> Result<&mpsc::Sender<Box<dyn Job>>, StoreError> {
        self.inner.jobs.as_ref().ok_or(StoreError::WriterGone)
    }

    fn idle_readers(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The pool is a plain list: a panic elsewhere cannot leave it broken.
        self.inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl StoreStats {
    /// Average jobs per commit (per fsync); 0 before the first commit.
    #[must_use]
    pub fn jobs_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.jobs as f64 / self.commits as f64
        }
    }
}

impl StoreError {
    /// Whether the write conflicted with another one, and the store is up:
    /// concurrent writes its reruns did not get past (SQLite: the database
    /// stayed locked; PostgreSQL: a serialization failure or deadlock), or
    /// a unique key another write took first (a retransmission's row at
    /// another instance).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Query(e) => e.is_busy() || e.is_unique_violation(),
            StoreError::Commit(e) => e.is_busy() || e.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether the same write may succeed if tried again later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Query(e) => e.is_busy() || e.is_connection_lost(),
            StoreError::Commit(e) => e.is_busy() || e.is_connection_lost() || is_disk_full(e),
            StoreError::Open { .. }
            | StoreError::File { .. }
            | StoreError::InUse { .. }
            | StoreError::Migration { .. }
            | StoreError::TooNew { .. }
            | StoreError::WriterGone => false,
        }
    }
}

/// SQLite's disk-full: retryable once space is freed.
fn is_disk_full(e: &sql::Error) -> bool {
    matches!(e, sql::Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull))
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writers answer what is queued, then stop.
        drop(self.jobs.take());
        for writer in self.writers.drain(..) {
            // The last handle may die inside a job, on a writer itself.
            if writer.thread().id() != thread::current().id() && writer.join().is_err() {
                tracing::error!("a store writer thread panicked");
            }
        }
    }
}

/// Starts a writer thread named `name`.
fn spawn_writer(
    name: String,
    run: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    thread::Builder::new().name(name).spawn(run).map_err(|e| {
        tracing::error!(error = %e, "cannot start a store writer thread");
        StoreError::WriterGone
    })
}

impl<T, F> Job for Submitted<T, F>
where
    F: FnMut(&Connection) -> sql::Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran> {
        let Submitted { mut f, reply } = *self;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(conn)));
        Box::new(Finished { f, outcome, reply })
    }

    fn abandon(self: Box<Self>, batch_error: &Arc<sql::Error>) {
        let error = StoreError::Commit(Arc::clone(batch_error));
        // A caller that stopped waiting (cancelled) has nobody to tell.
        let _ = self.reply.send(Answer::Done(Err(error)));
    }
}

impl<T, F> Ran for Finished<T, F>
where
    F: FnMut(&Connection) -> sql::Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn succeeded(&self) -> bool {
        matches!(self.outcome, Ok(Ok(_)))
    }

    fn failed_to_serialise(&self) -> bool {
        matches!(&self.outcome, Ok(Err(e)) if e.is_busy())
    }

    fn again(self: Box<Self>) -> Box<dyn Job> {
        let Finished { f, reply, .. } = *self;
        Box::new(Submitted { f, reply })
    }

    fn finish(self: Box<Self>, batch_error: Option<&Arc<sql::Error>>) {
        let answer = match self.outcome {
            Err(panic) => Answer::Panicked(panic),
            Ok(Err(e)) => Answer::Done(Err(StoreError::Query(e))),
            Ok(Ok(value)) => Answer::Done(match batch_error {
                None => Ok(value),
                Some(e) => Err(StoreError::Commit(Arc::clone(e))),
            }),
        };
        let _ = self.reply.send(answer);
    }
}

impl<T> Answer<T> {
    fn into_result(self) -> Result<T, StoreError> {
        match self {
            Answer::Done(result) => result,
            Answer::Panicked(panic) => panic::resume_unwind(panic),
        }
    }
}
