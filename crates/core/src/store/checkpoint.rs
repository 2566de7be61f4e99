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
//! end. So the writer keeps the file under the soft cap ([`StoreOptions`])
//! itself, between two group commits, on its own connection ([`Keeper`]):
//!
//! - after every batch it looks at the file's size (one `stat`). Past half
//!   the cap it runs a `TRUNCATE` checkpoint: copy the rest of the log into
//!   the database, wait at most [`SOFT_WAIT`] for reads still on the log
//!   (a search's snapshot; reads that start once everything is copied read
//!   the database file and do not count), empty the file. If reads keep it,
//!   the next batch tries again — not the next tick;
//! - past the cap itself it holds further batches and retries until the log
//!   is emptied, for at most [`StoreOptions::wal_hold`]. So the file passes
//!   the cap by at most one batch's writes. Only a read that keeps one
//!   snapshot longer than the hold can pin the log: writes then resume (the
//!   hub keeps answering), the file grows until that read ends, and the
//!   writer holds again only after a checkpoint has emptied it.
//!
//! While the log is under half the cap, this thread copies it with passive
//! checkpoints, so the writer's checkpoints find little left to copy. Past
//! half the cap it keeps off the writer's way (a second checkpoint would
//! make the writer's fail at once), unless the writer has run no batch for a
//! whole tick (idle, or inside one long job): then it empties the log itself.
//!
//! [`StoreOptions`]: super::StoreOptions
//! [`StoreOptions::wal_hold`]: super::StoreOptions::wal_hold

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::sqlite::open_error;
use super::{BUSY_TIMEOUT, StoreError, files};

/// How often the WAL is copied into the database file and its size checked.
const EVERY: Duration = Duration::from_millis(250);

/// How long the writer's checkpoint after a batch waits for reads still on
/// the log (a search takes well under this) before the next batch retries.
const SOFT_WAIT: Duration = Duration::from_millis(10);

/// How long the checkpoint thread's own checkpoint waits for the write lock
/// and for reads, and the longest one retry of a hold waits.
const FORCED_WAIT: Duration = Duration::from_millis(100);

/// Pause between two tries of a hold whose checkpoint found another
/// checkpoint running (SQLite then refuses at once, without waiting).
const RETRY_PAUSE: Duration = Duration::from_millis(1);

const THREAD: &str = "cardhub-store-checkpoint";

/// The WAL's size and the cap on it, shared by the writer and the
/// checkpoint thread.
pub(crate) struct Wal {
    /// `<database>-wal`.
    file: PathBuf,
    /// The soft cap, in bytes; half of it starts the writer's checkpoints.
    cap: u64,
    /// The longest the writer holds batches to empty a log past the cap.
    hold: Duration,
    /// Set by the writer after each batch; taken by the checkpoint thread
    /// each tick (a writer that ran no batch leaves the log to the thread).
    wrote: AtomicBool,
    /// Times the writer held batches for the cap (read by `Store::stats`).
    holds: AtomicU64,
}

/// The writer's side of the cap: owned by the writer thread, run between
/// two batches.
pub(crate) struct Keeper {
    wal: Arc<Wal>,
    /// Whether a log past the cap holds batches; cleared by a hold that
    /// timed out (a long read pins the log), set again once the log is
    /// emptied.
    may_hold: bool,
}

/// The checkpoint thread; stopped and joined on drop (after a last checkpoint).
pub(crate) struct Checkpointer {
    /// Dropping it stops the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What a `TRUNCATE` checkpoint achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truncated {
    /// The whole log was copied and the file emptied.
    Emptied,
    /// Reads still on the log, the write lock or another checkpoint kept it
    /// (what could be copied was).
    InUse,
    /// SQLite reported an error (logged).
    Failed,
}

impl Wal {
    /// The WAL of the database at `db`, capped at `cap` bytes; batches are
    /// held at most `hold` to keep it there.
    pub(crate) fn new(db: &Path, cap: u64, hold: Duration) -> Wal {
        Wal {
            file: files::sibling(db, "-wal"),
            cap,
            hold,
            wrote: AtomicBool::new(false),
            holds: AtomicU64::new(0),
        }
    }

    /// The WAL file's size now (0 when there is none).
    pub(crate) fn bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map_or(0, |m| m.len())
    }

    /// Times the writer has held batches to keep the log under its cap.
    pub(crate) fn holds(&self) -> u64 {
        self.holds.load(Ordering::Relaxed)
    }

    /// Past this size the log is emptied between batches.
    fn trigger(&self) -> u64 {
        self.cap / 2
    }
}

impl Keeper {
    pub(crate) fn new(wal: Arc<Wal>) -> Keeper {
        Keeper {
            wal,
            may_hold: true,
        }
    }

    /// Called by the writer after each batch: empties the log past half the
    /// cap, and past the cap holds the next batch until it is emptied (at
    /// most the hold).
    pub(crate) fn after_batch(&mut self, writer: &Connection) {
        self.wal.wrote.store(true, Ordering::Relaxed);
        if self.wal.bytes() <= self.wal.trigger() {
            return;
        }
        if truncate(writer, SOFT_WAIT) == Truncated::Emptied {
            self.may_hold = true;
            return;
        }
        if self.may_hold && self.wal.bytes() > self.wal.cap {
            self.may_hold = self.hold(writer);
        }
    }

    /// Retries the checkpoint until the log is emptied or the hold is over;
    /// no batch runs meanwhile. Returns whether a later batch may hold again:
    /// not after a hold that ran out (a long read pins the log).
    fn hold(&self, writer: &Connection) -> bool {
        self.wal.holds.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + self.wal.hold;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    wal_bytes = self.wal.bytes(),
                    cap = self.wal.cap,
                    "store WAL past its cap, pinned by a long read; writes resume"
                );
                return false;
            }
            match truncate(writer, left.min(FORCED_WAIT)) {
                Truncated::Emptied => return true,
                // Logged; holding on would only delay the answers.
                Truncated::Failed => return true,
                Truncated::InUse => thread::sleep(RETRY_PAUSE),
            }
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
        let wrote = wal.wrote.swap(false, Ordering::Relaxed);
        if wal.bytes() <= wal.trigger() {
            passive(conn);
        } else if !wrote || last {
            // The writer ran no batch this tick, so it will not empty the
            // log: the lock is free (or held by one long job, and the wait
            // is bounded).
            truncate(conn, FORCED_WAIT);
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
/// `wait` for the write lock and for reads still using the log.
fn truncate(conn: &Connection, wait: Duration) -> Truncated {
    let outcome = conn.busy_timeout(wait).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!(error = %e, "store busy timeout not restored");
    }
    match outcome {
        Ok(0) => Truncated::Emptied,
        Ok(_) => Truncated::InUse,
        Err(e) => {
            tracing::warn!(error = %e, "store checkpoint (truncate) failed");
            Truncated::Failed
        }
    }
}
