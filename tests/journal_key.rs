//! The duplicate key is unique in the journal: a repeat that comes after
//! the seen-keys filter forgot its key is answered as a repeat, not
//! journaled or sent to the account system twice, and the
//! migration that made the key unique keeps older late repeats under their
//! own entry kind.

mod support;

use std::sync::Arc;

use cardhub_core::store::Store;
use support::*;

/// Milliseconds in a transaction id's high bits (`ms << 20 | counter`).
const MS: i64 = 1 << 20;

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_the_seen_filter_forgot_is_answered_as_a_repeat_without_a_second_call() {
    let (dir, config) = prepare("").await;
    let bank = Arc::new(TestBank::default());
    let first = start_in(dir, config.clone(), bank.clone()).await;
    let c = client(&first.addr).await;
    let purchase = purchase(ACTIVE_USD, 1_000, 1);
    assert_eq!(code_of(&c, &purchase).await, "00");
    first.link.shutdown().await;
    let TestHub { dir, .. } = first;
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    // The original is older than the filter's window: a new hub does not
    // know its key.
    db.execute(
        "UPDATE journal SET txn_id = txn_id - ?1 WHERE stan = '000001'",
        [20 * 60 * 1000 * MS],
    )
    .unwrap();

    let second = start_in(dir, config.clone(), bank.clone()).await;
    let c = client(&second.addr).await;
    // Decided again up to the call: the call intent's transaction finds
    // the key journaled, so the bank is not asked again and the repeat
    // gets the original's answer.
    assert_eq!(code_of(&c, &purchase).await, "00");
    let requests = "SELECT COUNT(*) FROM journal WHERE stan = '000001' AND entry = 'request'";
    assert_eq!(count(&db, requests), 1, "one row per duplicate key");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM journal r JOIN journal o ON o.txn_id = r.original_txn_id \
             WHERE r.stan = '000001' AND r.entry = 'retransmission' AND o.entry = 'request' \
             AND r.response_code = '00'"
        ),
        1,
        "journaled as a retransmission of the original"
    );
    assert_eq!(bank.calls("authorize").len(), 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_intents"), 0);
    // Nothing counted twice: the daily totals hold the original only.
    assert_eq!(
        count(&db, "SELECT COALESCE(SUM(txn_count), 0) FROM daily_totals"),
        1
    );
    second.link.shutdown().await;
}

#[test]
fn the_migration_keeps_older_late_repeats_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    drop(Store::open(&path).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    // A store from before the index (and the later migrations' tables),
    // with a late repeat decided again.
    db.execute_batch(support::UNDO_SEARCH_TABLES).unwrap();
    db.execute_batch(support::UNDO_MERCHANT_NAME).unwrap();
    db.execute_batch(
        "DROP INDEX journal_duplicate_key; DROP INDEX call_intents_duplicate_key;
         DROP INDEX balance_files_one_current;
         DROP TABLE daily_totals; DROP TABLE shadow_account_locks;
         DROP TABLE audit_log; DROP TABLE access_tokens; DROP TABLE access_sessions;
         DROP TABLE access_user_institutions; DROP TABLE access_users;
         DROP TABLE prepaid_attestations;
         DROP TABLE prepaid_pin_requests; DROP TABLE prepaid_pin_mailers;
         DROP TABLE prepaid_order_cards; DROP TABLE prepaid_orders; DROP TABLE prepaid_card_ranges;
         DROP TABLE prepaid_holds; DROP TABLE prepaid_postings; DROP TABLE prepaid_entries;
         DROP TABLE prepaid_accounts; DROP TABLE prepaid_programmes; DROP TABLE prepaid_orderers;
         DROP TABLE fleet_leases; DROP TABLE fleet_members;
         ALTER TABLE institution_state DROP COLUMN version;
         PRAGMA user_version = 6;
         INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, is_repeat,
           kind, channel, amount_minor, currency, transmission_time, stan, acquirer, terminal,
           response_code, decided_by, latency_us)
         VALUES (1, 'request', 0, '2026-12-01', 's', '0100', 0, 'purchase', 'pos', 100, 840,
                 '1201120000', '000001', '4761739', 'T1', '00', 'account_system', 0),
                (2, 'request', 0, '2026-12-01', 's', '0100', 0, 'purchase', 'pos', 100, 840,
                 '1201120000', '000001', '4761739', 'T1', '00', 'account_system', 0),
                (3, 'request', 0, '2026-12-01', 's', '0400', 0, 'purchase', 'pos', 100, 840,
                 '1201120000', '000001', '4761739', 'T1', '00', 'account_system', 0);",
    )
    .unwrap();
    drop(db);
    drop(Store::open(&path).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    let entries: Vec<(i64, String)> = db
        .prepare_cached("SELECT txn_id, entry FROM journal ORDER BY txn_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        entries,
        [
            (1, "request".to_string()),
            (2, "repeated_request".to_string()),
            (3, "request".to_string())
        ]
    );
    let again = db.execute(
        "INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, is_repeat,
           kind, channel, amount_minor, currency, transmission_time, stan, acquirer, terminal,
           response_code, decided_by, latency_us)
         SELECT 4, entry, received_at_us, business_day, switch, mti, is_repeat, kind, channel,
           amount_minor, currency, transmission_time, stan, acquirer, terminal, response_code,
           decided_by, latency_us FROM journal WHERE txn_id = 1",
        [],
    );
    assert!(again.is_err(), "the key is unique now");
}
