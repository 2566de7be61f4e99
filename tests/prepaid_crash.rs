//! The prepaid ledger across `kill -9` of the real `cardhub serve` binary.
//! Several switch connections drive a seeded random sequence of loads,
//! purchases (0100 holds, 0200 posted at once), completions (0220) and full or partial
//! reversals (0400 / 0420) at prepaid cards; the hub is killed with SIGKILL
//! at a random point, the store checked, the hub restarted and the sequence
//! continued, for a few rounds. After every kill:
//!
//! - the ledger's audit finds nothing (entries balance, balance columns
//!   equal the sums of postings, the per-orderer invariant, no card negative
//!   or over its maximum, no holds past a balance, each card's kept hold
//!   totals equal the sums of its holds);
//! - every answer the switch saw approved is journaled, and its ledger
//!   entry or hold is in the store — for an authorization always (durable
//!   before answered); for an advice or reversal, which the hub acknowledges
//!   and tells the ledger itself, in the ledger or queued for it;
//! - each card's balance, recomputed from its postings, is exactly the sum
//!   of the approved operations the ledger booked, plus some of the
//!   operations whose answer the kill cut off (none, one, …): nothing else;
//! - each card whose load was booked is active.
//!
//! Each connection owns its cards, so a card has at most one request under
//! way. `PREPAID_CRASH_SEED=<n>` repeats a sequence (the kill points still
//! depend on timing).

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cardhub_core::iso8583::Message;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::prepaid::Ledger;
use cardhub_core::store::Store;
use cardhub_lab::sim::SimClient;
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use support::prepaid::{load, open_ledger, original};
use support::{WAIT, client, prepare, request, wait_until};

const CONNECTIONS: usize = 4;
const CARDS_PER_CONNECTION: usize = 3;
const ROUNDS: usize = 4;
/// The programme's maximum balance per card (minor units).
const MAX_BALANCE: u64 = 1_000_000;

const EXTRA: &str = r#"
[limits.crash]
atm = { per_transaction = 0, daily_amount = 0, daily_count = 0 }
pos = { per_transaction = 500000, daily_amount = 100000000000, daily_count = 1000000 }

[[institution]]
id = "city"
name = "City prepaid"
mode = "prepaid"
"#;

/// How the hub settles an approved request with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settles {
    /// An authorization (load, purchase): booked before the answer.
    Booked,
    /// An advice or reversal: acknowledged, the ledger told or the
    /// operation queued for it.
    Told,
}

/// A request the switch saw approved, with what it does to its card's
/// balance once the ledger books it.
#[derive(Debug, Clone)]
struct Approved {
    stan: u32,
    mti: &'static str,
    card: usize,
    effect: i64,
    path: Settles,
}

/// What an approved hold allows next.
#[derive(Debug, Clone)]
struct Hold {
    stan: u32,
    mti: &'static str,
    amount: u64,
    /// Still held (open); 0 once captured or released.
    open: u64,
    /// Captured and not credited back yet.
    refundable: u64,
}

#[derive(Debug, Clone)]
struct Load {
    stan: u32,
    amount: u64,
    /// Not reversed yet.
    remaining: u64,
}

/// One card of a connection, as the switch knows it.
#[derive(Debug, Default)]
struct CardModel {
    /// Sum of the effects of approved operations (booked or still queued).
    balance: i64,
    holds: Vec<Hold>,
    loads: Vec<Load>,
    /// Effects of requests whose answer a kill cut off: the ledger may
    /// have booked any of them.
    uncertain: Vec<i64>,
    /// Holds a cut-off request may have taken.
    uncertain_held: i64,
}

impl CardModel {
    /// Available balance at worst: every cut-off debit booked, every
    /// cut-off credit not, every cut-off hold taken.
    fn available_at_worst(&self) -> i64 {
        let held: u64 = self.holds.iter().map(|h| h.open).sum();
        self.balance + self.uncertain.iter().filter(|e| **e < 0).sum::<i64>()
            - held as i64
            - self.uncertain_held
    }
}

/// The next request for a card and how its approval changes the model.
enum Step {
    Load(u64),
    OverMax,
    Purchase(&'static str, u64),
    Capture {
        hold: usize,
        amount: u64,
    },
    Release {
        hold: usize,
        undo: u64,
        advice: bool,
    },
    CreditBack {
        hold: usize,
        undo: u64,
        advice: bool,
    },
    UndoLoad {
        load: usize,
        undo: u64,
        advice: bool,
    },
}

/// One switch connection's cards and what it saw, kept across rounds.
struct Connection {
    index: usize,
    rng: TestRng,
    /// Card numbers and card accounts, by card index.
    cards: Vec<(String, String)>,
    models: Vec<CardModel>,
    approved: Vec<Approved>,
    next_stan: u32,
}

fn below(rng: &mut TestRng, n: u64) -> u64 {
    rng.next_u64() % n
}

fn between(rng: &mut TestRng, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi - lo + 1)
}

/// DE 95 with `actual` as the actual transaction and settlement amounts.
fn replacement(actual: u64) -> String {
    format!("{actual:012}{actual:012}C00000000C00000000")
}

impl Connection {
    fn step(&mut self, card: usize) -> Step {
        let rng = &mut self.rng;
        let m = &self.models[card];
        if m.loads.is_empty() {
            return Step::Load(between(rng, 5_000, 20_000));
        }
        let open: Vec<usize> = (0..m.holds.len())
            .filter(|&h| m.holds[h].open > 0)
            .collect();
        let refundable: Vec<usize> = (0..m.holds.len())
            .filter(|&h| m.holds[h].refundable > 0)
            .collect();
        let reversible: Vec<usize> = (0..m.loads.len())
            .filter(|&l| m.loads[l].remaining > 0)
            .collect();
        let advice = below(rng, 2) == 0;
        match below(rng, 100) {
            0..=19 => Step::Load(between(rng, 1_000, 20_000)),
            20..=22 => Step::OverMax,
            23..=46 => Step::Purchase("0100", between(rng, 100, 5_000)),
            47..=51 => Step::Purchase("0200", between(rng, 100, 5_000)),
            52..=69 if !open.is_empty() => {
                let hold = open[below(rng, open.len() as u64) as usize];
                let h = &m.holds[hold];
                if h.mti == "0100" {
                    let amount = between(rng, 1, h.open);
                    Step::Capture { hold, amount }
                } else {
                    let undo = between(rng, 1, h.open);
                    Step::Release { hold, undo, advice }
                }
            }
            70..=81 if !open.is_empty() => {
                let hold = open[below(rng, open.len() as u64) as usize];
                let undo = between(rng, 1, m.holds[hold].open);
                Step::Release { hold, undo, advice }
            }
            82..=91 if !refundable.is_empty() => {
                let hold = refundable[below(rng, refundable.len() as u64) as usize];
                let undo = between(rng, 1, m.holds[hold].refundable);
                Step::CreditBack { hold, undo, advice }
            }
            92..=99 if !reversible.is_empty() => {
                let load = reversible[below(rng, reversible.len() as u64) as usize];
                let undo = between(rng, 1, m.loads[load].remaining);
                if m.available_at_worst() >= undo as i64 {
                    Step::UndoLoad { load, undo, advice }
                } else {
                    Step::Purchase("0100", between(rng, 100, 5_000))
                }
            }
            _ => Step::Purchase("0100", between(rng, 100, 5_000)),
        }
    }

    /// The request of `step`, its MTI, what an approval does to the
    /// balance and how the ledger learns of it.
    fn message(&self, card: usize, step: &Step, stan: u32) -> (Message, i64, Settles) {
        let pan = self.cards[card].0.as_str();
        let m = &self.models[card];
        let reversal =
            |advice: bool, processing: &str, mti: &str, stan0: u32, amount: u64, undo| {
                let mut r = request(
                    if advice { "0420" } else { "0400" },
                    processing,
                    pan,
                    amount,
                    stan,
                );
                r.set(90, original(mti, stan0));
                r.set(95, replacement(amount - undo));
                r
            };
        match *step {
            Step::Load(x) => (load(pan, x, stan), x as i64, Settles::Booked),
            Step::OverMax => (load(pan, MAX_BALANCE + 1, stan), 0, Settles::Booked),
            // A financial purchase (0200) is posted at once; an
            // authorization (0100) only holds.
            Step::Purchase(mti, x) => {
                let effect = if mti == "0200" { -(x as i64) } else { 0 };
                (
                    request(mti, "000000", pan, x, stan),
                    effect,
                    Settles::Booked,
                )
            }
            Step::Capture { hold, amount } => {
                let h = &m.holds[hold];
                let mut r = request("0220", "000000", pan, amount, stan);
                r.set(39, "00");
                r.set(90, original(h.mti, h.stan));
                (r, -(amount as i64), Settles::Told)
            }
            Step::Release { hold, undo, advice } => {
                let h = &m.holds[hold];
                let r = reversal(advice, "000000", h.mti, h.stan, h.amount, undo);
                (r, 0, Settles::Told)
            }
            Step::CreditBack { hold, undo, advice } => {
                let h = &m.holds[hold];
                let r = reversal(advice, "000000", h.mti, h.stan, h.amount, undo);
                (r, undo as i64, Settles::Told)
            }
            Step::UndoLoad { load, undo, advice } => {
                let l = &m.loads[load];
                let r = reversal(advice, "210000", "0200", l.stan, l.amount, undo);
                (r, -(undo as i64), Settles::Told)
            }
        }
    }

    /// The model after `step` was approved.
    fn approved(&mut self, card: usize, step: &Step, stan: u32, effect: i64) {
        let m = &mut self.models[card];
        m.balance += effect;
        match *step {
            Step::Load(x) => m.loads.push(Load {
                stan,
                amount: x,
                remaining: x,
            }),
            Step::OverMax => {}
            Step::Purchase(mti, x) => {
                let posted = mti == "0200";
                m.holds.push(Hold {
                    stan,
                    mti,
                    amount: x,
                    open: if posted { 0 } else { x },
                    refundable: if posted { x } else { 0 },
                });
            }
            Step::Capture { hold, amount } => {
                let h = &mut m.holds[hold];
                h.open = 0;
                h.refundable = amount;
            }
            Step::Release { hold, undo, .. } => m.holds[hold].open -= undo,
            Step::CreditBack { hold, undo, .. } => m.holds[hold].refundable -= undo,
            Step::UndoLoad { load, undo, .. } => m.loads[load].remaining -= undo,
        }
    }

    /// The model after `step`'s answer was cut off: the ledger may have
    /// booked it, and what it started from is no longer used.
    fn cut_off(&mut self, card: usize, step: &Step, effect: i64) {
        let m = &mut self.models[card];
        if effect != 0 {
            m.uncertain.push(effect);
        }
        match *step {
            Step::Load(_) | Step::OverMax => {}
            Step::Purchase("0200", _) => {}
            Step::Purchase(_, x) => m.uncertain_held += x as i64,
            Step::Capture { hold, .. }
            | Step::Release { hold, .. }
            | Step::CreditBack { hold, .. } => {
                // Still held at worst, but never captured or reversed again.
                let h = &mut m.holds[hold];
                m.uncertain_held += h.open as i64;
                h.open = 0;
                h.refundable = 0;
            }
            Step::UndoLoad { load, .. } => m.loads[load].remaining = 0,
        }
    }

    /// Sends requests until the connection breaks (the hub was killed),
    /// counting approvals in `approvals`.
    async fn run(mut self, c: SimClient, approvals: Arc<AtomicUsize>) -> Connection {
        loop {
            let card = below(&mut self.rng, self.cards.len() as u64) as usize;
            let step = self.step(card);
            let stan = self.next_stan;
            self.next_stan += 1;
            let (message, effect, path) = self.message(card, &step, stan);
            match c.request(&message, WAIT).await {
                Ok((answer, _)) => {
                    let code = answer.response_code().unwrap().to_string();
                    if code == "00" {
                        let mti = match message.mti().to_string().as_str() {
                            "0100" => "0100",
                            "0200" => "0200",
                            "0220" => "0220",
                            "0400" => "0400",
                            _ => "0420",
                        };
                        self.approved(card, &step, stan, effect);
                        self.approved.push(Approved {
                            stan,
                            mti,
                            card,
                            effect,
                            path,
                        });
                        approvals.fetch_add(1, Ordering::SeqCst);
                    } else {
                        // Only a purchase may be declined (51); an advice or
                        // reversal is acknowledged whatever the ledger says.
                        let expected = match step {
                            Step::OverMax => "61",
                            Step::Purchase(..) => "51",
                            _ => "00",
                        };
                        assert_eq!(code, expected, "connection {}: stan {stan}", self.index);
                    }
                }
                Err(_) => {
                    self.cut_off(card, &step, effect);
                    return self;
                }
            }
        }
    }
}

/// The `i`-th card number of the test: test range, valid Luhn digit.
fn pan(i: usize) -> String {
    let body = format!("476173900300{i:03}");
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|p| Pan::new(p).is_ok_and(|p| p.luhn_ok()))
        .unwrap()
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
    let txn_of = |a: &Approved| -> String {
        let txn: i64 = db
            .query_row(
                "SELECT txn_id FROM journal WHERE stan = ?1 AND mti = ?2 AND entry = 'request' \
                 AND response_code = '00'",
                rusqlite::params![format!("{:06}", a.stan), a.mti],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("approved {} stan {} not journaled: {e}", a.mti, a.stan));
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
    for conn in connections {
        let mut confirmed = vec![0i64; conn.cards.len()];
        let mut loaded = vec![false; conn.cards.len()];
        for a in &conn.approved {
            let txn = txn_of(a);
            if booked(&txn) {
                confirmed[a.card] += a.effect;
                loaded[a.card] |= a.effect > 0 && a.path == Settles::Booked;
            } else {
                assert!(
                    a.path == Settles::Told && queued(&txn),
                    "approved {} stan {} (txn {txn}) neither booked nor queued",
                    a.mti,
                    a.stan
                );
            }
        }
        for (card, (pan, account)) in conn.cards.iter().enumerate() {
            let (id, column): (i64, i64) = db
                .query_row(
                    "SELECT id, balance FROM prepaid_accounts WHERE kind = 'card' AND name = ?1",
                    [account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let postings: i64 = db
                .query_row(
                    "SELECT COALESCE(SUM(amount), 0) FROM prepaid_postings WHERE account = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                column, postings,
                "{account}: balance column against postings"
            );
            let uncertain = &conn.models[card].uncertain;
            assert!(
                subset_sums(uncertain).contains(&(postings - confirmed[card])),
                "{account}: recovered balance {postings}, approved and booked {}, \
                 cut-off effects {uncertain:?}",
                confirmed[card]
            );
            if loaded[card] {
                let status: String = db
                    .query_row(
                        "SELECT status FROM cards WHERE account = ?1",
                        [account],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(status, "active", "{} loaded", Pan::new(pan).unwrap());
            }
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

    let (dir, config) = prepare(EXTRA).await;
    let cards: Vec<(String, String)> = (0..CONNECTIONS * CARDS_PER_CONNECTION)
        .map(|i| (pan(i), format!("PC-{i:03}")))
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
        .map(|(index, cards)| Connection {
            index,
            rng: rng_for(index as u64 + 1),
            cards: cards.to_vec(),
            models: (0..cards.len()).map(|_| CardModel::default()).collect(),
            approved: Vec::new(),
            next_stan: 1 + 100_000 * index as u32,
        })
        .collect();
    let mut kill_points = rng_for(0);
    let config_path = dir.path().join("cardhub.toml");
    let log = dir.path().join("hub.log");
    for round in 1..=ROUNDS {
        let mut served = support::served::serve(&config_path, &[], &log, &["base24"], false).await;
        let addr = served.switch("base24");
        let approvals = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..CONNECTIONS {
            clients.push(client(&addr).await);
        }
        let running: Vec<_> = connections
            .drain(..)
            .zip(clients)
            .map(|(conn, c)| tokio::spawn(conn.run(c, approvals.clone())))
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
        println!(
            "round {round}: killed after {} approvals; {cut} cut-off effects so far",
            approvals.load(Ordering::SeqCst)
        );
        check(dir.path(), &config, &connections);
    }
    let total: usize = connections.iter().map(|c| c.approved.len()).sum();
    let by_mti = connections.iter().flat_map(|c| &c.approved).fold(
        HashMap::<&str, usize>::new(),
        |mut m, a| {
            *m.entry(a.mti).or_default() += 1;
            m
        },
    );
    println!("{total} approvals over {ROUNDS} kills: {by_mti:?}");
    for mti in ["0100", "0200", "0220", "0400", "0420"] {
        assert!(
            by_mti.get(mti).copied().unwrap_or(0) > 0,
            "no approved {mti}: {by_mti:?}"
        );
    }
}
