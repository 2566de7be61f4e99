//! WAL checkpoints off the commit path, and a bound on the WAL's size.
//!
//! SQLite's automatic checkpoint runs inside a committing transaction, so
//! every thousand pages one commit — and every answer waiting on it — would
//! also copy the WAL into the database file and fsync it. The writer turns
//! that off; this thread runs passive checkpoints instead, which never block
//! the writer or readers.
//!
//! A passive checkpoint copies frames but never *resets* the WAL: under a
//! steady stream of commits the log never becomes fully copied at the moment
//! a new write starts, so SQLite keeps appending and the file grows without
//! end. So, once the WAL file passes the soft cap ([`StoreOptions`]), the
//! checkpoint thread stops its passive runs and asks the writer for a
//! `TRUNCATE` checkpoint, which the writer runs between two group commits on
//! its own connection: it copies the rest of the log, waits at most
//! [`FORCED_WAIT`] for reads still using the log, and empties the file. While
//! it runs no batch commits (the writer is busy with it), so writes pause for
//! the copy and at most [`FORCED_WAIT`]; at most once per tick. When the
//! writer has run no batch for a whole tick (idle, or inside one long job),
//! the checkpoint thread runs it itself. A read that holds one snapshot for
//! longer keeps the log from being emptied (SQLite cannot drop frames a
//! reader may still need); the next tick tries again.
//!
//! [`StoreOptions`]: super::StoreOptions

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, StoreError, files, open_error};

/// How often the WAL is copied into the database file and its size checked.
const EVERY: Duration = Duration::from_millis(250);

/// The longest a forced checkpoint waits for reads still using the log (the
/// writer's pause is this plus the copy).
pub(crate) const FORCED_WAIT: Duration = Duration::from_millis(100);

const THREAD: &str = "cardhub-store-checkpoint";

/// The WAL's size and the cap on it, shared by the writer and the
/// checkpoint thread.
pub(crate) struct Wal {
    /// `<database>-wal`.
    file: PathBuf,
    /// Past this many bytes the log is emptied by a forced checkpoint.
    cap: u64,
    /// Set by the checkpoint thread when the file is past the cap; taken by
    /// the writer between batches.
    truncate_wanted: AtomicBool,
}

/// The checkpoint thread; stopped and joined on drop (after a last checkpoint).
pub(crate) struct Checkpointer {
    /// Dropping it stops the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Wal {
    /// The WAL of the database at `db`, capped at `cap` bytes.
    pub(crate) fn new(db: &Path, cap: u64) -> Wal {
        Wal {
            file: files::sibling(db, "-wal"),
            cap,
            truncate_wanted: AtomicBool::new(false),
        }
    }

    /// The WAL file's size now (0 when there is none).
    pub(crate) fn bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map_or(0, |m| m.len())
    }

    /// Called by the writer between batches: empties the log if the
    /// checkpoint thread asked for it.
    pub(crate) fn after_batch(&self, writer: &Connection) {
        if self.truncate_wanted.swap(false, Ordering::Relaxed) {
            truncate(writer);
        }
    }
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on its own connection.
    pub(crate) fn start(path: &Path, wal: Arc<Wal>) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error(path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error(path))?;
        let (stop, stopped) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || run(&conn, &wal, &stopped))
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the store checkpoint thread");
                StoreError::WriterGone
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store checkpoint thread panicked");
        }
    }
}

fn run(conn: &Connection, wal: &Wal, stopped: &mpsc::Receiver<()>) {
    loop {
        let last = !matches!(stopped.recv_timeout(EVERY), Err(RecvTimeoutError::Timeout));
        if wal.bytes() <= wal.cap {
            passive(conn);
        } else if wal.truncate_wanted.swap(true, Ordering::Relaxed) || last {
            // Still wanted since the last tick: the writer ran no batch in
            // between, so the lock is free (or held by one long job, and the
            // wait below is bounded).
            wal.truncate_wanted.store(false, Ordering::Relaxed);
            truncate(conn);
        }
        if last {
            break;
        }
    }
}

/// PASSIVE: copies what no reader still needs; never waits for locks.
fn passive(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "store checkpoint failed");
    }
}

/// TRUNCATE: copies the whole log and empties the file, waiting at most
/// [`FORCED_WAIT`] for the write lock and for reads still using the log.
fn truncate(conn: &Connection) {
    let outcome = conn.busy_timeout(FORCED_WAIT).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    match outcome {
        Ok(0) => tracing::debug!("store WAL emptied"),
        // Readers (or a long write) still need the log: the next tick retries.
        Ok(_) => tracing::debug!("store WAL past its cap, still in use; retrying"),
        Err(e) => tracing::warn!(error = %e, "store checkpoint (truncate) failed"),
    }
    if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!(error = %e, "store busy timeout not restored");
    }
}
