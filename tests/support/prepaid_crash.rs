//! The traffic and the model of `tests/prepaid_crash.rs`: one switch
//! connection's prepaid cards as the switch and the bank's operator know
//! them, the next random request — ISO 8583 through the switch, or a move
//! or lost-card replacement through the JSON API — and what its answer, or
//! its absence when the kill cut it off, says about the ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cardhub_core::iso8583::Message;
use cardhub_core::iso8583::fields::Pan;
use cardhub_lab::sim::SimClient;
use proptest::prelude::Rng;
use proptest::test_runner::TestRng;
use reqwest::Method;
use serde_json::{Value, json};

use super::canonical_hub::TOKEN;
use super::prepaid::{load, original};
use super::{WAIT, request, try_api_json};

/// The programme's maximum balance per card (minor units).
pub const MAX_BALANCE: u64 = 1_000_000;

/// How the hub settles an approved switch request with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settles {
    /// An authorization (load, purchase): booked before the answer.
    Booked,
    /// An advice or reversal: acknowledged, the ledger told or the
    /// operation queued for it.
    Told,
}

/// Where an approval came from, and so where the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A switch request, journaled under its STAN and MTI.
    Switch {
        stan: u32,
        mti: &'static str,
        path: Settles,
    },
    /// A move through the API: booked under its reference before the 200.
    Move { reference: String },
}

/// An approved operation, with what it does to its card's balance once
/// the ledger books it (a move: one for each card).
#[derive(Debug, Clone)]
pub struct Approved {
    pub card: usize,
    pub effect: i64,
    pub via: Via,
}

impl Approved {
    /// Its MTI, or `move`.
    pub fn what(&self) -> &'static str {
        match &self.via {
            Via::Switch { mti, .. } => mti,
            Via::Move { .. } => "move",
        }
    }
}

/// An API call whose answer the kill cut off: it may or may not be done.
/// The next round resolves it before anything else.
#[derive(Debug, Clone)]
pub enum Pending {
    /// Sent again with the same reference: a repeat books nothing twice.
    Move {
        reference: String,
        from: usize,
        to: usize,
        amount: u64,
    },
    /// `card`'s card replaced by `pan` with card account `account`: sent
    /// again with the same reference, a repeat replaces nothing twice.
    /// (`Pan`: the round's report prints it masked.)
    Replacement {
        reference: String,
        card: usize,
        pan: Pan,
        account: String,
    },
}

/// What an approved hold allows next.
#[derive(Debug, Clone)]
struct Hold {
    /// The card number it was taken with (a switch keeps it after a
    /// replacement).
    pan: String,
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
    pan: String,
    stan: u32,
    amount: u64,
    /// Not reversed yet.
    remaining: u64,
}

/// One card of a connection, as the switch knows it.
#[derive(Debug, Default)]
pub struct CardModel {
    /// Sum of the effects of approved operations (booked or still queued).
    balance: i64,
    holds: Vec<Hold>,
    loads: Vec<Load>,
    /// Effects of requests whose answer a kill cut off: the ledger may
    /// have booked any of them.
    pub uncertain: Vec<i64>,
    /// Holds a cut-off request may have taken.
    uncertain_held: i64,
}

impl CardModel {
    fn held(&self) -> i64 {
        self.holds.iter().map(|h| h.open as i64).sum()
    }

    /// Available balance at worst: every cut-off debit booked, every
    /// cut-off credit not, every cut-off hold taken.
    fn available_at_worst(&self) -> i64 {
        self.balance + self.uncertain.iter().filter(|e| **e < 0).sum::<i64>()
            - self.held()
            - self.uncertain_held
    }

    /// Balance at worst for a credit: every cut-off credit booked.
    fn balance_at_most(&self) -> i64 {
        self.balance + self.uncertain.iter().filter(|e| **e > 0).sum::<i64>()
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
    /// Through the API, to another card of the connection.
    Move {
        to: usize,
        amount: u64,
    },
    /// Through the API: the card reported lost, a new one takes over.
    Replace,
}

/// One switch connection's cards and what it saw, kept across rounds.
pub struct Connection {
    pub index: usize,
    rng: TestRng,
    /// Each card's numbers and card accounts, oldest first: a lost card
    /// replaced is followed by its replacement.
    pub cards: Vec<Vec<(String, String)>>,
    pub models: Vec<CardModel>,
    pub approved: Vec<Approved>,
    next_stan: u32,
    /// API calls made: each has its own reference (and new card number).
    api_calls: usize,
    pub pending: Option<Pending>,
    /// Moves refused for funds or the maximum.
    pub refused_moves: usize,
    /// Approved captures and reversals sent with a replaced card's number.
    pub under_old_numbers: usize,
}

/// The `i`-th card number of the test: test range, valid Luhn digit.
pub fn pan(i: usize) -> String {
    let body = format!("4761739003{i:05}");
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|p| Pan::new(p).is_ok_and(|p| p.luhn_ok()))
        .unwrap()
}

/// The card account of the `i`-th card number.
pub fn account(i: usize) -> String {
    format!("PC-{i:05}")
}

fn below(rng: &mut TestRng, n: u64) -> u64 {
    rng.next_u64() % n
}

pub fn between(rng: &mut TestRng, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi - lo + 1)
}

/// DE 95 with `actual` as the actual transaction and settlement amounts.
fn replacement(actual: u64) -> String {
    format!("{actual:012}{actual:012}C00000000C00000000")
}

/// The transport failed: the hub is gone.
struct Cut;

impl Connection {
    /// Connection `index` with `cards` (number and card account each).
    pub fn new(index: usize, rng: TestRng, cards: &[(String, String)]) -> Connection {
        Connection {
            index,
            rng,
            cards: cards.iter().map(|c| vec![c.clone()]).collect(),
            models: cards.iter().map(|_| CardModel::default()).collect(),
            approved: Vec::new(),
            next_stan: 1 + 100_000 * index as u32,
            api_calls: 0,
            pending: None,
            refused_moves: 0,
            under_old_numbers: 0,
        }
    }

    /// The card's number now.
    fn pan(&self, card: usize) -> String {
        self.cards[card].last().unwrap().0.clone()
    }

    fn step(&mut self, card: usize) -> Step {
        let cards = self.cards.len() as u64;
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
        match below(rng, 110) {
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
            100..=107 => {
                let to = ((card as u64 + 1 + below(rng, cards - 1)) % cards) as usize;
                // Mostly what the card surely has; now and then more.
                let surely = m.available_at_worst().max(0) as u64;
                let amount = if surely == 0 || below(rng, 8) == 0 {
                    surely + between(rng, 1, 5_000)
                } else {
                    between(rng, 1, surely.min(5_000))
                };
                Step::Move { to, amount }
            }
            108..=109 => Step::Replace,
            _ => Step::Purchase("0100", between(rng, 100, 5_000)),
        }
    }

    /// The switch request of `step`, its MTI, what an approval does to the
    /// balance and how the ledger learns of it. A capture or reversal goes
    /// with the card number its original was sent with.
    fn message(&self, card: usize, step: &Step, stan: u32) -> (Message, i64, Settles) {
        let pan = self.pan(card);
        let m = &self.models[card];
        let reversal =
            |advice: bool, processing: &str, pan: &str, original_of: (&str, u32), amount, undo| {
                let mti = if advice { "0420" } else { "0400" };
                let mut r = request(mti, processing, pan, amount, stan);
                r.set(90, original(original_of.0, original_of.1));
                r.set(95, replacement(amount - undo));
                r
            };
        match *step {
            Step::Load(x) => (load(&pan, x, stan), x as i64, Settles::Booked),
            Step::OverMax => (load(&pan, MAX_BALANCE + 1, stan), 0, Settles::Booked),
            // A financial purchase (0200) is posted at once; an
            // authorization (0100) only holds.
            Step::Purchase(mti, x) => {
                let effect = if mti == "0200" { -(x as i64) } else { 0 };
                let r = request(mti, "000000", &pan, x, stan);
                (r, effect, Settles::Booked)
            }
            Step::Capture { hold, amount } => {
                let h = &m.holds[hold];
                let mut r = request("0220", "000000", &h.pan, amount, stan);
                r.set(39, "00");
                r.set(90, original(h.mti, h.stan));
                (r, -(amount as i64), Settles::Told)
            }
            Step::Release { hold, undo, advice } | Step::CreditBack { hold, undo, advice } => {
                let h = &m.holds[hold];
                let r = reversal(advice, "000000", &h.pan, (h.mti, h.stan), h.amount, undo);
                let effect = match step {
                    Step::CreditBack { .. } => undo as i64,
                    _ => 0,
                };
                (r, effect, Settles::Told)
            }
            Step::UndoLoad { load, undo, advice } => {
                let l = &m.loads[load];
                let r = reversal(advice, "210000", &l.pan, ("0200", l.stan), l.amount, undo);
                (r, -(undo as i64), Settles::Told)
            }
            Step::Move { .. } | Step::Replace => unreachable!("API steps are no messages"),
        }
    }

    /// The model after switch request `step` was approved.
    fn approved(&mut self, card: usize, step: &Step, stan: u32, effect: i64) {
        let pan = self.pan(card);
        let m = &mut self.models[card];
        m.balance += effect;
        match *step {
            Step::Load(x) => m.loads.push(Load {
                pan,
                stan,
                amount: x,
                remaining: x,
            }),
            Step::Purchase(mti, x) => {
                let posted = mti == "0200";
                m.holds.push(Hold {
                    pan,
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
            Step::OverMax | Step::Move { .. } | Step::Replace => {}
        }
    }

    /// The model after switch request `step`'s answer was cut off: the
    /// ledger may have booked it, and what it started from is no longer
    /// used.
    fn cut_off(&mut self, card: usize, step: &Step, effect: i64) {
        let m = &mut self.models[card];
        if effect != 0 {
            m.uncertain.push(effect);
        }
        match *step {
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
            Step::Load(_) | Step::OverMax | Step::Move { .. } | Step::Replace => {}
        }
    }

    /// Resolves the API call the last kill cut off, then sends requests
    /// until the hub is killed again, counting approvals in `approvals`.
    pub async fn run(mut self, c: SimClient, api: String, approvals: Arc<AtomicUsize>) -> Self {
        let http = super::http();
        if let Some(pending) = self.pending.take()
            && self.resolve(&http, &api, pending).await.is_err()
        {
            return self;
        }
        loop {
            let card = below(&mut self.rng, self.cards.len() as u64) as usize;
            let step = self.step(card);
            let answered = match step {
                Step::Move { to, amount } => {
                    let reference = format!("M{}-{}", self.index, self.api_calls);
                    self.api_calls += 1;
                    let pending = Pending::Move {
                        reference,
                        from: card,
                        to,
                        amount,
                    };
                    self.resolve(&http, &api, pending).await
                }
                Step::Replace => {
                    let i = 1_000 * (self.index + 1) + self.api_calls;
                    self.api_calls += 1;
                    let pending = Pending::Replacement {
                        reference: format!("R{}-{i}", self.index),
                        card,
                        pan: Pan::new(&pan(i)).unwrap(),
                        account: account(i),
                    };
                    self.resolve(&http, &api, pending).await
                }
                _ => self.send(&c, card, step).await,
            };
            match answered {
                Ok(true) => {
                    approvals.fetch_add(1, Ordering::SeqCst);
                }
                Ok(false) => {}
                Err(Cut) => return self,
            }
        }
    }

    /// Sends the switch request of `step`: whether it was approved.
    async fn send(&mut self, c: &SimClient, card: usize, step: Step) -> Result<bool, Cut> {
        let stan = self.next_stan;
        self.next_stan += 1;
        let (message, effect, path) = self.message(card, &step, stan);
        let Ok((answer, _)) = c.request(&message, WAIT).await else {
            self.cut_off(card, &step, effect);
            return Err(Cut);
        };
        let code = answer.response_code().unwrap().to_string();
        if code != "00" {
            // Only a purchase may be declined (51); an advice or reversal
            // is acknowledged whatever the ledger says.
            let expected = match step {
                Step::OverMax => "61",
                Step::Purchase(..) => "51",
                _ => "00",
            };
            assert_eq!(code, expected, "connection {}: stan {stan}", self.index);
            return Ok(false);
        }
        let mti = match message.mti().to_string().as_str() {
            "0100" => "0100",
            "0200" => "0200",
            "0220" => "0220",
            "0400" => "0400",
            _ => "0420",
        };
        if message.pan().is_ok_and(|p| p.expose() != self.pan(card)) {
            self.under_old_numbers += 1;
        }
        self.approved(card, &step, stan, effect);
        let via = Via::Switch { stan, mti, path };
        self.approved.push(Approved { card, effect, via });
        Ok(true)
    }

    /// Sends a move or a replacement (again, when the kill cut its answer
    /// off): whether it was booked.
    async fn resolve(
        &mut self,
        http: &reqwest::Client,
        api: &str,
        pending: Pending,
    ) -> Result<bool, Cut> {
        let (path, body) = match &pending {
            Pending::Move {
                reference,
                from,
                to,
                amount,
            } => {
                let body = json!({
                    "reference": reference, "amount_minor": amount, "currency": "USD",
                    "from": self.cards[*from].last().unwrap().1,
                    "to": self.cards[*to].last().unwrap().1,
                });
                ("moves", body)
            }
            Pending::Replacement {
                reference,
                card,
                pan,
                account,
            } => {
                let body = json!({
                    "reference": reference, "lost_pan": self.pan(*card), "new_pan": pan.expose(),
                    "new_expiry": "3012", "new_account": account,
                });
                ("replacements", body)
            }
        };
        let url = format!("{api}/api/prepaid/{path}");
        let Ok((status, answer)) = try_api_json(http, Method::POST, url, TOKEN, Some(&body)).await
        else {
            self.pending = Some(pending);
            return Err(Cut);
        };
        match pending {
            Pending::Replacement {
                card, pan, account, ..
            } => {
                // Done now, or before the kill: the same card either way.
                let masked = pan.masked();
                assert_eq!(
                    (status, &answer["card"], &answer["account"]),
                    (200, &json!(masked), &json!(account)),
                    "connection {}: {answer}",
                    self.index
                );
                self.cards[card].push((pan.expose().to_string(), account));
                Ok(true)
            }
            Pending::Move {
                reference,
                from,
                to,
                amount,
            } => Ok(self.moved(status, &answer, reference, (from, to), amount)),
        }
    }

    /// The model after a move's answer: booked (200), or refused for what
    /// the model allows — funds the card may lack (its available balance
    /// at worst is less), a maximum the other card may reach (its balance
    /// at most plus the move is more).
    fn moved(
        &mut self,
        status: u16,
        answer: &Value,
        reference: String,
        (from, to): (usize, usize),
        amount: u64,
    ) -> bool {
        let x = amount as i64;
        if status == 200 {
            self.models[from].balance -= x;
            self.models[to].balance += x;
            for (card, effect) in [(from, -x), (to, x)] {
                let via = Via::Move {
                    reference: reference.clone(),
                };
                self.approved.push(Approved { card, effect, via });
            }
            return true;
        }
        let reason = answer["error"].as_str().unwrap_or_default();
        let (a, b) = (&self.models[from], &self.models[to]);
        let short = reason.contains("is less than") && a.available_at_worst() < x;
        let full =
            reason.contains("exceeds the maximum") && b.balance_at_most() + x > MAX_BALANCE as i64;
        assert!(
            status == 422 && (short || full),
            "connection {}: move {reference} of {amount}: {status} {answer}",
            self.index
        );
        self.refused_moves += 1;
        false
    }
}
