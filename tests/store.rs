//! The store against real files: durability, group commit, per-job failure,
//! migrations, and a kill -9 crash test.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use cardhub_core::store::{SCHEMA_VERSION, Store, StoreError, StoreOptions, sql};
use rusqlite::Connection;
use tempfile::TempDir;

/// The crash test's child reads its database path from this variable.
const CRASH_DB_ENV: &str = "CARDHUB_STORE_CRASH_DB";
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("store-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("cardhub.db")
}

/// Inserts a row with a unique id into this test's own table (created on
/// first use, inside the job's transaction) and returns its rowid.
fn insert_row(c: &sql::Connection, id: &str) -> sql::Result<i64> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS store_test (id TEXT PRIMARY KEY)")?;
    c.query_row(
        "INSERT INTO store_test (id) VALUES (?1) RETURNING rowid",
        [id],
        |r| r.get(0),
    )
}

/// Every row id in the test table, read through a brand-new connection.
fn txn_ids_on_disk(path: &Path) -> HashSet<String> {
    let c = Connection::open(path).expect("fresh connection");
    let mut stmt = c
        .prepare_cached("SELECT id FROM store_test")
        .expect("select");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

#[tokio::test]
async fn acknowledged_write_is_visible_to_a_new_connection() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");

    let seq = store
        .write(|c| insert_row(c, "txn-1"))
        .await
        .expect("write");
    assert!(seq > 0);
    assert!(txn_ids_on_disk(&path).contains("txn-1"));

    let pooled: String = store
        .read(move |c| {
            c.query_row("SELECT id FROM store_test WHERE rowid = ?1", [seq], |r| {
                r.get(0)
            })
        })
        .expect("read");
    assert_eq!(pooled, "txn-1");
}

#[test]
fn write_blocking_outside_a_runtime() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");
    store
        .write_blocking(|c| insert_row(c, "cli-1"))
        .expect("write_blocking");
    assert!(txn_ids_on_disk(&path).contains("cli-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits() {
    const WRITES: usize = 2_000;
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");

    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.write(move |c| insert_row(c, &format!("g-{i}"))).await },
            )
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("write");
    }

    let stats = store.stats();
    println!(
        "{WRITES} writes in {} commits: {:.1} jobs per commit",
        stats.commits,
        stats.jobs_per_commit()
    );
    assert_eq!(stats.jobs, WRITES as u64);
    assert_eq!(stats.failed_jobs, 0);
    assert!(
        stats.commits < 1_000,
        "group commit did not group: {stats:?}"
    );
    assert_eq!(txn_ids_on_disk(&path).len(), WRITES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_job_does_not_spoil_its_batch() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");
    store
        .write(|c| insert_row(c, "dup"))
        .await
        .expect("first row");
    let before = store.stats();

    // Hold the writer inside a job so the next three queue up as one batch.
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let (release, gate) = std_mpsc::channel::<()>();
    let blocker = tokio::spawn({
        let store = store.clone();
        async move {
            let mut started = Some(started);
            store
                .write(move |_| {
                    if let Some(started) = started.take() {
                        let _ = started.send(());
                    }
                    let _ = gate.recv();
                    Ok(())
                })
                .await
        }
    });
    running.await.expect("blocker runs");
    let spawn_insert = |txn: &'static str| {
        let store = store.clone();
        tokio::spawn(async move { store.write(move |c| insert_row(c, txn)).await })
    };
    let good_1 = spawn_insert("good-1");
    let bad = spawn_insert("dup");
    let good_2 = spawn_insert("good-2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.queued() < 3 {
        assert!(Instant::now() < deadline, "jobs never queued");
        tokio::task::yield_now().await;
    }
    release.send(()).expect("release the writer");

    blocker.await.expect("task").expect("blocker");
    good_1.await.expect("task").expect("good-1");
    good_2.await.expect("task").expect("good-2");
    match bad.await.expect("task") {
        Err(StoreError::Query(e)) => assert!(e.is_unique_violation(), "{e:?}"),
        other => panic!("a duplicate id should fail on its own: {other:?}"),
    }

    let ids = txn_ids_on_disk(&path);
    assert!(ids.contains("good-1") && ids.contains("good-2"));
    let after = store.stats();
    assert_eq!(
        after.commits - before.commits,
        2,
        "blocker's batch + one batch of three"
    );
    assert_eq!(after.failed_jobs - before.failed_jobs, 1);
}

#[tokio::test]
async fn a_lone_failing_job_leaves_nothing_behind() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");
    store
        .write(|c| insert_row(c, "first"))
        .await
        .expect("first row");
    // Alone in its batch (no savepoint): one row written, then a duplicate
    // fails the job.
    let failed = store
        .write(|c| {
            insert_row(c, "partial")?;
            insert_row(c, "first")
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Query(_))), "{failed:?}");
    store
        .write(|c| insert_row(c, "after"))
        .await
        .expect("the writer still works");
    let ids = txn_ids_on_disk(&path);
    assert!(ids.contains("first") && ids.contains("after"), "{ids:?}");
    assert!(
        !ids.contains("partial"),
        "the failed job's first row stayed"
    );
}

#[tokio::test]
async fn panicking_job_reaches_its_caller_and_the_writer_survives() {
    let dir = temp_dir();
    let store = Store::open(&db_path(&dir)).expect("open");
    let panicked = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .write(|_| -> sql::Result<()> { panic!("job bug") })
                .await
        }
    })
    .await;
    assert!(panicked.is_err_and(|e| e.is_panic()));
    store
        .write(|c| insert_row(c, "after-panic"))
        .await
        .expect("writer still works");
}

/// A small WAL cap, so a test passes it in a few hundred writes.
const SMALL_WAL_CAP: u64 = 256 * 1024;

/// Fills the WAL past [`SMALL_WAL_CAP`] while a reader holds one snapshot
/// (so SQLite cannot reset the log), then lets the reader go; returns the
/// open store.
async fn wal_past_its_cap_then_released(path: &Path) -> Store {
    let options = StoreOptions {
        wal_cap_bytes: SMALL_WAL_CAP,
        ..StoreOptions::default()
    };
    let store = Store::open_with(path, options).expect("open");
    store
        .write(|c| c.execute_batch("CREATE TABLE blobs (b BLOB)"))
        .await
        .expect("table");
    let pin = Connection::open(path).expect("reader");
    pin.execute_batch("BEGIN").expect("begin");
    let _: i64 = pin
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .expect("snapshot taken");
    while store.wal_bytes().unwrap() < 4 * SMALL_WAL_CAP {
        store
            .write(|c| c.execute("INSERT INTO blobs VALUES (zeroblob(4000))", []))
            .await
            .expect("insert");
    }
    pin.execute_batch("COMMIT").expect("snapshot released");
    store
}

/// Polls until the WAL is back under the cap, running `each` every round.
async fn wal_comes_under_the_cap(store: &Store, mut each: impl AsyncFnMut()) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.wal_bytes().unwrap() > SMALL_WAL_CAP {
        assert!(
            Instant::now() < deadline,
            "the WAL stayed at {} bytes, past its cap of {SMALL_WAL_CAP}",
            store.wal_bytes().unwrap()
        );
        each().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_returns_under_its_cap_under_writes_once_a_pinning_reader_lets_go() {
    let dir = temp_dir();
    let store = wal_past_its_cap_then_released(&db_path(&dir)).await;
    wal_comes_under_the_cap(&store, async || {
        store
            .write(|c| c.execute("INSERT INTO blobs VALUES (zeroblob(4000))", []))
            .await
            .expect("insert");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wal_returns_under_its_cap_once_a_pinning_reader_lets_go() {
    let dir = temp_dir();
    let store = wal_past_its_cap_then_released(&db_path(&dir)).await;
    wal_comes_under_the_cap(&store, async || {}).await;
    let rows: i64 = store
        .read(|c| c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)))
        .expect("count");
    assert!(rows > 0, "the emptied log's rows are in the database");
}

/// The store and the files SQLite makes beside it are the owner's alone,
/// whatever the umask (the test runs under the usual 022).
#[cfg(unix)]
#[tokio::test]
async fn store_files_are_created_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("open");
    store.write(|c| insert_row(c, "t1")).await.expect("write");
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", file.display());
    }
}

#[test]
fn reopening_runs_no_migration_twice() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let store = Store::open(&path).expect("first open");
    store
        .write_blocking(|c| insert_row(c, "kept"))
        .expect("write");
    drop(store);

    // A second run of 0001 would fail on CREATE TABLE journal.
    let store = Store::open(&path).expect("second open");
    let version: u32 = store
        .read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    drop(store);
    assert!(txn_ids_on_disk(&path).contains("kept"));
}

#[test]
fn newer_schema_is_refused_and_left_alone() {
    let dir = temp_dir();
    let path = db_path(&dir);
    drop(Store::open(&path).expect("open"));
    let newer = SCHEMA_VERSION + 1;
    Connection::open(&path)
        .and_then(|c| c.pragma_update(None, "user_version", newer))
        .expect("bump version");

    match Store::open(&path) {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!((found, known), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let still: u32 = Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("version");
    assert_eq!(still, newer);
}

#[test]
fn store_is_send_sync_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Store>();
}

#[test]
fn only_transient_errors_are_retryable() {
    let failure = |code| {
        sql::Error::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    };
    assert!(StoreError::Query(failure(rusqlite::ffi::SQLITE_BUSY)).is_retryable());
    assert!(!StoreError::Query(failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)).is_retryable());
    assert!(StoreError::Commit(Arc::new(failure(rusqlite::ffi::SQLITE_FULL))).is_retryable());
    assert!(!StoreError::WriterGone.is_retryable());
    assert!(!StoreError::TooNew { found: 9, known: 1 }.is_retryable());
}

/// Kills a writing child with SIGKILL and checks that every row it had been
/// told was durable is in the file.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = temp_dir();
    let path = db_path(&dir);
    // Killed in the middle of writing: once it has acknowledged rows enough.
    let acked = support::crash::acknowledged_then_killed(CRASH_DB_ENV, path.as_os_str(), 2_000);

    let store = Store::open(&path).expect("reopen after crash");
    let on_disk: HashSet<String> = store
        .read(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM store_test")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .expect("read back");
    let missing: Vec<&String> = acked.iter().filter(|id| !on_disk.contains(*id)).collect();
    println!(
        "killed after {} acknowledged rows; {} rows on disk",
        acked.len(),
        on_disk.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

/// The child of `acknowledged_writes_survive_kill_9`; does nothing unless
/// started by it.
#[test]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_DB_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Store::open(Path::new(&path)).expect("child open");
        support::crash::write_and_acknowledge(&store, 32, insert_row).await;
    });
}

/// Migration 18: a store holding two current balance files for one
/// institution keeps the newest; afterwards the database itself refuses a
/// second current file.
#[tokio::test]
async fn one_current_balance_file_per_institution() {
    let dir = temp_dir();
    let path = db_path(&dir);
    drop(Store::open(&path).unwrap());
    let db = Connection::open(&path).unwrap();
    db.execute_batch(support::UNDO_SEARCH_TABLES).unwrap();
    db.execute_batch(support::UNDO_MERCHANT_NAME).unwrap();
    db.execute_batch(
        "DROP INDEX balance_files_one_current;
         INSERT INTO balance_files (institution, sha256, as_of_us, source, state, received_us)
         VALUES ('bank-a', x'01', 1, 'cli', 'current', 1), ('bank-a', x'02', 2, 'cli', 'current', 2),
                ('bank-b', x'03', 3, 'cli', 'current', 3);
         PRAGMA user_version = 17;",
    )
    .unwrap();
    drop(db);
    let store = Store::open(&path).unwrap();
    let current: Vec<(String, Vec<u8>)> = store
        .read(|c| {
            c.prepare_cached(
                "SELECT institution, sha256 FROM balance_files WHERE state = 'current' \
                 ORDER BY institution",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
        .unwrap();
    assert_eq!(
        current,
        [("bank-a".into(), vec![2]), ("bank-b".into(), vec![3])]
    );
    let second = store
        .write(|c| {
            c.execute(
                "UPDATE balance_files SET state = 'current' WHERE sha256 = x'01'",
                [],
            )
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&second, StoreError::Query(e) if e.is_unique_violation()),
        "{second}"
    );
}

#[test]
fn an_insert_answers_the_new_row_s_id() {
    let dir = temp_dir();
    let store = Store::open(&db_path(&dir)).unwrap();
    // A trigger's own insert elsewhere does not change the answer.
    let (answered, held) = support::inserted_ids(
        &store,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE other (n INTEGER PRIMARY KEY);
         INSERT INTO other (n) VALUES (100);
         CREATE TRIGGER t_other AFTER INSERT ON t BEGIN INSERT INTO other (n) VALUES (NULL); END;",
    );
    assert_eq!(answered, held);
    assert_ne!(held.0, held.1);
}
