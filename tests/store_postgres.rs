//! The store on a real PostgreSQL server: the same contract as the SQLite
//! store's (tests/store.rs) — acknowledged means committed, a failing job
//! rolls back alone, a panic reaches its caller, migrations run once, a
//! newer schema is refused — plus the value conversions and a kill -9 test.
//!
//! The server is a throwaway cluster `scripts/pg-env` starts in
//! `$CARGO_TARGET_TMPDIR/pg` (once per run of this binary; it is left
//! running for the next run: `scripts/pg-env stop DIR` stops it); each test
//! has its own database.

mod support;

use std::collections::HashSet;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use support::pg::database;

use cardhub_core::store::sql::{self, Dialect, TextList};
use cardhub_core::store::{
    DEFAULT_POSTGRES_CONNECT_TIMEOUT, DEFAULT_POSTGRES_TIMEOUT, DEFAULT_POSTGRES_WRITERS,
    PostgresOptions, SCHEMA_VERSION, Store, StoreError,
};

/// The crash test's child reads its database URL from this variable.
const CRASH_URL_ENV: &str = "CARDHUB_STORE_PG_CRASH_URL";

const OPTIONS: PostgresOptions = PostgresOptions {
    writers: DEFAULT_POSTGRES_WRITERS,
    timeout: DEFAULT_POSTGRES_TIMEOUT,
    connect_timeout: DEFAULT_POSTGRES_CONNECT_TIMEOUT,
};

/// Inserts a row with a unique id into this test's own table (created on
/// first use, inside the job's transaction).
fn insert_row(c: &sql::Connection, id: &str) -> sql::Result<i64> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS store_test (n BIGSERIAL, id TEXT PRIMARY KEY)")?;
    c.query_row(
        "INSERT INTO store_test (id) VALUES (?1) RETURNING n",
        [id],
        |r| r.get(0),
    )
}

fn ids(store: &Store) -> HashSet<String> {
    store
        .read(|c| {
            c.prepare_cached("SELECT id FROM store_test")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .expect("read ids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_write_is_visible_to_a_new_connection() {
    let url = database("visible");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    let n = store
        .write(|c| insert_row(c, "first"))
        .await
        .expect("write");
    assert_eq!(n, 1);
    // Read on this async worker: the client's futures need no reactor.
    assert_eq!(ids(&store), HashSet::from(["first".to_owned()]));
    let other = Store::open_postgres(&url, OPTIONS).expect("second store");
    assert_eq!(ids(&other), HashSet::from(["first".to_owned()]));
    assert_eq!(store.path(), None);
    assert_eq!(store.wal_bytes(), None);
    assert!(
        store.location().ends_with("/store_visible"),
        "{}",
        store.location()
    );
    let stats = store.stats();
    assert_eq!((stats.jobs, stats.commits, stats.failed_jobs), (1, 1, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_job_rolls_back_alone() {
    let url = database("rollback");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    store
        .write(|c| insert_row(c, "kept").map(drop))
        .await
        .expect("setup");
    let writes: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |c| {
                        insert_row(c, &format!("job-{i}"))?;
                        if i % 4 == 0 {
                            // Its own row first, then a duplicate: all undone.
                            insert_row(c, "kept")?;
                        }
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    for (i, write) in writes.into_iter().enumerate() {
        match write.await.expect("join") {
            Ok(()) => assert_ne!(i % 4, 0, "job {i} should have failed"),
            Err(StoreError::Query(e)) => {
                assert_eq!(i % 4, 0, "job {i} failed: {e}");
                assert!(e.is_unique_violation(), "{e}");
                assert!(!StoreError::Query(e).is_retryable());
            }
            Err(e) => panic!("job {i}: {e}"),
        }
    }
    let expected: HashSet<String> = (0..16)
        .filter(|i| i % 4 != 0)
        .map(|i| format!("job-{i}"))
        .chain(["kept".to_owned()])
        .collect();
    assert_eq!(ids(&store), expected);
    assert_eq!(store.stats().failed_jobs, 4);
}

#[test]
fn a_job_that_swallows_an_error_is_not_acknowledged() {
    let url = database("swallowed");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    store
        .write_blocking(|c| insert_row(c, "kept").map(drop))
        .expect("setup");
    // The duplicate aborts PostgreSQL's transaction; the job carries on
    // as if nothing happened. Its COMMIT would be a silent rollback.
    let answer = store.write_blocking(|c| {
        let _ = insert_row(c, "kept");
        Ok(())
    });
    assert!(matches!(answer, Err(StoreError::Commit(_))), "{answer:?}");
    store
        .write_blocking(|c| insert_row(c, "after").map(drop))
        .expect("the writer goes on");
    assert_eq!(
        ids(&store),
        HashSet::from(["kept".to_owned(), "after".to_owned()])
    );
}

#[test]
fn a_panicking_job_reaches_its_caller_and_the_writers_survive() {
    let url = database("panic");
    let store = Store::open_postgres(
        &url,
        PostgresOptions {
            writers: 1,
            ..OPTIONS
        },
    )
    .expect("open");
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.write_blocking(|c| -> sql::Result<()> {
            insert_row(c, "half")?;
            panic!("job bug");
        })
    }));
    let message = caught.expect_err("the panic reaches the caller");
    assert_eq!(message.downcast_ref::<&str>(), Some(&"job bug"));
    store
        .write_blocking(|c| insert_row(c, "whole").map(drop))
        .expect("the writer survived");
    assert_eq!(ids(&store), HashSet::from(["whole".to_owned()]));
}

/// Two jobs on two writer connections that both read a counter, then
/// both write it: on SQLite one writer runs them in turn; here one of them
/// must fail (retryably) rather than overwrite the other's update.
#[test]
fn concurrent_read_modify_writes_never_lose_an_update() {
    let url = database("serializable");
    let store = Store::open_postgres(
        &url,
        PostgresOptions {
            writers: 2,
            ..OPTIONS
        },
    )
    .expect("open");
    store
        .write_blocking(|c| {
            c.execute_batch("CREATE TABLE counter (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")?;
            c.execute("INSERT INTO counter (id, v) VALUES (1, 0)", [])
        })
        .expect("setup");
    // Both jobs have read before either writes (each holds a writer): one
    // of the two transactions cannot be serialised, and its job runs again.
    let both_read = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..2)
        .map(|_| {
            let (store, both_read, runs) =
                (store.clone(), Arc::clone(&both_read), Arc::clone(&runs));
            std::thread::spawn(move || {
                let mut first = true;
                store.write_blocking(move |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let v: i64 =
                        c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0))?;
                    if std::mem::take(&mut first) {
                        both_read.wait();
                    }
                    c.execute("UPDATE counter SET v = ?1 WHERE id = 1", [v + 1])
                })
            })
        })
        .collect();
    let answers: Vec<_> = jobs
        .into_iter()
        .map(|j| j.join().expect("thread"))
        .collect();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 3, "one job ran again");
    let v: i64 = store
        .read(|c| c.query_row("SELECT v FROM counter WHERE id = 1", [], |r| r.get(0)))
        .expect("read");
    assert_eq!(v, 2, "both updates committed, none lost");
}

#[test]
fn migrations_apply_once_with_two_stores_opening_together() {
    let url = database("migrate");
    let start = Arc::new(Barrier::new(2));
    let opened: Vec<_> = (0..2)
        .map(|_| {
            let (url, start) = (url.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                Store::open_postgres(&url, OPTIONS)
            })
        })
        .collect();
    for store in opened {
        let store = store.join().expect("thread").expect("open");
        let version: u32 = store
            .read(|c| c.query_row("SELECT version FROM schema_version", [], |r| r.get(0)))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
    }
    // Reopening applies nothing (a second run of migration 1 would fail:
    // its tables exist).
    Store::open_postgres(&url, OPTIONS).expect("reopen");
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let url = database("too_new");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    store
        .write_blocking(|c| {
            c.execute(
                "UPDATE schema_version SET version = ?1",
                [SCHEMA_VERSION + 1],
            )
        })
        .expect("bump");
    drop(store);
    match Store::open_postgres(&url, OPTIONS) {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn values_convert_both_ways() {
    let url = database("values");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    store
        .write_blocking(|c| {
            c.execute_batch(
                "CREATE TABLE v (id BIGINT PRIMARY KEY, small INTEGER, flag BOOLEAN, data BYTEA, note TEXT)",
            )?;
            let mut insert = c.prepare_cached(
                "INSERT INTO v (id, small, flag, data, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            insert.execute(sql::params![1_i64, 7_i32, true, vec![0_u8, 1, 255], "a"])?;
            insert.execute(sql::params![i64::MAX, -7_i32, false, Vec::<u8>::new(), None::<String>])?;
            Ok(())
        })
        .expect("insert");
    store
        .read(|c| {
            // SUM(bigint) is NUMERIC: read as an integer when whole.
            let sum: i64 = c.query_row("SELECT SUM(small) FROM v", [], |r| r.get(0))?;
            assert_eq!(sum, 0);
            let big: i64 = c.query_row("SELECT SUM(id) - 1 FROM v", [], |r| r.get(0))?;
            assert_eq!(big, i64::MAX);
            let (flag, data, note): (bool, Vec<u8>, Option<String>) =
                c.query_row("SELECT flag, data, note FROM v WHERE id = ?1", [1], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            assert_eq!(
                (flag, data, note),
                (true, vec![0, 1, 255], Some("a".to_owned()))
            );
            let (flag, data, note): (i64, Vec<u8>, Option<String>) = c.query_row(
                "SELECT flag, data, note FROM v WHERE small = ?1",
                [-7],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            assert_eq!((flag, data, note), (0, Vec::new(), None));
            // A list of texts as one parameter.
            assert_eq!(c.dialect(), Dialect::Postgres);
            let list = c.dialect().text_list(1);
            let found: Vec<String> = c
                .prepare_cached(&format!(
                    "SELECT note FROM v WHERE note IN {list} ORDER BY note"
                ))?
                .query_map([TextList::new(["a", "b", "it's \"quoted\""])], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            assert_eq!(found, ["a"]);
            Ok(())
        })
        .expect("read");

    let fraction =
        store.read(|c| c.query_row("SELECT CAST(1.5 AS NUMERIC)", [], |r| r.get::<i64>(0)));
    match fraction {
        Err(StoreError::Query(sql::Error::Column { column: 0, reason })) => {
            assert!(reason.contains("fraction"), "{reason}");
        }
        other => panic!("expected a column error, got {other:?}"),
    }
    let float = store.read(|c| c.query_row("SELECT CAST(1 AS REAL)", [], |r| r.get::<i64>(0)));
    match float {
        Err(StoreError::Query(sql::Error::Column { column: 0, reason })) => {
            assert!(reason.contains("float4"), "{reason}");
        }
        other => panic!("expected a column error, got {other:?}"),
    }
    let wide = store.read(|c| {
        c.query_row("SELECT id FROM v WHERE small = ?1", [1_i64 << 40], |r| {
            r.get::<i64>(0)
        })
    });
    match wide {
        Err(StoreError::Query(sql::Error::Parameter { index: 1, reason })) => {
            assert!(reason.contains("integer"), "{reason}");
        }
        other => panic!("expected a parameter error, got {other:?}"),
    }
    let none =
        store.read(|c| c.query_row("SELECT id FROM v WHERE id = ?1", [5], |r| r.get::<i64>(0)));
    assert!(
        matches!(none, Err(StoreError::Query(sql::Error::NoRows))),
        "{none:?}"
    );
}

#[test]
fn reads_are_read_only() {
    let url = database("read_only");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    let refused = store.read(|c| c.execute_batch("CREATE TABLE nope (id BIGINT)"));
    match refused {
        Err(StoreError::Query(e)) => assert!(e.to_string().contains("25006"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_unreachable_server_names_itself_not_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgresql://cardhub:s3cret-pw@127.0.0.1:1/cardhub?connect_timeout=5";
    let error = Store::open_postgres(url, OPTIONS).expect_err("nothing listens on port 1");
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(!format!("{error:?}").contains("s3cret-pw"), "{error:?}");
}

/// Kills a writing child with SIGKILL and checks that every row it had been
/// told was committed is in the database.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let url = database("crash");
    let acked = support::crash::acknowledged_then_killed(CRASH_URL_ENV, url.as_ref(), 500);

    let store = Store::open_postgres(&url, OPTIONS).expect("reopen after crash");
    let on_disk = ids(&store);
    let missing: Vec<&String> = acked.iter().filter(|id| !on_disk.contains(*id)).collect();
    println!(
        "killed after {} acknowledged rows; {} rows stored",
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
    let Ok(url) = std::env::var(CRASH_URL_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Store::open_postgres(&url, OPTIONS).expect("child open");
        store
            .write(|c| insert_row(c, "setup").map(drop))
            .await
            .expect("setup");
        support::crash::write_and_acknowledge(&store, 16, insert_row).await;
    });
}

#[test]
fn an_insert_answers_the_new_row_s_id() {
    let url = database("insert_id");
    let store = Store::open_postgres(&url, OPTIONS).expect("open");
    let (answered, held) = support::inserted_ids(
        &store,
        "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name TEXT)",
    );
    assert_eq!(answered, held);
    assert_ne!(held.0, held.1);
}
