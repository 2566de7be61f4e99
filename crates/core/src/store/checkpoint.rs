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
//! end. So the writer keeps the log under the soft cap ([`StoreOptions`])
//! itself, between two group commits, on its own connection ([`Keeper`]):
//!
//! - after every batch it looks at the log's length: the frames SQLite
//!   reports after each of the writer's commits (its WAL hook), not the
//!   file's size, which no longer falls when the log starts over. Past half
//!   the cap it runs a `RESTART` checkpoint: copy the rest of the log into
//!   the database and wait at most [`SOFT_WAIT`] for reads still on the log
//!   (a search's snapshot; reads that start once everything is copied read
//!   the database file and do not count). The next commit then writes the
//!   log from its start, over the file's blocks and cached pages, instead of
//!   appending to an emptied file (new blocks, new page-cache pages: some
//!   10 % of the hub's CPU per authorization in a long flood, by
//!   `docs/performance.md`). If reads keep it, the next batch tries again —
//!   not the next tick;
//! - past the cap itself it holds further batches and retries until the log
//!   is copied and free, for at most [`StoreOptions::wal_hold`]. So the log —
//!   and the file, which SQLite cuts back to the cap when the log starts over
//!   (`journal_size_limit`) — passes the cap by at most one batch's writes.
//!   Only a read that keeps one snapshot longer than the hold can pin the
//!   log: writes then resume (the hub keeps answering), the file grows until
//!   that read ends, and the writer holds again only after a checkpoint has
//!   freed the log. A file past the cap (grown so) is emptied with
//!   `TRUNCATE` rather than restarted, so an idle store gives the disk back.
//!
//! While the log is under half the cap, this thread copies it with passive
//! checkpoints, so the writer's checkpoints find little left to copy. Past
//! half the cap it keeps off the writer's way (a second checkpoint would
//! make the writer's fail at once), unless the writer has run no batch for a
//! whole tick (idle, or inside one long job): then it frees the log itself.
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

/// The WAL file's header; each frame adds [`FRAME_HEADER`] bytes to a page.
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

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

/// The WAL's length and the cap on it, shared by the writer and the
/// checkpoint thread.
pub(crate) struct Wal {
    /// `<database>-wal`.
    file: PathBuf,
    /// The soft cap, in bytes; half of it starts the writer's checkpoints.
    cap: u64,
    /// A frame's bytes in the file: a page and its header.
    frame_bytes: u64,
    /// Frames in the log since it last started over: set by SQLite's WAL
    /// hook after each of the writer's commits, zeroed by a checkpoint that
    /// copied them all and found no read on them (the next commit starts
    /// the log over).
    frames: AtomicU64,
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

/// What a `RESTART` (or `TRUNCATE`) checkpoint achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freed {
    /// The whole log was copied and no read is left on it: the next commit
    /// writes it from its start (or the file was emptied).
    Emptied,
    /// Reads still on the log, the write lock or another checkpoint kept it
    /// (what could be copied was).
    InUse,
    /// SQLite reported an error (logged).
    Failed,
}

impl Wal {
    /// The WAL of the database at `db`, whose pages are `page_size` bytes,
    /// capped at `cap` bytes; batches are held at most `hold` to keep it
    /// there.
    pub(crate) fn new(db: &Path, page_size: u64, cap: u64, hold: Duration) -> Wal {
        Wal {
            file: files::sibling(db, "-wal"),
            cap,
            frame_bytes: page_size + FRAME_HEADER,
            frames: AtomicU64::new(0),
            hold,
            wrote: AtomicBool::new(false),
            holds: AtomicU64::new(0),
        }
    }

    /// Has SQLite report the log's length after each commit of `writer`
    /// (replacing `wal_autocheckpoint`'s hook: set that pragma first).
    pub(crate) fn watch(wal: &Arc<Wal>, writer: &mut Connection) -> rusqlite::Result<()> {
        let wal = Arc::clone(wal);
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames| {
            wal.frames
                .store(u64::try_from(frames).unwrap_or(0), Ordering::Relaxed);
            Ok(())
        }))
    }

    /// The WAL file's size now (0 when there is none). After a `RESTART`
    /// the file keeps its size (at most the cap) while the log starts over.
    pub(crate) fn bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map_or(0, |m| m.len())
    }

    /// The bytes of the log still in use: written since it last started
    /// over, unless a checkpoint has since copied and freed them all.
    fn used(&self) -> u64 {
        match self.frames.load(Ordering::Relaxed) {
            0 => 0,
            frames => WAL_HEADER + frames * self.frame_bytes,
        }
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

    /// Called by the writer after each batch: frees the log past half the
    /// cap, and past the cap holds the next batch until it is freed (at
    /// most the hold).
    pub(crate) fn after_batch(&mut self, writer: &Connection) {
        self.wal.wrote.store(true, Ordering::Relaxed);
        if self.wal.used() <= self.wal.trigger() {
            return;
        }
        if free(writer, &self.wal, SOFT_WAIT) == Freed::Emptied {
            self.may_hold = true;
            return;
        }
        if self.may_hold && self.wal.used() > self.wal.cap {
            self.may_hold = self.hold(writer);
        }
    }

    /// Retries the checkpoint until the log is freed or the hold is over;
    /// no batch runs meanwhile. Returns whether a later batch may hold again:
    /// not after a hold that ran out (a long read pins the log).
    fn hold(&self, writer: &Connection) -> bool {
        self.wal.holds.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + self.wal.hold;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    wal_used_bytes = self.wal.used(),
                    wal_file_bytes = self.wal.bytes(),
                    cap = self.wal.cap,
                    "store WAL past its cap, pinned by a long read; writes resume"
                );
                return false;
            }
            match free(writer, &self.wal, left.min(FORCED_WAIT)) {
                Freed::Emptied => return true,
                // Logged; holding on would only delay the answers.
                Freed::Failed => return true,
                Freed::InUse => thread::sleep(RETRY_PAUSE),
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
        if wal.used() <= wal.trigger() {
            passive(conn);
        } else if !wrote || last {
            // The writer ran no batch this tick, so it will not free the
            // log: the lock is free (or held by one long job, and the wait
            // is bounded).
            free(conn, wal, FORCED_WAIT);
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

/// RESTART: copies the whole log and waits until no read uses it, so the
/// next commit writes it from its start over the same file; TRUNCATE (the
/// same, and empties the file) when the file is past the cap. Waits at most
/// `wait` for the write lock and for reads still using the log.
fn free(conn: &Connection, wal: &Wal, wait: Duration) -> Freed {
    let sql = if wal.bytes() > wal.cap {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    } else {
        "PRAGMA wal_checkpoint(RESTART)"
    };
    // The length before: a commit let in once the checkpoint thread's
    // checkpoint had freed the log sets a new length, which stands.
    let frames = wal.frames.load(Ordering::Relaxed);
    let outcome = conn
        .busy_timeout(wait)
        .and_then(|()| conn.query_row(sql, [], |r| r.get::<_, i64>(0)));
    if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
        tracing::warn!(error = %e, "store busy timeout not restored");
    }
    match outcome {
        Ok(0) => {
            // Err: a commit has since set the length.
            let _ = wal
                .frames
                .compare_exchange(frames, 0, Ordering::Relaxed, Ordering::Relaxed);
            Freed::Emptied
        }
        Ok(_) => Freed::InUse,
        Err(e) => {
            tracing::warn!(error = %e, "store checkpoint (restart) failed");
            Freed::Failed
        }
    }
}
