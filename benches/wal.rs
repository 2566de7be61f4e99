//! The WAL under sustained load: `WAL_SECONDS=600 cargo bench --bench wal`.
//!
//! Concurrent writers append journal rows (the hub's own `journal::insert`,
//! one row per job, as a stand-in approval journals it) through
//! `Store::write` for `WAL_SECONDS` seconds, while a reader runs card
//! searches (`Criteria::compile` and `Query::run`) back to back. Every second
//! the WAL file's size is sampled; the report gives its maximum, p99 and
//! median against the cap, the write throughput, the searches run and how
//! often the writer held writes to keep the cap.
//!
//! `WAL_CAP_MIB` sets the cap (default: the store's default), `WAL_WRITERS`
//! the concurrent writers (default 64). Without `WAL_SECONDS` it runs 5 s
//! (2 s without `--bench`, as `cargo test --benches` runs it).

#[path = "support/journal_rows.rs"]
mod journal_rows;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cardhub_core::backoffice::search::Criteria;
use cardhub_core::cards::PanHash;
use cardhub_core::journal;
use cardhub_core::store::{DEFAULT_WAL_CAP_BYTES, Store, StoreOptions};
use jiff::Timestamp;
use journal_rows::{CARDS, card_of, keys, mix, pan, row};
use serde_json::json;

/// Rows the generated timestamps are spread over (180 days).
const SPREAD: u64 = 10_000_000;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

/// The sorted sample at fraction `p`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Card searches on random cards of the rows written so far, until `stop`;
/// returns how many ran.
fn search_until(store: &Store, written: &AtomicU64, stop: &AtomicBool) -> u64 {
    let keys = keys();
    let mut searches = 0;
    while !stop.load(Ordering::Relaxed) {
        let i = mix(searches) % written.load(Ordering::Relaxed).max(1);
        let criteria: Criteria =
            serde_json::from_value(json!({ "card": pan(card_of(i)).expose(), "limit": 50 }))
                .expect("criteria");
        let query = criteria.compile(|p| keys.hash(p)).expect("valid criteria");
        query.run(store).expect("search runs");
        searches += 1;
    }
    searches
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds = env_u64("WAL_SECONDS").unwrap_or(if full { 5 } else { 2 });
    let cap = env_u64("WAL_CAP_MIB").map_or(DEFAULT_WAL_CAP_BYTES, |m| m << 20);
    let writers = env_u64("WAL_WRITERS").unwrap_or(64).max(1);

    let dir = tempfile::Builder::new()
        .prefix("bench-wal")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");
    let store = Store::open_with(
        &dir.path().join("cardhub.db"),
        StoreOptions {
            wal_cap_bytes: cap,
            ..StoreOptions::default()
        },
    )
    .expect("store opens");
    let keys = keys();
    let hashes: Arc<Vec<PanHash>> = Arc::new((0..CARDS).map(|c| keys.hash(&pan(c))).collect());
    let end = Timestamp::now();
    println!(
        "{seconds} s, {writers} writers, one journal row per job, a reader searching; WAL cap {:.0} MiB",
        mib(cap)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let next = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, written, stop) = (store.clone(), Arc::clone(&written), Arc::clone(&stop));
        std::thread::spawn(move || search_until(&store, &written, &stop))
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let samples = runtime.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (store, next, written, hashes) = (
                    store.clone(),
                    Arc::clone(&next),
                    Arc::clone(&written),
                    Arc::clone(&hashes),
                );
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let entry = row(i, SPREAD, end, &hashes);
                        store
                            .write(move |c| journal::insert(c, &entry))
                            .await
                            .expect("journal insert");
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while Instant::now() < deadline {
            tick.tick().await;
            let bytes = store.wal_bytes().unwrap();
            samples.push(bytes);
            if full {
                eprintln!(
                    "  {:>4} s  WAL {:>8.1} MiB  {:>10} rows",
                    samples.len(),
                    mib(bytes),
                    written.load(Ordering::Relaxed)
                );
            }
        }
        for task in tasks {
            task.await.expect("writer task");
        }
        samples
    });
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let searches = reader.join().expect("reader thread");
    let rows = written.load(Ordering::Relaxed);
    let stats = store.stats();

    let mut sorted = samples.clone();
    sorted.push(store.wal_bytes().unwrap());
    sorted.sort_unstable();
    let max = sorted[sorted.len() - 1];
    let over = samples.iter().filter(|&&b| b > cap).count();
    println!(
        "rows {rows} in {elapsed:.1?}: {:.0} rows/s, {:.0} commits/s ({:.1} rows/commit); {searches} searches ({:.0}/s)",
        rows as f64 / elapsed.as_secs_f64(),
        stats.commits as f64 / elapsed.as_secs_f64(),
        stats.jobs_per_commit(),
        searches as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "WAL over {} samples: max {:.1} MiB, p99 {:.1} MiB, p50 {:.1} MiB; cap {:.0} MiB, {over} samples over it; writes held {} times",
        sorted.len(),
        mib(max),
        mib(percentile(&sorted, 0.99)),
        mib(percentile(&sorted, 0.50)),
        mib(cap),
        stats.wal_holds,
    );
}
