//! The embedded store: the one SQLite file every durable write in cardhub
//! goes through, with group commit so durability does not cap throughput.
//!
//! # The durability promise
//!
//! "Durable before answered": a caller answers the switch only after
//! [`Store::write`] (or [`Store::write_blocking`]) has returned `Ok`, and that
//! `Ok` means:
//!
//! - the job's changes are part of a transaction whose `COMMIT` has returned,
//!   in WAL mode with `synchronous=FULL`: the WAL, commit record included, was
//!   fsynced (`fdatasync` on Linux; `F_FULLFSYNC` on macOS via `fullfsync`).
//!   The changes survive a killed process, an OS crash and a power cut, as far
//!   as the disk honours flushes;
//! - they are visible to every connection that starts reading afterwards,
//!   [`Store::read`] included.
//!
//! The other outcomes:
//!
//! - [`StoreError::Query`]: the job's own statements failed; everything it
//!   did was rolled back (to its savepoint, or the lone job's transaction).
//!   Other jobs of the same batch are
//!   unaffected.
//! - [`StoreError::Commit`]: the batch's transaction could not begin or
//!   commit. No job of the batch was acknowledged. After an I/O error *during*
//!   `COMMIT` the outcome is unknown (the rows may appear after a restart),
//!   so writes that may be retried carry their own idempotency key (the
//!   journal's primary key is the transaction id).
//! - [`StoreError::WriterGone`]: the writer thread is not running; nothing was
//!   acknowledged.
//! - Cancelling a `write` future after its job was queued does not withdraw
//!   the job: it may still be committed.
//!
//! # How
//!
//! One writer thread owns the only write connection. It takes the first
//! queued job (blocking), then every job already queued (at most
//! [`MAX_BATCH`]), runs `BEGIN IMMEDIATE`, each job in its own `SAVEPOINT`
//! (a lone job needs none: it is the transaction; so a bulk job queued alone
//! does not keep a copy of every page it changes), one `COMMIT` (one fsync
//! for the whole batch), and only then answers every
//! job. Under load, batches grow by themselves: while one commit is syncing,
//! the next batch queues up. The queue is bounded ([`QUEUE_CAPACITY`]); a full
//! queue makes `write` wait, it never drops a job. Jobs run in queue order.
//!
//! Reads go through a small pool of `query_only` connections; WAL lets them
//! read while the writer writes.
//!
//! # What this layer does not do
//!
//! It knows no table: the journal, cards and SAF modules own their SQL and
//! run it through [`Store::write`] and [`Store::read`]; the schema lives in
//! `migrations.rs`. Jobs must not manage transactions (`BEGIN`, `COMMIT`, or
//! the writer's savepoint `job`) nor call the store (a job waiting on the
//! writer would wait on itself).

mod checkpoint;
pub mod config;
mod files;
mod migrations;
pub mod sql;

pub use files::{ServeLock, write_private};

use crate::params;
use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{ErrorCode, OpenFlags};

use sql::Connection;
use tokio::sync::{mpsc, oneshot};

use migrations::{check_version, migrate, user_version};

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

/// The default [`StoreOptions::wal_hold`].
pub const DEFAULT_WAL_HOLD: Duration = Duration::from_secs(1);

/// The writer thread's name, as seen in debuggers and `top -H`.
const WRITER_THREAD: &str = "cardhub-store-writer";

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
    /// Soft cap on the WAL file: past half of it, the writer copies the log
    /// into the database and empties it between two group commits; past
    /// the cap itself, it holds further batches until that succeeds (see
    /// `checkpoint`); a log SQLite resets is cut back to this size. The file
    /// passes the cap by at most one batch's writes, unless a read keeps one
    /// snapshot for longer than [`StoreOptions::wal_hold`].
    pub wal_cap_bytes: u64,
    /// The longest the writer holds batches (and so answers) to empty a WAL
    /// past its cap that reads still use. Past it writes resume and the file
    /// grows until the read ends. Not a config key: the hub uses
    /// [`DEFAULT_WAL_HOLD`]; tests set their own.
    pub wal_hold: Duration,
}

/// Counters since the store was opened, for throughput reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Jobs the writer has answered (successfully or not).
    pub jobs: u64,
    /// Successful `COMMIT`s, i.e. fsyncs of the WAL.
    pub commits: u64,
    /// Jobs answered with an error: their own, or their batch's.
    pub failed_jobs: u64,
    /// Times the writer held batches because the WAL was past its cap.
    pub wal_holds: u64,
}

/// What went wrong in the store, whose fault it is and whether a retry helps
/// (see also [`StoreError::is_retryable`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be opened or set up (missing folder, permissions, not
    /// a SQLite file, locked by another process past the busy timeout).
    /// The operator's or the environment's fault; retrying helps only once
    /// the cause is fixed.
    #[error("cannot open the store at {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
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
    /// file stays at the previous version. A bug in the migration or a
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
    /// The file was written by a newer cardhub (schema `found`, this binary
    /// knows up to `known`). The operator's: run the newer binary. The file
    /// was not changed; retrying does not help.
    #[error("store schema version {found} is newer than this binary knows ({known})")]
    TooNew {
        /// The file's `user_version`.
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
    /// error, lock held by another process); every job of the batch gets it.
    /// Not the job's fault. Retrying helps if the cause was transient (busy,
    /// disk space freed); after an I/O error in `COMMIT` the first attempt
    /// may still surface, so retried writes must be idempotent.
    #[error("store commit failed")]
    Commit(#[source] Arc<sql::Error>),
    /// The writer thread is not running: it could not be started, or it
    /// stopped (a bug: ours). Retrying does not help; the store must be
    /// reopened.
    #[error("the store's writer thread is gone")]
    WriterGone,
}

/// State shared by all handles.
struct Inner {
    /// The database file; read connections are opened on it.
    path: PathBuf,
    /// Sending end of the bounded job queue. `None` only while dropping.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    /// The writer thread, joined on drop. `None` only while dropping.
    writer: Option<JoinHandle<()>>,
    /// Idle read connections: `read` takes one (or opens one) and puts it
    /// back.
    readers: Mutex<Vec<Connection>>,
    /// Bumped by the writer, read by `stats`.
    counters: Arc<Counters>,
    /// The WAL's size and cap, shared with the writer and the checkpointer.
    wal: Arc<checkpoint::Wal>,
    /// Copies the WAL into the database file off the commit path; dropped
    /// (with a last checkpoint) after the writer has stopped.
    _checkpointer: checkpoint::Checkpointer,
}

/// The writer's counters (relaxed atomics: each is a tally on its own).
#[derive(Default)]
struct Counters {
    jobs: AtomicU64,
    commits: AtomicU64,
    failed_jobs: AtomicU64,
}

/// A queued job, type-erased for the queue.
trait Job: Send {
    /// Runs the job on the write connection (inside its savepoint).
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran>;
    /// Answers without running: the batch broke before the job's turn.
    fn abandon(self: Box<Self>, batch_error: &Arc<sql::Error>);
}

/// A job that has run and waits for its batch's fate.
trait Ran: Send {
    /// Whether the job returned `Ok` (else its savepoint is rolled back).
    fn succeeded(&self) -> bool;
    /// Answers the caller, given whether the batch committed.
    fn finish(self: Box<Self>, batch_error: Option<&Arc<sql::Error>>);
}

/// A caller's closure and where its answer goes.
struct Submitted<T, F> {
    f: F,
    reply: oneshot::Sender<Answer<T>>,
}

/// The result of a caller's closure, held until the commit.
struct Finished<T> {
    outcome: thread::Result<sql::Result<T>>,
    reply: oneshot::Sender<Answer<T>>,
}

/// What the writer tells a caller. A job that panicked has its panic
/// re-raised in the caller, so one bad job does not stop the writer.
enum Answer<T> {
    Done(Result<T, StoreError>),
    Panicked(Box<dyn Any + Send>),
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal_cap_bytes: DEFAULT_WAL_CAP_BYTES,
            wal_hold: DEFAULT_WAL_HOLD,
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
        files::prepare_database(path).map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            source,
        })?;
        let open_error = open_error(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = rusqlite::Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Refuse a newer file before changing anything in it.
        check_version(user_version(&conn).map_err(open_error)?)?;
        configure_writer(&conn, &options).map_err(open_error)?;
        migrate(&mut conn, path)?;
        let conn = Connection::from_sqlite(conn);

        let wal = Arc::new(checkpoint::Wal::new(
            path,
            options.wal_cap_bytes,
            options.wal_hold,
        ));
        let checkpointer = checkpoint::Checkpointer::start(path, Arc::clone(&wal))?;
        let counters = Arc::new(Counters::default());
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let writer = {
            let counters = Arc::clone(&counters);
            let keeper = checkpoint::Keeper::new(Arc::clone(&wal));
            thread::Builder::new()
                .name(WRITER_THREAD.into())
                .spawn(move || run_writer(&conn, queue, &counters, keeper))
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot start the store writer thread");
                    StoreError::WriterGone
                })?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: Some(jobs),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
                counters,
                wal,
                _checkpointer: checkpointer,
            }),
        })
    }

    /// Runs `f` on the write connection as part of the next group commit and
    /// resolves once that commit is durable (see the module doc for the
    /// exact promise). Waits while the queue is full.
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
        F: FnOnce(&Connection) -> sql::Result<T> + Send + 'static,
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
        F: FnOnce(&Connection) -> sql::Result<T> + Send + 'static,
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
            None => open_reader(&self.inner.path)?,
        };
        let result = f(&conn);
        // A read that left a transaction open would pin an old snapshot (and
        // stop checkpoints): such a connection is closed, not pooled.
        if conn.as_sqlite().is_autocommit() {
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
            wal_holds: self.inner.wal.holds(),
        }
    }

    /// Jobs waiting in the queue (not yet taken by the writer), for metrics.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.inner
            .jobs
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// The WAL file's size now, in bytes (0 when there is none), for metrics.
    #[must_use]
    pub fn wal_bytes(&self) -> u64 {
        self.inner.wal.bytes()
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
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
            .field("path", &self.inner.path)
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
    /// Whether the same write may succeed if tried again later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Query(e) => e.is_busy(),
            StoreError::Commit(e) => {
                e.is_busy()
                    || matches!(&**e, sql::Error::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull))
            }
            StoreError::Open { .. }
            | StoreError::File { .. }
            | StoreError::InUse { .. }
            | StoreError::Migration { .. }
            | StoreError::TooNew { .. }
            | StoreError::WriterGone => false,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer answer what is queued, then stop.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            // The last handle may die inside a job, on the writer itself.
            if writer.thread().id() != thread::current().id() && writer.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

impl<T, F> Job for Submitted<T, F>
where
    F: FnOnce(&Connection) -> sql::Result<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Ran> {
        let Submitted { f, reply } = *self;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(conn)));
        Box::new(Finished { outcome, reply })
    }

    fn abandon(self: Box<Self>, batch_error: &Arc<sql::Error>) {
        let error = StoreError::Commit(Arc::clone(batch_error));
        // A caller that stopped waiting (cancelled) has nobody to tell.
        let _ = self.reply.send(Answer::Done(Err(error)));
    }
}

impl<T: Send + 'static> Ran for Finished<T> {
    fn succeeded(&self) -> bool {
        matches!(self.outcome, Ok(Ok(_)))
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

/// The writer thread: one batch, one transaction, one fsync, until every
/// handle is gone and the queue is empty. Between batches it keeps the WAL
/// under its cap.
fn run_writer(
    conn: &Connection,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    counters: &Counters,
    mut keeper: checkpoint::Keeper,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(conn, &mut batch, counters);
        keeper.after_batch(conn.as_sqlite());
    }
    tracing::debug!("store writer stopped");
}

/// Runs one batch in one transaction and answers every job after `COMMIT`.
fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>, counters: &Counters) {
    let size = batch.len();
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(size);
    let mut skipped: Vec<Box<dyn Job>> = Vec::new();
    let outcome = run_batch(conn, batch, &mut ran, &mut skipped);

    let failed = match &outcome {
        Ok(()) => ran.iter().filter(|r| !r.succeeded()).count(),
        Err(e) => {
            tracing::error!(error = %e, jobs = size, "store batch not committed");
            size
        }
    };
    counters.jobs.fetch_add(size as u64, Ordering::Relaxed);
    counters
        .commits
        .fetch_add(u64::from(outcome.is_ok()), Ordering::Relaxed);
    counters
        .failed_jobs
        .fetch_add(failed as u64, Ordering::Relaxed);

    let batch_error = outcome.err();
    for done in ran {
        done.finish(batch_error.as_ref());
    }
    if let Some(e) = &batch_error {
        for job in skipped {
            job.abandon(e);
        }
    }
}

/// `BEGIN IMMEDIATE`, each job in its own savepoint (a lone job in the
/// transaction alone), `COMMIT`. Once the
/// transaction is broken no further job runs in it (they go to `skipped`)
/// and it is rolled back.
fn run_batch(
    conn: &Connection,
    batch: &mut Vec<Box<dyn Job>>,
    ran: &mut Vec<Box<dyn Ran>>,
    skipped: &mut Vec<Box<dyn Job>>,
) -> Result<(), Arc<sql::Error>> {
    let mut broken = conn.execute_batch("BEGIN IMMEDIATE").err();
    // A lone job needs no savepoint: the transaction is its own, and so is
    // its rollback. (A savepoint keeps a copy of every page the job changes
    // until it ends: for a bulk job such as a re-keying, gigabytes.)
    let alone = batch.len() == 1;
    let mut rolled_back = false;
    for job in batch.drain(..) {
        if broken.is_some() {
            skipped.push(job);
            continue;
        }
        if alone {
            let done = job.run(conn);
            if !done.succeeded() {
                rolled_back = true;
                broken = exec(conn, "ROLLBACK").err();
            }
            ran.push(done);
            continue;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            broken = Some(e);
            skipped.push(job);
            continue;
        }
        let done = job.run(conn);
        let end = if done.succeeded() {
            exec(conn, "RELEASE job")
        } else {
            exec(conn, "ROLLBACK TO job").and_then(|()| exec(conn, "RELEASE job"))
        };
        // A failed release or rollback (e.g. SQLite rolled the whole
        // transaction back after an I/O error) breaks the batch.
        broken = end.err();
        ran.push(done);
    }
    let outcome = match broken {
        // The lone job failed: its error is its own, nothing to commit.
        None if rolled_back => Ok(()),
        None => exec(conn, "COMMIT").map_err(Arc::new),
        Some(e) => Err(Arc::new(e)),
    };
    if outcome.is_err()
        && !conn.as_sqlite().is_autocommit()
        && let Err(e) = conn.execute_batch("ROLLBACK")
    {
        tracing::error!(error = %e, "store rollback failed");
    }
    outcome
}

/// Runs one cached, parameterless statement.
fn exec(conn: &Connection, sql: &str) -> sql::Result<()> {
    conn.prepare_cached(sql)?.execute(params![]).map(|_| ())
}

/// Durable, concurrent settings for the write connection.
fn configure_writer(conn: &rusqlite::Connection, options: &StoreOptions) -> rusqlite::Result<()> {
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still durable (synchronous=FULL), but readers will wait on writes.
        tracing::warn!(journal_mode = %mode, "store could not switch to WAL");
    }
    // In WAL mode only FULL syncs the WAL on every commit; NORMAL does not.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Checkpoints run on their own thread (see `checkpoint`), not in commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // When SQLite resets the log (everything copied, no reader on it), the
    // next commit cuts the file back to the cap instead of keeping its size.
    let limit = i64::try_from(options.wal_cap_bytes).unwrap_or(i64::MAX);
    conn.pragma_update(None, "journal_size_limit", limit)?;
    // macOS: fsync alone does not reach the platter; ignored elsewhere.
    conn.pragma_update(None, "fullfsync", true)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Each job runs in its own savepoint, so every page a job touches first
    // is copied to a sub-journal for its rollback: in memory, not in a
    // temporary file (a write system call per page).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A pooled read connection: the file must exist, writes are refused.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_error = open_error(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(open_error)?;
    Ok(Connection::from_sqlite(conn))
}

/// Wraps SQLite's reason for not opening the file at `path`.
pub(crate) fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    |source| StoreError::Open {
        path: path.to_path_buf(),
        source: source.into(),
    }
}
