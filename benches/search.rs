//! Back-office search over a generated journal of months of traffic:
//! `cargo bench --bench search` (10,000,000 rows over 180 days; the file is
//! generated once into `target/bench-search/` and reused). Every search goes
//! through the real `Criteria::compile` and `Query::run` on a `Store`.
//!
//! `SEARCH_ROWS=N` sets the journal's size. Without `--bench` (as
//! `cargo test --benches` runs it) a 20,000-row journal in a temporary folder,
//! each search once.
//!
//! Each search looks for the card, account or terminal of a random row,
//! so it finds something at every size.
//!
//! The journal: one row every 180 days / N, 200,000 cards (one account
//! each, uniform), 8 institutions, 50,000 terminals, a unique RRN per row,
//! STANs cycling 1 to 999,999, 90 % approvals; decided by the account system
//! 85 %, stand-in 10 %, hub rules 5 %.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cardhub_core::backoffice::search::Criteria;
use cardhub_core::backoffice::search_index;
use cardhub_core::cards::PanHash;
use cardhub_core::journal;
use cardhub_core::store::Store;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

#[path = "support/journal_rows.rs"]
mod journal_rows;

use journal_rows::{CARDS, DAYS, INSTITUTIONS, card_of, keys, mix, pan, row, terminal_of};

/// Searches per kind, for the percentiles.
const SEARCHES: usize = 1_000;

/// Writes `rows` rows through the journal's own insert, the indexes dropped
/// during the load and rebuilt after (as a restore would).
fn generate(path: &Path, rows: u64, end: Timestamp) {
    drop(Store::open(path).expect("store opens"));
    let raw = rusqlite::Connection::open(path).expect("open");
    raw.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")
        .expect("pragmas");
    let indexes: Vec<(String, String)> = raw
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'journal' AND sql IS NOT NULL")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("indexes")
        .collect::<rusqlite::Result<_>>()
        .expect("indexes");
    for (name, _) in &indexes {
        raw.execute_batch(&format!("DROP INDEX {name}"))
            .expect("drop index");
    }
    let c = cardhub_core::store::sql::Connection::from_sqlite(raw);
    let keys = keys();
    let hashes: Vec<PanHash> = (0..CARDS).map(|card| keys.hash(&pan(card))).collect();
    let started = Instant::now();
    let chunk = 200_000;
    for first in (0..rows).step_by(chunk) {
        c.execute_batch("BEGIN").expect("begin");
        for i in first..(first + chunk as u64).min(rows) {
            journal::insert(&c, &row(i, rows, end, &hashes)).expect("insert");
        }
        c.execute_batch("COMMIT").expect("commit");
        eprint!("\r  {} rows", (first + chunk as u64).min(rows));
    }
    eprintln!(" in {:.0?}; indexing", started.elapsed());
    c.execute_batch("BEGIN").expect("begin");
    while search_index::catch_up(&c).expect("search tables") as i64 == search_index::BATCH {}
    c.execute_batch("COMMIT").expect("commit");
    for (_, sql) in &indexes {
        c.execute_batch(sql).expect("create index");
    }
    eprintln!("  generated in {:.0?}", started.elapsed());
}

/// The journal for this run: reused when it exists with the same size.
fn journal_file(rows: u64, full: bool) -> (PathBuf, Option<tempfile::TempDir>, Timestamp) {
    let (dir, temp) = if full {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-search");
        std::fs::create_dir_all(&dir).expect("bench folder");
        (dir, None)
    } else {
        let temp = tempfile::tempdir().expect("temp dir");
        (temp.path().to_path_buf(), Some(temp))
    };
    let path = dir.join(format!("journal-{rows}.db"));
    let end_file = dir.join(format!("journal-{rows}.end"));
    if let (true, Ok(end)) = (path.exists(), std::fs::read_to_string(&end_file))
        && let Ok(end) = end.trim().parse()
    {
        eprintln!("reusing {} (rows up to {end})", path.display());
        return (path, temp, end);
    }
    let _ = std::fs::remove_file(&path);
    let end = Timestamp::now();
    eprintln!("generating {rows} journal rows into {}", path.display());
    generate(&path, rows, end);
    std::fs::write(&end_file, end.to_string()).expect("end file");
    (path, temp, end)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let rows: u64 = std::env::var("SEARCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 10_000_000 } else { 20_000 });
    let (path, _temp, end) = journal_file(rows, full);
    let store = Store::open(&path).expect("store opens");
    let keys = keys();
    let day = |days_ago: i64| (end - SignedDuration::from_hours(24 * days_ago)).to_string();
    let searches = if full { SEARCHES } else { 1 };
    let ninety = (day(90), end.to_string());

    // A random row of the last 90 days.
    let recent = move |n: u64| rows / 2 + mix(n) % (rows / 2);
    type Make = Box<dyn Fn(u64) -> Value>;
    let kinds: Vec<(&str, Make)> = vec![
        (
            "card, 90 days",
            Box::new(move |n| {
                let card = card_of(recent(n));
                json!({ "card": pan(card).expose(), "from": ninety.0, "to": ninety.1 })
            }),
        ),
        (
            "card, all time, page 2",
            Box::new(move |n| json!({ "card": pan(card_of(mix(n) % rows)).expose(), "limit": 10 })),
        ),
        (
            "account, 90 days",
            Box::new({
                let from = day(90);
                move |n| json!({ "account": format!("ACC{:09}", card_of(recent(n))), "from": from })
            }),
        ),
        (
            "terminal, 90 days",
            Box::new({
                let from = day(90);
                move |n| json!({ "terminal": format!("T{:07}", terminal_of(recent(n))), "from": from })
            }),
        ),
        (
            "rrn",
            Box::new(move |n| json!({ "rrn": format!("{:012}", mix(n) % rows) })),
        ),
        (
            "stan, one day",
            Box::new({
                let (from, to) = (day(31), day(30));
                // A row of that day.
                let (lo, hi) = (
                    rows * (DAYS - 31) as u64 / DAYS as u64,
                    rows * (DAYS - 30) as u64 / DAYS as u64,
                );
                move |n| json!({ "stan": format!("{:06}", (lo + mix(n) % (hi - lo)) % 999_999 + 1), "from": from, "to": to })
            }),
        ),
        (
            "code 91, one day (no index)",
            Box::new({
                let (from, to) = (day(31), day(30));
                move |_| json!({ "response_code": "91", "from": from, "to": to })
            }),
        ),
        (
            "stand-in in an institution, 90 days",
            Box::new({
                let from = day(90);
                move |n| json!({ "decided_by": "stand_in", "institution": format!("bank-{}", n % INSTITUTIONS), "from": from })
            }),
        ),
    ];

    println!("journal: {rows} rows over {DAYS} days, {}", path.display());
    println!(
        "{:<38} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "search", "first", "p50", "p99", "max", "rows/pg"
    );
    for (title, make) in &kinds {
        if only.as_deref().is_some_and(|w| !title.contains(w)) {
            continue;
        }
        let mut times = Vec::with_capacity(searches);
        let mut found = 0usize;
        for n in 0..searches as u64 {
            let criteria: Criteria = serde_json::from_value(make(n)).expect("criteria");
            let started = Instant::now();
            let query = criteria.compile(|p| keys.hash(p)).expect("valid criteria");
            let mut page = query.run(&store).expect("search runs");
            if title.contains("page 2")
                && let Some(before) = page.next_before.clone()
            {
                let mut next = criteria.clone();
                next.before = Some(before);
                page = next
                    .compile(|p| keys.hash(p))
                    .expect("valid")
                    .run(&store)
                    .expect("search runs");
            }
            times.push(started.elapsed());
            found += page.transactions.len();
        }
        assert!(
            found > 0,
            "{title}: nothing found: the generator and the search disagree"
        );
        let first = times[0];
        times.sort();
        println!(
            "{title:<38} {:>9.2?} {:>9.2?} {:>9.2?} {:>9.2?} {:>8.1}",
            first,
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            times[times.len() - 1],
            found as f64 / searches as f64,
        );
    }
}
