//! Journal-row inserts through `Store::write` with 1, 16 and 256 concurrent
//! writers, on a real file (fsync on every commit). Criterion reports jobs/s
//! ("elem/s"); commits (fsyncs) per second and jobs per commit come from the
//! store's counters and are printed after each group.
//! Run: `cargo bench --bench store -- --warm-up-time 1 --measurement-time 3`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cardhub_core::params;
use cardhub_core::store::Store;
use cardhub_core::store::sql::{self, Connection};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

/// Unique `txn_id`s across every run.
static NEXT_TXN: AtomicU64 = AtomicU64::new(0);

fn insert_row(c: &Connection, txn_id: &str) -> sql::Result<()> {
    c.prepare_cached(
        "INSERT INTO journal (rrn, entry, received_at_us, business_day, switch, mti, \
         is_repeat, kind, channel, pan_masked, amount_minor, currency, stan, terminal, \
         response_code, auth_id, decided_by, latency_us) \
         VALUES (?1, 'request', ?2, '2025-03-14', 'base24', '0200', 0, 'purchase', 'pos', \
         '476173******0010', 1250, 978, '000123', 'TERM0001', '00', 'A1B2C3', \
         'account_system', 850)",
    )?
    .execute(params![txn_id, 1_741_950_000_000_000_i64])
    .map(|_| ())
}

/// `total` inserts spread over `writers` tasks, each waiting for its own
/// acknowledgement before the next.
async fn insert_concurrently(store: &Store, writers: u64, total: u64) {
    let writers = writers.min(total).max(1);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let share = total / writers + u64::from(w < total % writers);
            tokio::spawn(async move {
                for _ in 0..share {
                    let txn = format!("bench-{}", NEXT_TXN.fetch_add(1, Ordering::Relaxed));
                    store
                        .write(move |c| insert_row(c, &txn))
                        .await
                        .expect("insert");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
}

fn store_writes(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::Builder::new()
        .prefix("store-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");

    let mut group = c.benchmark_group("store_write");
    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    for writers in [1u64, 16, 256] {
        let store = Store::open(&dir.path().join(format!("w{writers}.db"))).expect("open");
        let elapsed = Cell::new(Duration::ZERO);
        let before = store.stats();
        group.bench_with_input(
            BenchmarkId::new("journal_insert", writers),
            &writers,
            |b, &w| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    runtime.block_on(insert_concurrently(&store, w, iters));
                    let took = start.elapsed();
                    elapsed.set(elapsed.get() + took);
                    took
                });
            },
        );
        let after = store.stats();
        let secs = elapsed.get().as_secs_f64().max(f64::EPSILON);
        let jobs = after.jobs - before.jobs;
        let commits = after.commits - before.commits;
        if jobs == 0 {
            continue; // filtered out on the command line
        }
        println!(
            "writers={writers}: {:.0} jobs/s, {:.0} commits/s, {:.1} jobs/commit \
             ({jobs} jobs, {commits} commits in {secs:.2} s incl. warm-up)",
            jobs as f64 / secs,
            commits as f64 / secs,
            jobs as f64 / commits.max(1) as f64,
        );
    }
    group.finish();
}

/// The writer's ceiling: the same inserts on a bare connection, 1024 per
/// transaction, each in its own savepoint, as the writer runs them, without
/// queue, threads or tasks.
fn sqlite_baseline(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("store-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let path = dir.path().join("baseline.db");
    drop(Store::open(&path).expect("create schema"));
    let raw = rusqlite::Connection::open(&path).expect("open");
    raw.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    let conn = Connection::from_sqlite(raw);

    let mut group = c.benchmark_group("sqlite_baseline");
    group.throughput(Throughput::Elements(1));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("insert_in_savepoint_1024_per_commit", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut left = iters;
            while left > 0 {
                let batch = left.min(1024);
                conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
                for _ in 0..batch {
                    let txn = format!("base-{}", NEXT_TXN.fetch_add(1, Ordering::Relaxed));
                    conn.execute_batch("SAVEPOINT job").expect("savepoint");
                    insert_row(&conn, &txn).expect("insert");
                    conn.execute_batch("RELEASE job").expect("release");
                }
                conn.execute_batch("COMMIT").expect("commit");
                left -= batch;
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, store_writes, sqlite_baseline);
criterion_main!(benches);
