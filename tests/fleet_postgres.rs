//! Two hub instances on one PostgreSQL database, both serving the switch at
//! once, one killed with SIGKILL under load: every answer the switch saw as
//! approved is in the journal, the two instances' transaction ids never
//! collide, and a prepaid card's balance is never spent twice. The hubs are
//! this test binary, re-executed on the ignored test `fleet_child`.

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardhub_core::app;
use cardhub_core::cards::file;
use cardhub_core::config::Config;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::prepaid::Ledger;
use cardhub_core::standin::shadow::{Base, upsert_online_balance};
use cardhub_core::standin::state::{InstitutionState, Institutions, Source};
use cardhub_core::store::Store;
use cardhub_lab::sim::SimClient;
use jiff::Timestamp;
use support::canonical_hub::{self, mount_bank, told, wait_told};
use support::fleet::{self, open_store, spawn_instance};
use support::prepaid::{CITY, load, open_ledger};
use support::*;
use wiremock::MockServer;

/// A prepaid card, loaded with [`LOADED`] before the instances start.
const PREPAID: &str = "4761739002010019";
const LOADED: u64 = 30_000;
/// What each prepaid purchase takes.
const PRICE: u64 = 100;
/// The purchase that shows the card active on the first instance.
const PROBE: u64 = 1;

/// The config of instance `instance` of the kill test on database `url`,
/// written to `dir`.
fn write_config(dir: &Path, url: &str, instance: u8) -> PathBuf {
    // The card's purchases are bounded by its balance, not by a count.
    let text = config_text(CITY).replace("daily_count = 20 }", "daily_count = 1000 }");
    fleet::write_config(dir, &text, url, instance, "")
}

/// The demo cards and the prepaid card (`status`, account P-1) in the
/// store of `config`, the card's ledger account opened.
async fn cards_and_ledger(config: &Config, dir: &Path, status: &str) {
    let cards = dir.join("cards.csv");
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv"),
    )
    .unwrap();
    std::fs::write(
        &cards,
        format!("{demo}{PREPAID},3012,{status},P-1,city,USD,prepaid,prepaid\n"),
    )
    .unwrap();
    open_ledger(config, &cards, &["P-1"], None).await;
}

/// Rows of `sql` (one text column) in the store.
fn texts(store: &Store, sql: &str) -> Vec<String> {
    store
        .read(|c| {
            c.prepare_cached(sql)?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .unwrap()
}

fn count(store: &Store, sql: &str) -> i64 {
    store.read(|c| c.query_row(sql, [], |r| r.get(0))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_lose_no_approval_across_kill_9_and_never_spend_twice() {
    let url = support::pg::database("fleet_kill9");
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        write_config(dir.path(), &url, 0),
        write_config(dir.path(), &url, 1),
    ];
    // The demo cards, the prepaid card in the ledger, loaded once.
    let config = Config::load(&configs[0]).unwrap();
    cards_and_ledger(&config, dir.path(), "inactive").await;

    let (mut first, first_addr) = spawn_instance(&configs[0]);
    let (mut second, second_addr) = spawn_instance(&configs[1]);
    let clients = Arc::new([client(&first_addr).await, client(&second_addr).await]);
    assert_eq!(code_of(&clients[1], &load(PREPAID, LOADED, 1)).await, "00");
    // The other instance sees the card active within its card refresh:
    // one purchase of PROBE there.
    within_wait("the first instance sees the card active", async {
        for stan in 90.. {
            if code_of(&clients[0], &purchase(PREPAID, PROBE, stan)).await == "00" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;

    let approved = Arc::new(Mutex::new(HashSet::<String>::new()));
    let prepaid_approved = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..16u32 {
        let (clients, approved, prepaid_approved, stop) = (
            clients.clone(),
            approved.clone(),
            prepaid_approved.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let c = &clients[(w % 2) as usize];
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let stan = 100 + w * 20_000 + i;
                let prepaid = i % 2 == 0;
                let request = if prepaid {
                    purchase(PREPAID, PRICE, stan)
                } else {
                    purchase(ACTIVE_USD, 1, stan)
                };
                let Ok((answer, _)) = c.request(&request, WAIT).await else {
                    break; // its instance was killed
                };
                if answer.response_code().is_ok_and(|code| code.is_approval()) {
                    approved.lock().unwrap().insert(format!("{stan:06}"));
                    if prepaid {
                        *prepaid_approved.lock().unwrap() += 1;
                    }
                }
            }
        }));
    }
    // Killed under full load, once both instances have approved enough.
    wait_until("200 approvals", || approved.lock().unwrap().len() >= 200).await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    // The survivor keeps answering until the prepaid card is spent.
    let spent = LOADED / PRICE;
    wait_until("the prepaid card spent on the survivor", || {
        *prepaid_approved.lock().unwrap() >= spent - 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let store = open_store(&url);
    let (approved, prepaid_approved) = (
        approved.lock().unwrap().clone(),
        *prepaid_approved.lock().unwrap(),
    );
    let journaled: Vec<(String, i64)> = store
        .read(|c| {
            c.prepare_cached(
                "SELECT stan, txn_id FROM journal WHERE response_code = '00' AND entry = 'request'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
        .unwrap();
    let in_journal: HashSet<String> = journaled.iter().map(|(stan, _)| stan.clone()).collect();
    let missing: Vec<_> = approved.difference(&in_journal).collect();
    assert!(
        missing.is_empty(),
        "{} approvals lost: {missing:?}",
        missing.len()
    );
    let ids: HashSet<i64> = journaled.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), journaled.len(), "two rows with one txn_id");
    let instances: HashSet<u8> = journaled
        .iter()
        .map(|(_, id)| cardhub_core::journal::txn_id::TxnId(*id).instance())
        .collect();
    assert_eq!(instances, HashSet::from([0, 1]), "both instances decided");

    // The prepaid card: what it has left is exactly what the ledger booked,
    // never below zero, and every purchase the switch saw approved is in it.
    let ledger = Ledger::new(store.clone(), &config.prepaid);
    let balance = ledger.balance("P-1").unwrap();
    assert!(balance.available >= 0, "{balance:?}");
    let taken = LOADED - PROBE - u64::try_from(balance.available).unwrap();
    assert_eq!(taken % PRICE, 0, "{taken} is not whole purchases");
    let booked = taken / PRICE;
    assert!(
        booked >= prepaid_approved,
        "{prepaid_approved} approved, {booked} booked"
    );
    assert!(
        booked <= spent,
        "{booked} purchases of {PRICE} booked on {LOADED}"
    );
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
    println!(
        "{} approvals across the kill, {prepaid_approved} prepaid, {booked} booked",
        approved.len()
    );
}

/// Accounts whose stand-in approvals queue advices, with their purchases.
const SAF_ACCOUNTS: [(&str, &str, usize); 2] =
    [("A-1001", ACTIVE_USD, 4), ("A-1002", ACTIVE_USD_2, 2)];

/// The holder of lease `name`, if any.
fn lease_holder(store: &Store, name: &str) -> Option<String> {
    let sql = format!("SELECT holder FROM fleet_leases WHERE name = '{name}'");
    texts(store, &sql).pop()
}

/// Store-and-forward goes on after kill -9: bank-a closed, instance 0 —
/// holding the SAF lease `saf/bank-a` — stands in and queues the advices;
/// it is killed; bank-a opens; instance 1 takes the lease over once it
/// expires and delivers every advice exactly once, in order per account,
/// and the queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saf_continues_on_the_survivor_of_a_kill_9() {
    let url = support::pg::database("fleet_saf");
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // bank-a through the canonical adapter to the mock; quick leases.
    canonical_hub::write_config(dir.path(), &bank.uri(), 5_000, "127.0.0.1:0", "127.0.0.1:0");
    let text = std::fs::read_to_string(dir.path().join("cardhub.toml")).unwrap();
    let configs = [0, 1].map(|i| fleet::write_config(dir.path(), &text, &url, i, "ttl_ms = 1000"));
    let config = Config::load(&configs[0]).unwrap();
    // The demo cards, fresh balances, bank-a closed before either starts.
    {
        let hub = app::open(&config, HashMap::new()).unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv");
        let rows = file::read(&demo, &config.catalog()).unwrap();
        hub.cards().import(rows).await.unwrap();
    }
    let store = open_store(&url);
    for (account, _, _) in SAF_ACCOUNTS {
        let base = Base {
            available: 100_000,
            as_of_us: Timestamp::now().as_microsecond() - 1_000_000,
        };
        store
            .write(move |c| upsert_online_balance(c, "bank-a", account, base))
            .await
            .unwrap();
    }
    let institutions = Institutions::open(store.clone(), &config.institutions).unwrap();
    let closing = (InstitutionState::Closing, Source::Api, "end of day");
    institutions
        .set_state("bank-a", closing.0, closing.1, closing.2)
        .await
        .unwrap();

    let (mut first, first_addr) = spawn_instance(&configs[0]);
    within_wait("instance 0 holds the SAF lease", async {
        while !lease_holder(&store, "saf/bank-a").is_some_and(|h| h.starts_with("0/")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (mut second, _) = spawn_instance(&configs[1]);
    let c = client(&first_addr).await;
    let mut stan = 1;
    for (_, pan, purchases) in SAF_ACCOUNTS {
        for _ in 0..purchases {
            assert_eq!(code_of(&c, &purchase(pan, 1_000, stan)).await, "00");
            stan += 1;
        }
    }
    let stood_in = texts(
        &store,
        "SELECT account || ' ' || CAST(txn_id AS TEXT) FROM journal \
         WHERE decided_by = 'stand_in' AND response_code = '00' ORDER BY txn_id",
    );
    let queued = count(
        &store,
        "SELECT COUNT(*) FROM saf_queue WHERE state = 'pending'",
    );
    assert_eq!((stood_in.len(), queued), (6, 6), "{stood_in:?}");
    assert!(
        told(&bank, "<as:Advice ").await.is_empty(),
        "closed: nothing told"
    );
    first.kill().unwrap(); // SIGKILL, with the advices queued
    first.wait().unwrap();

    institutions
        .set_state("bank-a", InstitutionState::Open, Source::Api, "day open")
        .await
        .unwrap();
    let delivered = wait_told(&bank, "<as:Advice ", stood_in.len()).await;
    within_wait("the queue delivered", async {
        while count(
            &store,
            "SELECT COUNT(*) FROM saf_queue WHERE state != 'delivered'",
        ) > 0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let holder = lease_holder(&store, "saf/bank-a").unwrap();
    assert!(
        holder.starts_with("1/"),
        "taken over by instance 1: {holder}"
    );
    // Every advice once: what the account system was told by the time the
    // queue is empty is all it is told.
    let delivered: Vec<String> = delivered.into_iter().map(|(id, _)| id).collect();
    assert_eq!(told(&bank, "<as:Advice ").await.len(), delivered.len());
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "told twice: {delivered:?}");
    for (account, _, _) in SAF_ACCOUNTS {
        let expected: Vec<String> = stood_in
            .iter()
            .filter_map(|row| row.strip_prefix(&format!("{account} ")))
            .map(|id| format!("{:016X}", id.parse::<i64>().unwrap()))
            .collect();
        let told_for: Vec<&String> = delivered
            .iter()
            .filter(|id| expected.contains(id))
            .collect();
        assert_eq!(
            told_for,
            expected.iter().collect::<Vec<_>>(),
            "{account}: each once, in order"
        );
    }
    assert_eq!(delivered.len(), stood_in.len(), "none missing, none other");
    second.kill().unwrap();
    second.wait().unwrap();
}

/// Two hubs in this process on one database — instances 0 and 1, each on
/// its own socket, bank-a one test bank for both — with the prepaid card
/// active and loaded: the switch's clients on each.
async fn two_hubs(name: &str) -> (Arc<TestBank>, [TestHub; 2], [Arc<SimClient>; 2], Store) {
    let url = support::pg::database(name);
    let dir = tempfile::tempdir().unwrap();
    // One failure of the ledger opens its breaker: a copy must not count.
    let text = config_text(&format!("{CITY}breaker = {{ failures = 1 }}\n"));
    let configs = [0, 1].map(|i| fleet::write_config(dir.path(), &text, &url, i, ""));
    let config = Config::load(&configs[0]).unwrap();
    cards_and_ledger(&config, dir.path(), "active").await;
    let bank = Arc::new(TestBank::default());
    let mut hubs = Vec::new();
    for path in &configs {
        let config = Config::load(path).unwrap();
        hubs.push(start_in(tempfile::tempdir().unwrap(), config, bank.clone()).await);
    }
    let hubs: [TestHub; 2] = hubs.try_into().ok().unwrap();
    let clients = [
        Arc::new(client(&hubs[0].addr).await),
        Arc::new(client(&hubs[1].addr).await),
    ];
    assert_eq!(code_of(&clients[0], &load(PREPAID, 10_000, 1)).await, "00");
    (bank, hubs, clients, open_store(&url))
}

/// The journal rows of STAN `stan` by entry: (entry, instance of the txn
/// id, response code, whether it names the request row as its original).
fn rows_of(store: &Store, stan: u32) -> Vec<String> {
    let rows: Vec<(String, i64, String, Option<i64>)> = store
        .read(|c| {
            c.prepare_cached(
                "SELECT entry, txn_id, response_code, original_txn_id FROM journal \
                 WHERE stan = ?1 ORDER BY entry",
            )?
            .query_map([format!("{stan:06}")], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
        })
        .unwrap();
    let request = rows.iter().find(|r| r.0 == "request").map(|r| r.1);
    rows.iter()
        .map(|(entry, id, code, original)| {
            let names = original.is_some() && *original == request;
            format!("{entry} {} {code} {names}", TxnId(*id).instance())
        })
        .collect()
}

/// A request answered by instance 0, then sent again to instance 1: the
/// retransmission is recognised there — the original's answer, one
/// request row and a retransmission row naming it, no second call to the
/// account system (the call intent's transaction found the key
/// journaled), no second booking in the prepaid ledger (its journal row
/// hit the duplicate key: the booking rolled back, the row that won read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_at_the_other_instance_gets_the_original_answer() {
    let (bank, hubs, clients, store) = two_hubs("fleet_repeat").await;
    let online = purchase(ACTIVE_USD, 1_000, 10);
    assert_eq!(code_of(&clients[0], &online).await, "00");
    assert_eq!(code_of(&clients[1], &online).await, "00");
    assert_eq!(bank.calls("authorize").len(), 1, "the bank asked once");
    let prepaid = purchase(PREPAID, 500, 11);
    assert_eq!(code_of(&clients[0], &prepaid).await, "00");
    assert_eq!(code_of(&clients[1], &prepaid).await, "00");
    let ledger = Ledger::new(store.clone(), &hubs[0].config.prepaid);
    assert_eq!(ledger.balance("P-1").unwrap().available, 10_000 - 500);
    // The copy's booking conflicted with the original's row: the ledger is
    // up, its breaker counted nothing.
    let city = hubs[1].hub.institutions().get("city").unwrap().clone();
    assert!(!city.breaker_tripped() && city.state().is_online());
    for stan in [10, 11] {
        assert_eq!(
            rows_of(&store, stan),
            ["request 0 00 false", "retransmission 1 00 true"],
            "STAN {stan}"
        );
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_intents"), 0);
    // A third copy, at instance 1 again: its filter knows the key now.
    assert_eq!(code_of(&clients[1], &online).await, "00");
    assert_eq!(bank.calls("authorize").len(), 1);
    for hub in hubs {
        hub.link.shutdown().await;
    }
}

/// The original still with the account system at instance 0 when its
/// copy reaches instance 1: the copy finds the call intent, waits for the
/// original's row and gets its answer; the account system is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retransmission_at_the_other_instance_waits_for_the_original_in_flight() {
    let (bank, hubs, clients, store) = two_hubs("fleet_in_flight").await;
    bank.hold();
    let request = purchase(ACTIVE_USD_2, 1_000, 20);
    let ask = |i: usize| {
        let (client, request) = (clients[i].clone(), request.clone());
        tokio::spawn(async move { code_of(&client, &request).await })
    };
    let original = ask(0);
    wait_until("the original's call under way", || {
        bank.calls("authorize").len() == 1
    })
    .await;
    let copy = ask(1);
    // Time for the copy to reach instance 1's call intent (held or not,
    // it cannot be answered before the original).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!copy.is_finished(), "the copy waits for the original");
    bank.release();
    assert_eq!(original.await.unwrap(), "00");
    assert_eq!(copy.await.unwrap(), "00");
    assert_eq!(bank.calls("authorize").len(), 1, "the bank asked once");
    assert_eq!(
        rows_of(&store, 20),
        ["request 0 00 false", "retransmission 1 00 true"]
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_intents"), 0);
    for hub in hubs {
        hub.link.shutdown().await;
    }
}

/// The race the call intent cannot close: instance 1 stands in for a copy
/// (it sees bank-a closing; instance 0 does not yet) while the original's
/// call is under way at instance 0. The copy's row takes the key; the
/// original's decision cannot be journaled, so its call is journaled as a
/// `repeated_request` and queued for reversal, and the original is
/// answered with the copy's decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_key_a_copy_took_meanwhile_is_reversed() {
    let (bank, hubs, clients, store) = two_hubs("fleet_key_race").await;
    let base = Base {
        available: 100_000,
        as_of_us: Timestamp::now().as_microsecond() - 1_000_000,
    };
    store
        .write(move |c| upsert_online_balance(c, "bank-a", "A-1002", base))
        .await
        .unwrap();
    bank.hold();
    let request = purchase(ACTIVE_USD_2, 1_000, 30);
    let original = {
        let (client, request) = (clients[0].clone(), request.clone());
        tokio::spawn(async move { code_of(&client, &request).await })
    };
    wait_until("the original's call under way", || {
        bank.calls("authorize").len() == 1
    })
    .await;
    // Instance 0 keeps its own view: these hubs run no state refresh.
    hubs[1]
        .hub
        .institutions()
        .set_state(
            "bank-a",
            InstitutionState::Closing,
            Source::Api,
            "end of day",
        )
        .await
        .unwrap();
    assert_eq!(code_of(&clients[1], &request).await, "00");
    bank.release();
    assert_eq!(original.await.unwrap(), "00", "the copy's decision");
    assert_eq!(bank.calls("authorize").len(), 1);
    let mut rows = rows_of(&store, 30);
    rows.sort();
    assert_eq!(
        rows,
        [
            "repeated_request 0 96 false",
            "request 1 00 false",
            "retransmission 0 00 true"
        ]
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_intents"), 0);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM saf_queue q JOIN journal j ON j.txn_id = q.txn_id \
             WHERE q.operation = 'reverse' AND j.entry = 'repeated_request'"
        ),
        1,
        "the original's call is reversed"
    );
    for hub in hubs {
        hub.link.shutdown().await;
    }
}

/// A hub instance of the fleet tests; does nothing unless run by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the tests of this file that kill an instance"]
async fn fleet_child() {
    fleet::serve_child().await;
}
