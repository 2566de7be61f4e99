//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs
//! inside a committing transaction, so every thousand pages one commit — and
//! every answer waiting on it — would also copy the WAL into the database
//! file and fsync it. The writer turns that off; this thread runs passive
//! checkpoints instead, which never block the writer or readers.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, StoreError, open_error};

/// How often the WAL is copied into the database file.
const EVERY: Duration = Duration::from_millis(250);

const THREAD: &str = "cardhub-store-checkpoint";

/// The checkpoint thread; stopped and joined on drop (after a last checkpoint).
pub(crate) struct Checkpointer {
    /// Dropping it stops the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on its own connection.
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error(path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error(path))?;
        let (stop, stopped) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || run(&conn, &stopped))
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

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    loop {
        let last = !matches!(stopped.recv_timeout(EVERY), Err(RecvTimeoutError::Timeout));
        // PASSIVE: copy what no reader still needs; never wait for locks.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "store checkpoint failed");
        }
        if last {
            break;
        }
    }
}
