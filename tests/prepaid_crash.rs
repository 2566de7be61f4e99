//! The prepaid ledger across `kill -9` of the real `cardhub serve` binary.
//! Several switch connections drive a seeded random sequence of loads,
//! purchases (0100 holds, 0200 posted at once), completions (0220) and full
//! or partial reversals (0400 / 0420) at prepaid cards, and, through the
//! JSON API, moves between two of a connection's cards and replacements of
//! a lost card (the card then goes on under its new number and card
//! account, while captures and reversals of what the old number took keep
//! that number, as a switch does). The hub is killed with SIGKILL at a
//! random point, the store checked, the hub restarted and the sequence
//! continued, for a few rounds. After every kill:
//!
//! - the ledger's audit finds nothing (entries balance, balance columns
//!   equal the sums of postings, the per-orderer invariant, no card negative
//!   or over its maximum, no holds past a balance, each card's kept hold
//!   totals equal the sums of its holds);
//! - every answer the switch saw approved is journaled, and its ledger
//!   entry or hold is in the store — for an authorization always (durable
//!   before answered); for an advice or reversal, which the hub acknowledges
//!   and tells the ledger itself, in the ledger or queued for it; every
//!   move the API answered 200 is booked;
//! - each card's balance, recomputed from the postings of every card
//!   account it has had, is exactly the sum of the approved operations the
//!   ledger booked (a move whose answer the kill cut off counts when its
//!   reference is booked), plus some of the switch requests whose answer
//!   the kill cut off (none, one, …): nothing else;
//! - each card whose load was booked is active; a replaced card is `lost`,
//!   its replacement active.
//!
//! After the restart an API call the kill cut off is resolved first: a
//! move or a replacement is sent again with its reference (a repeat books
//! nothing twice and answers as the first did). A move is refused only
//! for funds the card may lack or a maximum the other card may reach (422
//! with that reason). Each connection owns its cards, so a card has at most
//! one request under way. `PREPAID_CRASH_SEED=<n>` repeats a sequence (the
//! kill points still depend on timing).

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cardhub_core::iso8583::fields::Pan;
use cardhub_core::prepaid::Ledger;
use cardhub_core::store::Store;
use proptest::test_runner::{RngAlgorithm, TestRng};
use support::canonical_hub::TOKEN;
use support::prepaid::open_ledger;
use support::prepaid_crash::{
    Approved, Connection, MAX_BALANCE, Pending, Settles, Via, account, between, pan,
};
use support::{client, prepare, wait_until};

const CONNECTIONS: usize = 4;
const CARDS_PER_CONNECTION: usize = 3;
const ROUNDS: usize = 4;

fn extra() -> String {
    format!(
        r#"
[api]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[limits.crash]
atm = {{ per_transaction = 0, daily_amount = 0, daily_count = 0 }}
pos = {{ per_transaction = 500000, daily_amount = 100000000000, daily_count = 1000000 }}

[[institution]]
id = "city"
name = "City prepaid"
mode = "prepaid"
"#
    )
}

/// Every sum of a subset of `effects`.
fn subset_sums(effects: &[i64]) -> Vec<i64> {
    effects.iter().fold(vec![0], |sums, e| {
        sums.iter().flat_map(|s| [*s, s + e]).collect()
    })
}

/// The checks after a kill (see the module doc), on the store as the kill
/// left it.
fn check(dir: &Path, config: &cardhub_core::config::Config, connections: &[Connection]) {
    let store = Store::open(&dir.join("hub.db")).unwrap();
    let audit = Ledger::new(store.clone(), &config.prepaid).audit().unwrap();
    assert!(audit.is_empty(), "audit after kill -9: {audit:#?}");
    drop(store);

    let db = rusqlite::Connection::open(dir.join("hub.db")).unwrap();
    let txn_of = |stan: u32, mti: &str| -> String {
        let txn: i64 = db
            .query_row(
                "SELECT txn_id FROM journal WHERE stan = ?1 AND mti = ?2 AND entry = 'request' \
                 AND response_code = '00'",
                rusqlite::params![format!("{stan:06}"), mti],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("approved {mti} stan {stan} not journaled: {e}"));
        format!("{txn:016X}")
    };
    let booked = |reference: &str| -> bool {
        db.query_row(
            "SELECT EXISTS (SELECT 1 FROM prepaid_entries WHERE reference = ?1) \
             OR EXISTS (SELECT 1 FROM prepaid_holds WHERE reference = ?1)",
            [reference],
            |r| r.get(0),
        )
        .unwrap()
    };
    let queued = |txn: &str| -> bool {
        let id = i64::from_str_radix(txn, 16).unwrap();
        db.query_row(
            "SELECT EXISTS (SELECT 1 FROM saf_queue WHERE txn_id = ?1)",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    // A card account's id and balance column, if it exists.
    let card_account = |account: &str| -> Option<(i64, i64)> {
        db.query_row(
            "SELECT id, balance FROM prepaid_accounts WHERE kind = 'card' AND name = ?1",
            [account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
    };
    for conn in connections {
        let mut confirmed = vec![0i64; conn.cards.len()];
        let mut loaded = vec![false; conn.cards.len()];
        for a in &conn.approved {
            match &a.via {
                Via::Switch { stan, mti, path } => {
                    let txn = txn_of(*stan, mti);
                    if booked(&txn) {
                        confirmed[a.card] += a.effect;
                        loaded[a.card] |= a.effect > 0 && *path == Settles::Booked;
                    } else {
                        assert!(
                            *path == Settles::Told && queued(&txn),
                            "approved {mti} stan {stan} (txn {txn}) neither booked nor queued"
                        );
                    }
                }
                Via::Move { reference } => {
                    assert!(booked(reference), "approved move {reference} not booked");
                    confirmed[a.card] += a.effect;
                }
            }
        }
        // The API call the kill cut off, as the store has it.
        let mut cards = conn.cards.clone();
        match &conn.pending {
            Some(Pending::Move {
                reference,
                from,
                to,
                amount,
            }) if booked(reference) => {
                confirmed[*from] -= *amount as i64;
                confirmed[*to] += *amount as i64;
            }
            Some(Pending::Replacement {
                card, pan, account, ..
            }) if card_account(account).is_some() => {
                cards[*card].push((pan.expose().to_string(), account.clone()));
            }
            _ => {}
        }
        for (card, numbers) in cards.iter().enumerate() {
            let mut postings = 0;
            for (k, (pan, account)) in numbers.iter().enumerate() {
                let (id, column) = card_account(account).unwrap();
                let sum: i64 = db
                    .query_row(
                        "SELECT COALESCE(SUM(amount), 0) FROM prepaid_postings WHERE account = ?1",
                        [id],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(column, sum, "{account}: balance column against postings");
                postings += sum;
                let status: String = db
                    .query_row(
                        "SELECT status FROM cards WHERE account = ?1",
                        [account],
                        |r| r.get(0),
                    )
                    .unwrap();
                let masked = Pan::new(pan).unwrap();
                if k + 1 < numbers.len() {
                    assert_eq!(status, "lost", "{masked} replaced");
                } else if k > 0 || loaded[card] {
                    assert_eq!(status, "active", "{masked} loaded or a replacement");
                }
            }
            let uncertain = &conn.models[card].uncertain;
            let accounts: Vec<&String> = numbers.iter().map(|(_, account)| account).collect();
            assert!(
                subset_sums(uncertain).contains(&(postings - confirmed[card])),
                "{accounts:?}: recovered balance {postings}, approved and booked {}, \
                 cut-off effects {uncertain:?}",
                confirmed[card]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepaid_ledger_recovers_exactly_after_kill_9() {
    let seed: u64 = std::env::var("PREPAID_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
    println!("PREPAID_CRASH_SEED={seed}");
    let rng_for = |n: u64| {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..16].copy_from_slice(&n.to_le_bytes());
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
    };

    let (dir, config) = prepare(&extra()).await;
    let cards: Vec<(String, String)> = (0..CONNECTIONS * CARDS_PER_CONNECTION)
        .map(|i| (pan(i), account(i)))
        .collect();
    let mut csv = String::from("pan,expiry,status,account,institution,currency,profile,product\n");
    for (pan, account) in &cards {
        csv.push_str(&format!(
            "{pan},3012,inactive,{account},city,USD,crash,prepaid\n"
        ));
    }
    let csv_path = dir.path().join("prepaid-cards.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let accounts: Vec<&str> = cards.iter().map(|(_, a)| a.as_str()).collect();
    open_ledger(&config, &csv_path, &accounts, Some(MAX_BALANCE)).await;

    let mut connections: Vec<Connection> = cards
        .chunks(CARDS_PER_CONNECTION)
        .enumerate()
        .map(|(index, cards)| Connection::new(index, rng_for(index as u64 + 1), cards))
        .collect();
    let mut kill_points = rng_for(0);
    let config_path = dir.path().join("cardhub.toml");
    let log = dir.path().join("hub.log");
    for round in 1..=ROUNDS {
        let mut served = support::served::serve(&config_path, &[], &log, &["base24"], true).await;
        let (addr, api) = (served.switch("base24"), served.api());
        let approvals = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(client(&addr).await);
        }
        let running: Vec<_> = connections
            .drain(..)
            .zip(clients)
            .map(|(conn, c)| tokio::spawn(conn.run(c, api.clone(), approvals.clone())))
            .collect();
        let kill_after = between(&mut kill_points, 100, 400) as usize;
        wait_until("approvals before the kill", || {
            approvals.load(Ordering::SeqCst) >= kill_after
        })
        .await;
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        for r in running {
            connections.push(r.await.unwrap());
        }
        let cut: usize = connections
            .iter()
            .map(|c| c.models.iter().map(|m| m.uncertain.len()).sum::<usize>())
            .sum();
        let pending: Vec<&Pending> = connections.iter().flat_map(|c| &c.pending).collect();
        println!(
            "round {round}: killed after {} approvals; {cut} cut-off effects so far; \
             API calls cut off: {pending:?}",
            approvals.load(Ordering::SeqCst)
        );
        check(dir.path(), &config, &connections);
    }
    let total: usize = connections.iter().map(|c| c.approved.len()).sum();
    let by_what = connections.iter().flat_map(|c| &c.approved).fold(
        HashMap::<&str, usize>::new(),
        |mut m, a: &Approved| {
            *m.entry(a.what()).or_default() += 1;
            m
        },
    );
    let replaced: usize = connections
        .iter()
        .flat_map(|c| &c.cards)
        .map(|numbers| numbers.len() - 1)
        .sum();
    let refused: usize = connections.iter().map(|c| c.refused_moves).sum();
    let old: usize = connections.iter().map(|c| c.under_old_numbers).sum();
    println!(
        "{total} approvals over {ROUNDS} kills: {by_what:?} (a move counts twice); \
         {replaced} cards replaced; {old} captures and reversals under a replaced \
         card's number; {refused} moves refused"
    );
    for what in ["0100", "0200", "0220", "0400", "0420", "move"] {
        assert!(
            by_what.get(what).copied().unwrap_or(0) > 0,
            "no approved {what}: {by_what:?}"
        );
    }
    assert!(replaced > 0, "no card replaced");
    assert!(
        old > 0,
        "no capture or reversal under a replaced card's number"
    );
}
