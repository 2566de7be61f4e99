//! Back-office transaction search: through the JSON API and `cardhub txn
//! search`, on a hub that decided real requests from the switch; and the
//! query plans, which must use an index for every searchable key.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use cardhub_core::backoffice::search::Criteria;
use cardhub_core::backoffice::search_index;
use cardhub_core::cards::PanHash;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::journal;
use cardhub_core::store::Store;
use cardhub_core::store::sql::params;
use serde_json::{Value, json};
use support::{ACTIVE_USD, ACTIVE_USD_2, LOST, cash, client, code_of, purchase};

const TOKEN: &str = "search-test-token-0123456789";

struct Api {
    url: String,
}

impl Api {
    async fn search(&self, criteria: Value) -> (u16, Value) {
        let r = support::http()
            .post(format!("{}/api/transactions/search", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(criteria.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(ACTIVE_USD) && !text.contains(ACTIVE_USD_2),
            "a full card number in an answer: {text}"
        );
        (status, serde_json::from_str(&text).unwrap())
    }

    /// Every page of a search, `limit` rows at a time.
    async fn all_pages(&self, mut criteria: Value, limit: u32) -> Vec<Value> {
        criteria["limit"] = json!(limit);
        let mut rows = Vec::new();
        loop {
            let (status, page) = self.search(criteria.clone()).await;
            assert_eq!(status, 200, "{page}");
            let got = page["transactions"].as_array().unwrap();
            assert!(got.len() <= limit as usize);
            rows.extend(got.iter().cloned());
            match page["next_before"].as_str() {
                Some(next) => {
                    assert_eq!(
                        got.len(),
                        limit as usize,
                        "a short page that is not the last"
                    );
                    criteria["before"] = json!(next);
                }
                None => return rows,
            }
        }
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["txn_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_by_every_key_pages_newest_first_and_needs_the_token() {
    let hub = support::start(&format!(
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .await;
    let running = cardhub_core::api::server::start(
        hub.config.api.as_ref().unwrap(),
        hub.hub.clone(),
        hub.config.institutions.clone().into(),
        &hub.config.prepaid,
        hub.link.stats_source(),
        hub.link.shutdown_token(),
    )
    .await
    .unwrap();
    let api = Api {
        url: format!("http://{}", running.addr),
    };

    // Seven POS purchases on the first card, two ATM withdrawals on the
    // second, one on a lost card (declined 41 by a hub rule).
    let c = client(&hub.addr).await;
    for stan in 1..=7 {
        assert_eq!(
            code_of(&c, &purchase(ACTIVE_USD, 1_000 + stan, stan as u32)).await,
            "00"
        );
    }
    for stan in 8..=9 {
        assert_eq!(code_of(&c, &cash(ACTIVE_USD_2, 2_000, stan)).await, "00");
    }
    assert_eq!(code_of(&c, &purchase(LOST, 500, 10)).await, "41");

    // By card: its seven rows, newest first, masked.
    let (status, page) = api.search(json!({ "card": ACTIVE_USD })).await;
    assert_eq!(status, 200, "{page}");
    let rows = page["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 7, "{page}");
    assert!(page["next_before"].is_null());
    let found = ids(rows);
    let mut sorted = found.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(found, sorted, "newest first");
    assert!(rows.iter().all(|r| r["card"] == "476173******0010"));
    assert_eq!(rows[0]["amount_minor"], 1_007);

    // Pages of two walk the same rows once each.
    assert_eq!(
        ids(&api.all_pages(json!({ "card": ACTIVE_USD }), 2).await),
        found
    );
    assert_eq!(ids(&api.all_pages(json!({}), 3).await).len(), 10);

    // The other keys.
    let count = |criteria: Value| {
        let api = &api;
        async move {
            let (status, page) = api.search(criteria.clone()).await;
            assert_eq!(status, 200, "{criteria}: {page}");
            page["transactions"].as_array().unwrap().len()
        }
    };
    assert_eq!(count(json!({ "terminal": "ATM00001" })).await, 2);
    assert_eq!(count(json!({ "terminal": "POS00001" })).await, 8);
    assert_eq!(count(json!({ "stan": "000003" })).await, 1);
    assert_eq!(count(json!({ "rrn": "RRN000000009" })).await, 1);
    assert_eq!(count(json!({ "response_code": "41" })).await, 1);
    assert_eq!(count(json!({ "decided_by": "hub_rule" })).await, 1);
    assert_eq!(count(json!({ "decided_by": "account_system" })).await, 9);
    assert_eq!(count(json!({ "institution": "bank-a" })).await, 10);
    assert_eq!(
        count(json!({ "card": ACTIVE_USD_2, "terminal": "POS00001" })).await,
        0
    );
    let account = rows[0]["account"].as_str().unwrap().to_string();
    assert_eq!(count(json!({ "account": account })).await, 7);

    // Time ranges: today (a day includes its end), and one that ended.
    let today = jiff::Timestamp::now().to_string()[..10].to_string();
    assert_eq!(count(json!({ "from": today, "to": today })).await, 10);
    assert_eq!(
        count(json!({ "from": "2026-01-01", "to": "2026-01-02T00:00:00Z" })).await,
        0
    );

    // Its story, by the id the search gave.
    let r = support::http()
        .get(format!("{}/api/transactions/{}", api.url, found[0]))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let story: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(story["transaction"]["stan"], "000007");

    // Bad criteria are named; a body that is not JSON or has an unknown
    // key is refused; no token is 401.
    for (criteria, field) in [
        (json!({ "card": "4761" }), "card"),
        (json!({ "response_code": "123" }), "response_code"),
        (json!({ "decided_by": "nobody" }), "decided_by"),
        (json!({ "from": "yesterday" }), "from"),
        (json!({ "from": "2026-03-02", "to": "2026-03-01" }), "to"),
        (json!({ "before": "xyz" }), "before"),
        (json!({ "limit": 0 }), "limit"),
        (json!({ "limit": 501 }), "limit"),
    ] {
        let (status, body) = api.search(criteria.clone()).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{criteria}: {body}"
        );
    }
    let (status, body) = api.search(json!({ "pan": ACTIVE_USD })).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unknown field"),
        "{body}"
    );
    let r = support::http()
        .post(format!("{}/api/transactions/search", api.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = support::http()
        .post(format!("{}/api/transactions/search", api.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The CLI on the same store, the card read from standard input.
    let cli = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cardhub"))
            .args(["txn", "search"])
            .args(args)
            .arg("--config")
            .arg(hub.dir.path().join("cardhub.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, out) = cli(&["--card", "-", "--limit", "5"], &format!("{ACTIVE_USD}\n"));
    assert!(ok, "{out}");
    assert!(!out.contains(ACTIVE_USD), "{out}");
    assert_eq!(out.matches("476173******0010").count(), 5, "{out}");
    assert!(out.contains("10.07"), "amounts in major units: {out}");
    let next = out
        .split("--before ")
        .nth(1)
        .unwrap_or_else(|| panic!("no next page: {out}"))
        .trim()
        .to_string();
    assert_eq!(next, found[4]);
    let (ok, out) = cli(&["--card", ACTIVE_USD, "--before", &next, "--json"], "");
    assert!(ok, "{out}");
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ids(page["transactions"].as_array().unwrap()), found[5..]);
    let (ok, out) = cli(&["--code", "5"], "");
    assert!(!ok);
    assert!(out.contains("--code:"), "{out}");
}

#[test]
fn every_search_key_is_read_through_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("plans.db")).unwrap();
    let hash = |_: &cardhub_core::iso8583::fields::Pan| PanHash([7; 32]);
    for (criteria, index) in [
        (
            json!({ "card": ACTIVE_USD, "from": "2026-09-01", "to": "2026-11-30" }),
            "k USING PRIMARY KEY (pan_hash=? AND txn_id>? AND txn_id<?)",
        ),
        (
            json!({ "account": "A-1", "response_code": "51" }),
            "k USING PRIMARY KEY (account=?)",
        ),
        (
            json!({ "terminal": "ATM00001", "before": "0193A2B4C5D60001" }),
            "USING INDEX journal_terminal",
        ),
        (json!({ "rrn": "RRN000000001" }), "USING INDEX journal_rrn"),
        (
            json!({ "stan": "000001", "institution": "bank-a" }),
            "USING INDEX journal_stan",
        ),
    ] {
        let criteria: Criteria = serde_json::from_value(criteria.clone()).unwrap();
        let plan = criteria.compile(hash).unwrap().plan(&store).unwrap();
        assert!(plan.contains(index), "{criteria:?}: {plan}");
        // A card or an account reads its search table and the rows not
        // listed yet, a page of each at most, and sorts only those pages.
        let steps: Vec<&str> = plan.lines().collect();
        for (i, step) in steps.iter().enumerate() {
            if step.contains("TEMP B-TREE") {
                assert!(
                    i > 0 && ["SCAN listed", "SCAN waiting"].contains(&steps[i - 1]),
                    "sorted without the index: {plan}"
                );
            }
        }
    }
    // Without a key: a range of the primary key, newest first, no sort.
    let criteria: Criteria =
        serde_json::from_value(json!({ "from": "2026-09-01", "decided_by": "stand_in" })).unwrap();
    let plan = criteria.compile(hash).unwrap().plan(&store).unwrap();
    assert!(plan.contains("INTEGER PRIMARY KEY"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}

#[path = "../benches/support/journal_rows.rs"]
mod journal_rows;

/// Every page of `criteria`, `limit` rows at a time, through [`Query::run`].
fn pages(store: &Store, criteria: Value, hash: &dyn Fn(&Pan) -> PanHash) -> Vec<String> {
    let mut criteria: Criteria = serde_json::from_value(criteria).unwrap();
    criteria.limit = Some(7);
    let mut ids = Vec::new();
    loop {
        let page = criteria.compile(hash).unwrap().run(store).unwrap();
        ids.extend(page.transactions.iter().map(|r| r.txn_id.clone()));
        match page.next_before {
            Some(next) => criteria.before = Some(next),
            None => return ids,
        }
    }
}

#[test]
fn a_row_is_found_by_card_and_account_before_and_after_it_is_listed_for_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::open_store(dir.path());
    let keys = journal_rows::keys();
    let hash = |p: &Pan| keys.hash(p);
    let card = journal_rows::pan(7);
    let end = jiff::Timestamp::now();
    // 90 rows, a third of them card 7's, journaled out of txn_id order (as
    // calls that take longer are) in three writes that each span the whole
    // range; the search tables catch up after the first two only.
    let others = vec![PanHash([0; 32]); journal_rows::CARDS as usize];
    let rows: Vec<_> = (0..90u64)
        .map(|i| {
            let mut row = journal_rows::row(i, 90, end, &others);
            if i % 3 == 0 {
                row.pan_hash = Some(hash(&card).0.to_vec());
                row.account = Some("ACC-SEVEN".into());
            }
            row
        })
        .collect();
    let mut expected: Vec<String> = rows
        .iter()
        .filter(|r| r.account.as_deref() == Some("ACC-SEVEN"))
        .map(|r| r.txn_id.to_string())
        .collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    let unlisted = || -> i64 {
        store
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM journal_unindexed", params![], |r| {
                    r.get(0)
                })
            })
            .unwrap()
    };
    for write in 0..3 {
        // Each write's rows spread over the whole range, newest first.
        let batch: Vec<_> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| (i / 3) % 3 == write)
            .rev()
            .map(|(_, r)| r.clone())
            .collect();
        store
            .write_blocking(move |c| batch.iter().try_for_each(|r| journal::insert(c, r)))
            .unwrap();
        if write < 2 {
            assert_eq!(
                store.write_blocking(search_index::catch_up).unwrap(),
                30,
                "every row has a card and an account"
            );
            assert_eq!(unlisted(), 0);
        }
    }
    assert_eq!(unlisted(), 30, "the last write is not listed yet");
    for criteria in [
        json!({ "card": card.expose() }),
        json!({ "account": "ACC-SEVEN" }),
    ] {
        assert_eq!(
            pages(&store, criteria.clone(), &hash),
            expected,
            "{criteria}"
        );
    }
    // A page boundary inside the listed rows, two criteria at once.
    let within = pages(
        &store,
        json!({ "card": card.expose(), "before": expected[3], "account": "ACC-SEVEN" }),
        &hash,
    );
    assert_eq!(within, expected[4..]);
    store.write_blocking(search_index::catch_up).unwrap();
    assert_eq!(
        pages(&store, json!({ "card": card.expose() }), &hash),
        expected
    );
}

#[test]
fn the_migration_lists_every_older_row_for_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("older.db");
    let keys = journal_rows::keys();
    let hash = |p: &Pan| keys.hash(p);
    let card = journal_rows::pan(7);
    let others = vec![PanHash([0; 32]); journal_rows::CARDS as usize];
    let end = jiff::Timestamp::now();
    let rows: Vec<_> = (0..20u64)
        .map(|i| {
            let mut row = journal_rows::row(i, 20, end, &others);
            row.pan_hash = Some(hash(&card).0.to_vec());
            row
        })
        .collect();
    let mut expected: Vec<String> = rows.iter().map(|r| r.txn_id.to_string()).collect();
    expected.reverse();
    {
        let store = Store::open(&path).unwrap();
        store
            .write_blocking(move |c| rows.iter().try_for_each(|r| journal::insert(c, r)))
            .unwrap();
    }
    // The store as it was before migration 0020: the rows indexed on the
    // journal itself.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(support::UNDO_SEARCH_TABLES).unwrap();
    db.execute_batch("PRAGMA user_version = 19").unwrap();
    drop(db);

    let store = Store::open(&path).unwrap();
    let count = |sql: &str| -> i64 {
        store
            .read(|c| c.query_row(sql, params![], |r| r.get(0)))
            .unwrap()
    };
    assert_eq!(count("SELECT COUNT(*) FROM journal_unindexed"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM journal_by_card"), 20);
    assert_eq!(count("SELECT COUNT(*) FROM journal_by_account"), 20);
    assert_eq!(
        pages(&store, json!({ "card": card.expose() }), &hash),
        expected
    );
}

#[test]
fn a_backlog_is_moved_into_the_search_tables_oldest_first_a_batch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::open_store(dir.path());
    let keys = journal_rows::keys();
    let card = journal_rows::pan(7);
    let hashes = vec![keys.hash(&card); journal_rows::CARDS as usize];
    let backlog = search_index::BATCH as u64 + 10;
    let rows: Vec<_> = (0..backlog)
        .map(|i| journal_rows::row(i, backlog, jiff::Timestamp::now(), &hashes))
        .collect();
    let mut newest: Vec<i64> = rows.iter().map(|r| r.txn_id.0).collect();
    newest.sort_unstable();
    let newest = newest.split_off(search_index::BATCH as usize);
    store
        .write_blocking(move |c| rows.iter().rev().try_for_each(|r| journal::insert(c, r)))
        .unwrap();
    let listed = || -> Vec<i64> {
        store
            .read(|c| {
                c.prepare_cached("SELECT txn_id FROM journal_unindexed ORDER BY txn_id")?
                    .query_map(params![], |r| r.get(0))?
                    .collect()
            })
            .unwrap()
    };
    let by_card = || -> i64 {
        store
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM journal_by_card", params![], |r| {
                    r.get(0)
                })
            })
            .unwrap()
    };
    assert_eq!(
        store.write_blocking(search_index::catch_up).unwrap(),
        search_index::BATCH as usize
    );
    assert_eq!(listed(), newest, "the newest rows wait for the next batch");
    assert_eq!(by_card(), search_index::BATCH);
    assert_eq!(store.write_blocking(search_index::catch_up).unwrap(), 10);
    assert_eq!(listed(), Vec::<i64>::new());
    assert_eq!(by_card(), backlog as i64);
    assert_eq!(store.write_blocking(search_index::catch_up).unwrap(), 0);
}
