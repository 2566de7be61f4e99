//! The store's WAL cap against real files: the writer frees the log between
//! batches (the next commit starts it over in the same file), holds batches
//! while a read keeps a log past the cap, and gives up holding (the hub keeps
//! answering) when that read lasts longer than the hold.
//!
//! Deterministic: every bound is checked after each acknowledged write (the
//! writer keeps the log in check before it takes the next batch); the tests
//! wait for events (the store's hold counter) within a generous overall
//! limit, and nothing asserts on elapsed time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cardhub_core::store::{Store, StoreOptions};
use rusqlite::Connection;
use tempfile::TempDir;

/// A small cap, so a test passes it in a few dozen writes.
const CAP: u64 = 256 * 1024;

/// Rows of 4,000 bytes one job inserts: about 32 KiB of WAL per batch.
const ROWS_PER_JOB: usize = 8;

/// What one batch of [`write_job`] may add past the cap (its pages, the
/// tables' inner pages and frame headers, with room to spare).
const ONE_BATCH: u64 = 96 * 1024;

/// Long enough never to run out in a test that waits for the read to end.
const LONG_HOLD: Duration = Duration::from_secs(120);

/// The overall limit for events a test waits for.
const PATIENCE: Duration = Duration::from_secs(60);

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("wal-cap-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("cardhub.db")
}

async fn open(path: &Path, wal_hold: Duration) -> Store {
    let options = StoreOptions {
        wal_cap_bytes: CAP,
        wal_hold,
        ..StoreOptions::default()
    };
    let store = Store::open_with(path, options).expect("open");
    store
        .write(|c| c.execute_batch("CREATE TABLE blobs (b BLOB)"))
        .await
        .expect("table");
    store
}

/// One acknowledged job of [`ROWS_PER_JOB`] rows.
async fn write_job(store: &Store) {
    store
        .write(|c| {
            let mut insert = c.prepare_cached("INSERT INTO blobs VALUES (zeroblob(4000))")?;
            for _ in 0..ROWS_PER_JOB {
                insert.execute([])?;
            }
            Ok(())
        })
        .await
        .expect("insert");
}

/// A connection holding one read snapshot on the log until `COMMIT`.
fn pin_snapshot(path: &Path) -> Connection {
    let pin = Connection::open(path).expect("reader");
    pin.execute_batch("BEGIN").expect("begin");
    let _: i64 = pin
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .expect("snapshot taken");
    pin
}

/// Panics when the log is past the cap by more than one batch.
fn assert_within_one_batch_of_the_cap(store: &Store, job: usize) {
    let bytes = store.wal_bytes().unwrap();
    assert!(
        bytes <= CAP + ONE_BATCH,
        "after job {job} the WAL is {bytes} bytes, past its cap of {CAP} by more than one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_within_one_batch_of_its_cap_under_writes_and_reads() {
    let dir = temp_dir();
    let store = open(&db_path(&dir), LONG_HOLD).await;
    // Short reads back to back, like searches.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _: i64 = store
                    .read(|c| c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)))
                    .expect("read");
                reads += 1;
            }
            reads
        }
    });
    // Sixteen times the cap in all.
    let jobs = usize::try_from(16 * CAP / (ROWS_PER_JOB as u64 * 4000)).expect("job count");
    for job in 0..jobs {
        write_job(&store).await;
        assert_within_one_batch_of_the_cap(&store, job);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("reader thread") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_in_the_same_file_instead_of_emptying_it() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = open(&path, LONG_HOLD).await;
    let file = dir.path().join("cardhub.db-wal");
    let size = || std::fs::metadata(&file).map_or(0, |m| m.len());
    // Sixteen times the cap in all: the log is freed many times over.
    let jobs = usize::try_from(16 * CAP / (ROWS_PER_JOB as u64 * 4000)).expect("job count");
    let mut reached_half = false;
    for job in 0..jobs {
        write_job(&store).await;
        assert_within_one_batch_of_the_cap(&store, job);
        let bytes = size();
        if reached_half {
            assert!(
                bytes > CAP / 2,
                "after job {job} the WAL file was cut to {bytes} bytes instead of reused"
            );
        }
        reached_half |= bytes > CAP / 2;
    }
    assert!(reached_half, "the WAL file never passed half its cap");
    assert_eq!(store.stats().wal_holds, 0, "no read, no hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_the_log_holds_writes_past_the_cap_until_it_ends() {
    const JOBS: usize = 40;
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = open(&path, LONG_HOLD).await;
    let pin = pin_snapshot(&path);
    let writes = tokio::spawn({
        let store = store.clone();
        async move {
            for job in 0..JOBS {
                write_job(&store).await;
                assert_within_one_batch_of_the_cap(&store, job);
            }
        }
    });

    let deadline = Instant::now() + PATIENCE;
    while store.stats().wal_holds == 0 {
        assert!(
            Instant::now() < deadline && !writes.is_finished(),
            "the writer never held writes; WAL at {} bytes",
            store.wal_bytes().unwrap()
        );
        tokio::task::yield_now().await;
    }
    assert!(!writes.is_finished(), "writes went on past the cap");
    pin.execute_batch("COMMIT").expect("snapshot released");
    tokio::time::timeout(PATIENCE, writes)
        .await
        .expect("writes resume once the read ends")
        .expect("every write within one batch of the cap");
    assert_eq!(store.stats().wal_holds, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_resume_when_a_read_pins_the_log_past_the_hold() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = open(&path, Duration::from_millis(20)).await;
    let pin = pin_snapshot(&path);
    // Every write is answered though the log cannot be emptied.
    while store.wal_bytes().unwrap() < 4 * CAP {
        write_job(&store).await;
    }
    assert_eq!(
        store.stats().wal_holds,
        1,
        "held once, then not again while the same read pins the log"
    );

    pin.execute_batch("COMMIT").expect("snapshot released");
    // The writer empties the log after the next batch (before it takes the
    // one after), and past the cap it holds again.
    write_job(&store).await;
    write_job(&store).await;
    assert_within_one_batch_of_the_cap(&store, 1);
    let pin = pin_snapshot(&path);
    while store.stats().wal_holds < 2 {
        assert!(
            store.wal_bytes().unwrap() < 4 * CAP,
            "the writer did not hold again"
        );
        write_job(&store).await;
    }
    drop(pin);
}
