//! The embedded back end: one SQLite file, one writer thread that commits
//! queued jobs in groups (one `COMMIT`, one fsync, many jobs; each job in its
//! own savepoint), a checkpointer that keeps the WAL under its cap, and
//! `query_only` read connections. See the [store](super) module doc for the
//! durability promise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use rusqlite::OpenFlags;
use tokio::sync::mpsc;

use super::migrations::{check_version, migrate, user_version};
use super::sql::{self, Connection};
use super::{
    BUSY_TIMEOUT, Counters, Job, MAX_BATCH, Ran, StoreError, StoreOptions, checkpoint, files,
    spawn_writer,
};
use crate::params;

/// The writer thread's name, as seen in debuggers and `top -H`.
const WRITER_THREAD: &str = "cardhub-store-writer";

/// What the store keeps of the embedded back end besides its queue.
pub(super) struct Sqlite {
    /// The database file; read connections are opened on it.
    pub(super) path: PathBuf,
    /// The WAL's size and cap, shared with the writer and the checkpointer.
    pub(super) wal: Arc<checkpoint::Wal>,
    /// Copies the WAL into the database file off the commit path; dropped
    /// (with a last checkpoint) after the writer has stopped.
    _checkpointer: checkpoint::Checkpointer,
}

impl Sqlite {
    /// Opens (or creates, `0600`) the database at `path`, sets it up,
    /// migrates it and starts the checkpointer and the writer thread, which
    /// takes its jobs from `queue`.
    pub(super) fn open(
        path: &Path,
        options: StoreOptions,
        queue: mpsc::Receiver<Box<dyn Job>>,
        counters: &Arc<Counters>,
    ) -> Result<(Sqlite, JoinHandle<()>), StoreError> {
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
        let page_size: u32 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(open_error)?;
        let wal = Arc::new(checkpoint::Wal::new(
            path,
            u64::from(page_size),
            options.wal_cap_bytes,
            options.wal_hold,
        ));
        checkpoint::Wal::watch(&wal, &mut conn).map_err(open_error)?;
        migrate(&mut conn, path)?;
        let conn = Connection::from_sqlite(conn);

        let checkpointer = checkpoint::Checkpointer::start(path, Arc::clone(&wal))?;
        let writer = {
            let counters = Arc::clone(counters);
            let keeper = checkpoint::Keeper::new(Arc::clone(&wal));
            spawn_writer(WRITER_THREAD.into(), move || {
                run_writer(&conn, queue, &counters, keeper);
            })?
        };
        let sqlite = Sqlite {
            path: path.to_path_buf(),
            wal,
            _checkpointer: checkpointer,
        };
        Ok((sqlite, writer))
    }

    /// A pooled read connection: the file must exist, writes are refused.
    pub(super) fn open_reader(&self) -> Result<Connection, StoreError> {
        let path = &self.path;
        let open_error = open_error(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(open_error)?;
        Ok(Connection::from_sqlite(conn))
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
    let Some(raw) = conn.as_sqlite() else {
        tracing::error!("the SQLite writer was given another database's connection");
        return;
    };
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
        keeper.after_batch(raw);
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
    // Still in the transaction: not idle.
    if outcome.is_err()
        && !conn.is_idle()
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
    // When SQLite starts the log over (everything copied, no reader on it),
    // the first commit cuts a file past the cap back to the cap.
    let limit = i64::try_from(options.wal_cap_bytes).unwrap_or(i64::MAX);
    conn.pragma_update(None, "journal_size_limit", limit)?;
    // macOS: fsync alone does not reach the platter; ignored elsewhere.
    conn.pragma_update(None, "fullfsync", true)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Each job runs in its own savepoint, so every page a job touches first
    // is copied to a sub-journal for its rollback: in memory, not in a
    // temporary file (a write system call per page).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The writer's page cache: the hot pages of every index a commit
    // writes stay in memory instead of being read back from the file.
    let cache_kib = i64::try_from(options.cache_bytes >> 10).unwrap_or(i64::MAX);
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Wraps SQLite's reason for not opening the file at `path`.
pub(crate) fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    |source| StoreError::Open {
        location: path.display().to_string(),
        source: source.into(),
    }
}
