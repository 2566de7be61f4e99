//! Two hub instances on one store (two `Store` handles on one SQLite file,
//! each with its own `Hub`, shadow book and daily counters, each on its own
//! socket): stand-in never approves the same last money twice, and the
//! daily limits hold across both.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cardhub_core::account::AccountSystem;
use cardhub_core::app;
use cardhub_core::cards::file;
use cardhub_core::config::Config;
use cardhub_core::hub::pipeline::Hub;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::link::{self, RunningLink};
use cardhub_core::standin::shadow::{Base, upsert_online_balance};
use cardhub_core::store::ServeLock;
use cardhub_lab::sim::SimClient;
use jiff::Timestamp;
use support::{TestBank, cash, client, code_of, config_text, purchase};

const ROUNDS: usize = 40;
const PRICE: u64 = 7_000;

/// One instance: its hub, its link and a switch client on it.
struct Instance {
    hub: Arc<Hub>,
    link: RunningLink,
    client: SimClient,
}

async fn instance(config: &Config, bank: Option<Arc<TestBank>>) -> Instance {
    // Without a bank, bank-a and bank-b have no account system: stand-in decides.
    let systems: HashMap<String, Arc<dyn AccountSystem>> = bank
        .into_iter()
        .map(|b| ("bank-a".to_string(), b as Arc<dyn AccountSystem>))
        .collect();
    let hub = Arc::new(app::open(config, systems).unwrap());
    let link = link::start(&config.switches, &config.link, hub.clone())
        .await
        .unwrap();
    let client = client(&link.local_addr("base24").unwrap().to_string()).await;
    Instance { hub, link, client }
}

/// A Luhn-valid test PAN ending in `serial` and its check digit.
fn pan(serial: usize) -> String {
    let body = format!("476173900202{serial:03}");
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = d.to_digit(10).unwrap();
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The config, the demo cards and one card per round (account `R-<n>`),
/// and the two instances. The second instance's transaction ids start
/// after a placeholder row an hour ahead: two instances need ids of their
/// own (instance bits are another change), and here two hubs in one
/// millisecond would otherwise hand out the same id.
async fn two_instances(
    bank: Option<Arc<TestBank>>,
) -> (tempfile::TempDir, Config, Instance, Instance) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cardhub.toml");
    std::fs::write(&path, config_text("")).unwrap();
    let config = Config::load(&path).unwrap();
    let mut csv = String::from("pan,expiry,status,account,institution,currency,profile,product\n");
    for n in 0..ROUNDS {
        csv.push_str(&format!(
            "{},2812,active,R-{n},bank-a,USD,standard,debit\n",
            pan(n)
        ));
    }
    let cards = dir.path().join("rounds.csv");
    std::fs::write(&cards, csv).unwrap();
    {
        let hub = app::open(&config, HashMap::new()).unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv");
        for f in [demo, cards] {
            let rows = file::read(&f, &config.catalog()).unwrap();
            hub.cards().import(rows).await.unwrap();
        }
    }
    let first = instance(&config, bank.clone()).await;
    let ahead = TxnId::at(Timestamp::now() + std::time::Duration::from_secs(3600));
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    db.execute(
        "INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, is_repeat, \
         kind, channel, amount_minor, currency, response_code, decided_by, latency_us) \
         VALUES (?1, 'request', 0, '2000-01-01', 'placeholder', '0800', 0, 'unknown', 'other', 0, 0, \
         '00', 'hub_rule', 0)",
        [ahead.0],
    )
    .unwrap();
    let second = instance(&config, bank).await;
    (dir, config, first, second)
}

/// Sets an account's balance (as an online answer would) in the store.
async fn set_balance(hub: &Hub, account: &str, available: i64) {
    let account = account.to_string();
    let base = Base {
        available,
        as_of_us: Timestamp::now().as_microsecond() - 1_000_000,
    };
    hub.store()
        .write(move |c| upsert_online_balance(c, "bank-a", &account, base))
        .await
        .unwrap();
}

/// Sends the requests at once, alternately to each instance; their codes.
async fn ask_both(
    a: &Instance,
    b: &Instance,
    requests: impl Iterator<Item = cardhub_core::iso8583::Message>,
) -> Vec<String> {
    let requests: Vec<_> = requests.collect();
    let asks = requests.iter().enumerate().map(|(i, m)| {
        let client = if i % 2 == 0 { &a.client } else { &b.client };
        code_of(client, m)
    });
    futures::future::join_all(asks).await
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_spend_the_same_last_money_twice() {
    let (dir, _config, a, b) = two_instances(None).await;
    let mut stan = 100;
    for n in 0..ROUNDS {
        // The balance covers exactly one of the round's two purchases.
        set_balance(&a.hub, &format!("R-{n}"), PRICE as i64 + 500).await;
        let card = pan(n);
        let (ma, mb) = (
            purchase(&card, PRICE, stan),
            purchase(&card, PRICE, stan + 1),
        );
        stan += 2;
        let (ca, cb) = tokio::join!(code_of(&a.client, &ma), code_of(&b.client, &mb));
        let mut codes = [ca, cb];
        codes.sort();
        assert_eq!(codes, ["00", "51"], "round {n}: one approval, one 51");
    }
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    // Journal and movements agree: one approved hold per account, no more.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM journal WHERE account LIKE 'R-%' AND response_code = '00'"
        ),
        ROUNDS as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM movements m JOIN journal j ON j.txn_id = m.txn_id \
             WHERE m.account LIKE 'R-%' AND j.response_code = '00' AND m.state = 'open'"
        ),
        ROUNDS as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM movements WHERE account LIKE 'R-%'"
        ),
        ROUNDS as i64,
        "a refused approval writes no movement"
    );
    // What the second approval would have spent: the store refused it.
    let refused = count(
        &db,
        "SELECT COUNT(*) FROM journal WHERE account LIKE 'R-%' AND response_code = '51' \
         AND reason LIKE '%spent by another instance%'",
    );
    assert!(
        refused > 0,
        "the books approved in memory; the store refused"
    );
    // Never negative, in either instance's book or read from the store.
    let now = Timestamp::now().as_microsecond();
    for n in 0..ROUNDS {
        for hub in [&a.hub, &b.hub] {
            hub.book().evict("bank-a", &format!("R-{n}"));
            let shadow = hub
                .book()
                .shadow("bank-a", &format!("R-{n}"), now)
                .unwrap()
                .unwrap();
            assert_eq!(shadow.available, 500, "R-{n}");
        }
    }
    a.link.shutdown().await;
    b.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daily_limits_hold_across_two_instances() {
    let (dir, _config, a, b) = two_instances(None).await;
    set_balance(&a.hub, "A-1001", 10_000_000).await;
    set_balance(&a.hub, "A-1002", 10_000_000).await;
    // ATM: 3 withdrawals a day, 600.00 at most (config_text).
    let counted = "4761739001010010";
    let codes = ask_both(&a, &b, (0..6).map(|i| cash(counted, 10_000, 300 + i))).await;
    assert_eq!(codes.iter().filter(|c| *c == "00").count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "65").count(), 3, "{codes:?}");
    let amounted = "4761739001010028";
    let codes = ask_both(&a, &b, (0..4).map(|i| cash(amounted, 25_000, 400 + i))).await;
    assert_eq!(codes.iter().filter(|c| *c == "00").count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "61").count(), 2, "{codes:?}");
    // The shared totals are the journal's sums.
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    let (amount, txns): (i64, i64) = db
        .query_row(
            "SELECT SUM(amount_minor), SUM(txn_count) FROM daily_totals WHERE channel = 'atm'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (journal_amount, journal_txns): (i64, i64) = db
        .query_row(
            "SELECT SUM(counted_minor), SUM(counted_count) FROM journal WHERE channel = 'atm'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((amount, txns), (80_000, 5));
    assert_eq!((journal_amount, journal_txns), (80_000, 5));
    a.link.shutdown().await;
    b.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_requests_reserve_in_the_shared_totals_before_the_call() {
    let bank = Arc::new(TestBank::default());
    let (dir, _config, a, b) = two_instances(Some(bank.clone())).await;
    // ATM: 3 withdrawals a day; each instance alone would allow 3.
    let card = "4761739001010010";
    let codes = ask_both(&a, &b, (0..6).map(|i| cash(card, 10_000, 500 + i))).await;
    assert_eq!(codes.iter().filter(|c| *c == "00").count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "65").count(), 3, "{codes:?}");
    // A request the shared totals refuse never reaches the account system.
    assert_eq!(bank.calls("authorize").len(), 3);
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_intents"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT txn_count FROM daily_totals WHERE channel = 'atm'"
        ),
        3,
        "the reservations became the approvals' counts"
    );
    // A declined call gives its reservation back.
    bank.set_balance("A-1002", 0);
    let other = "4761739001010028";
    assert_eq!(code_of(&a.client, &cash(other, 10_000, 600)).await, "51");
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM daily_totals WHERE channel = 'atm' AND txn_count = 0 AND amount_minor = 0"
        ),
        1
    );
    a.link.shutdown().await;
    b.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_hubs_reservation_is_given_back_at_the_next_start() {
    let bank = Arc::new(TestBank::default());
    let (dir, config, a, b) = two_instances(Some(bank.clone())).await;
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    let reserved = |db: &rusqlite::Connection| {
        count(
            db,
            "SELECT COALESCE(SUM(txn_count), 0) FROM daily_totals WHERE channel = 'atm'",
        )
    };
    // A call under way: its intent carries the reservation.
    bank.hold();
    let client = a.client;
    let under_way = tokio::spawn(async move {
        let answer = code_of(&client, &cash("4761739001010010", 10_000, 700)).await;
        (client, answer)
    });
    support::wait_until("the call is under way", || {
        bank.calls("authorize").len() == 1
    })
    .await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_intents"), 1);
    assert_eq!(reserved(&db), 1);
    // A hub starting on the store now journals the intent as an unknown
    // outcome (96, a Reverse queued) that counts nothing, and gives the
    // reservation back.
    let restarted = app::open(&config, HashMap::new()).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_intents"), 0);
    assert_eq!(reserved(&db), 0);
    assert_eq!(
        count(
            &db,
            "SELECT counted_count FROM journal WHERE channel = 'atm' AND response_code = '96'"
        ),
        0
    );
    bank.release();
    let (_client, _answer) = under_way.await.unwrap();
    drop(restarted);
    a.link.shutdown().await;
    b.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_holding_the_serve_lock_skips_the_checks_but_keeps_the_totals() {
    let (dir, config, a, b) = two_instances(None).await;
    b.link.shutdown().await;
    drop((b.hub, b.client));
    let lock = ServeLock::acquire(&config.store_path).unwrap();
    a.hub.serve_alone(&lock);
    set_balance(&a.hub, "A-1001", 100_000).await;
    assert_eq!(
        code_of(&a.client, &cash("4761739001010010", 10_000, 800)).await,
        "00"
    );
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM shadow_account_locks"),
        0,
        "alone: no re-check of the shadow balance"
    );
    assert_eq!(
        count(
            &db,
            "SELECT txn_count FROM daily_totals WHERE channel = 'atm'"
        ),
        1,
        "the journal row still counts in the shared totals"
    );
    a.link.shutdown().await;
}

/// A call intent committed although its hub never saw the `COMMIT`
/// answered (PostgreSQL did not answer in time: the request was answered
/// 96 without a call, and that 96 journaled) is found next to its journal
/// row at the next start: the start goes on, the row stays the answer, the
/// reservation goes back, and no Reverse is queued for a call never made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intent_journaled_already_is_only_cleared_at_the_next_start() {
    let bank = Arc::new(TestBank::default());
    let (dir, config, a, b) = two_instances(Some(bank.clone())).await;
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    // An intent (the held call's) and its request's 96 row, as the hub
    // journals a request whose intent it believes not recorded.
    bank.hold();
    let client = a.client;
    let under_way = tokio::spawn(async move {
        let answer = code_of(&client, &cash("4761739001010010", 10_000, 900)).await;
        (client, answer)
    });
    support::wait_until("the intent is recorded", || {
        bank.calls("authorize").len() == 1
    })
    .await;
    db.execute_batch(
        "INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, is_repeat, \
         kind, channel, amount_minor, currency, stan, response_code, decided_by, latency_us) \
         SELECT txn_id, entry, received_at_us, business_day, switch, mti, is_repeat, kind, channel, \
         amount_minor, currency, stan, response_code, decided_by, latency_us FROM call_intents",
    )
    .unwrap();
    let queued = count(&db, "SELECT COUNT(*) FROM saf_queue");
    let restarted = app::open(&config, HashMap::new()).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM call_intents"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COALESCE(SUM(txn_count), 0) FROM daily_totals WHERE channel = 'atm'"
        ),
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM journal WHERE stan = '000900'"),
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM saf_queue"), queued);
    bank.release();
    let (_client, _answer) = under_way.await.unwrap();
    drop(restarted);
    a.link.shutdown().await;
    b.link.shutdown().await;
}
