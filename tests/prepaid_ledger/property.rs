//! The property test: random sequences of loads, purchases, captures,
//! reversals, moves, replacements and expiries against a model, with the
//! store reopened at random points.

use proptest::prelude::*;

use super::*;

/// One step of a random sequence; indices are taken modulo what exists.
#[derive(Debug, Clone)]
enum Step {
    Load(usize, i64),
    Purchase(usize, i64),
    /// A hold whose expiry has passed already: it sets nothing aside.
    StalePurchase(usize, i64),
    Capture(usize, i64),
    ReverseHold(usize, Option<i64>),
    ReverseLoad(usize, Option<i64>),
    Move(usize, usize, i64),
    Replace(usize),
    /// Marks the stale holds expired.
    Expire,
    Reopen,
}

/// The model's cards: a0..a2 and d0 of `city` (d0 in a programme with
/// daily limits), b0, b1 of `school`.
const CARDS: usize = 6;
/// The card with the daily limits, and its limits.
const DAILY_CARD: usize = 5;
const DAILY_AMOUNT: i64 = 9_000;
const DAILY_COUNT: i64 = 4;

fn step() -> impl Strategy<Value = Step> {
    let amount = 1i64..6_000;
    prop_oneof![
        4 => (0..CARDS, amount.clone()).prop_map(|(c, x)| Step::Load(c, x)),
        4 => (0..CARDS, amount.clone()).prop_map(|(c, x)| Step::Purchase(c, x)),
        1 => (0..CARDS, amount.clone()).prop_map(|(c, x)| Step::StalePurchase(c, x)),
        3 => (0..64usize, 1i64..=100).prop_map(|(h, pct)| Step::Capture(h, pct)),
        2 => (0..64usize, proptest::option::of(amount.clone())).prop_map(|(h, x)| Step::ReverseHold(h, x)),
        2 => (0..64usize, proptest::option::of(amount.clone())).prop_map(|(l, x)| Step::ReverseLoad(l, x)),
        2 => (0..CARDS, 0..CARDS, amount).prop_map(|(a, b, x)| Step::Move(a, b, x)),
        1 => (0..CARDS).prop_map(Step::Replace),
        1 => Just(Step::Expire),
        1 => Just(Step::Reopen),
    ]
}

/// A hold as the model sees it.
#[derive(Debug, Clone)]
struct ModelHold {
    reference: String,
    card: usize,
    amount: i64,
    remaining: i64,
    captured: i64,
    refunded: i64,
    /// Neither captured nor released (open or expired in the ledger).
    open: bool,
    /// Past its expiry: sets nothing aside.
    stale: bool,
    /// Released in full: no longer counts for the daily limits.
    released: bool,
}

/// What the ledger should hold.
struct Model {
    /// (current account name, orderer, max, balance).
    cards: Vec<(String, &'static str, i64, i64)>,
    holds: Vec<ModelHold>,
    /// (reference, card, amount, reversed).
    loads: Vec<(String, usize, i64, i64)>,
}

impl Model {
    fn new() -> Model {
        let card = |n: &str, o, max| (n.to_string(), o, max, 0);
        Model {
            cards: vec![
                card("a0", "city", 10_000),
                card("a1", "city", 10_000),
                card("a2", "city", 10_000),
                card("b0", "school", 5_000),
                card("b1", "school", 5_000),
                card("d0", "city", 10_000),
            ],
            holds: Vec::new(),
            loads: Vec::new(),
        }
    }

    fn available(&self, card: usize) -> i64 {
        let held: i64 = self
            .holds
            .iter()
            .filter(|h| h.card == card && h.open && !h.stale)
            .map(|h| h.remaining)
            .sum();
        self.cards[card].3 - held
    }

    /// Whether a new hold of `x` on `card` is within its daily limits (all
    /// holds of the test are of one UTC day).
    fn within_daily_limits(&self, card: usize, x: i64) -> bool {
        if card != DAILY_CARD {
            return true;
        }
        let counted = self.holds.iter().filter(|h| h.card == card && !h.released);
        let (used, count) = counted.fold((0, 0), |(u, n), h| (u + h.amount, n + 1));
        count < DAILY_COUNT && used + x <= DAILY_AMOUNT
    }

    /// A purchase hold of `x` on `card` (`stale`: already past its
    /// expiry); whether the ledger should take it.
    fn hold(&mut self, reference: &str, card: usize, x: i64, stale: bool) -> bool {
        let fits = self.available(card) >= x && self.within_daily_limits(card, x);
        if fits {
            self.holds.push(ModelHold {
                reference: reference.to_string(),
                card,
                amount: x,
                remaining: x,
                captured: 0,
                refunded: 0,
                open: true,
                stale,
                released: false,
            });
        }
        fits
    }
}

/// `setup` and the programme with daily limits of card d0.
async fn setup_with_daily_limits(ledger: &Ledger) {
    setup(ledger).await;
    ledger
        .create_programme(NewProgramme {
            id: "city-daily".into(),
            orderer: "city".into(),
            kind: ProgrammeKind::SmallPurchase,
            currency: Currency::from_numeric(978).unwrap(),
            max_balance: Some(10_000),
            pin_delivery: PinDelivery::WithCard,
            daily: DailyLimits {
                amount: Some(DAILY_AMOUNT as u64),
                count: Some(DAILY_COUNT as u32),
            },
        })
        .await
        .unwrap();
    ledger.open_card("d0", "city-daily").await.unwrap();
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = temp_dir();
    let mut ledger = open(dir.path());
    setup_with_daily_limits(&ledger).await;
    let mut m = Model::new();
    let now = || jiff::Timestamp::now().as_microsecond();
    let far = now() + 24 * 3_600_000_000;
    for (n, step) in steps.into_iter().enumerate() {
        let r = format!("T{n}");
        let ok = match step.clone() {
            Step::Load(c, x) => {
                let fits = m.cards[c].3 + x <= m.cards[c].2;
                let got = ledger.load(&r, &m.cards[c].0, eur(x)).await;
                if fits {
                    m.cards[c].3 += x;
                    m.loads.push((r.clone(), c, x, 0));
                }
                (got.is_ok(), fits)
            }
            Step::Purchase(c, x) => {
                let fits = m.hold(&r, c, x, false);
                let got = ledger
                    .hold(&r, &m.cards[c].0, eur(x), far, &Merchant::default())
                    .await;
                if let Ok(held) = &got {
                    // The answer's balances are the card's after the hold.
                    let now = ledger.balance(&m.cards[c].0).unwrap();
                    prop_assert_eq!(held.balances, now);
                    prop_assert_eq!(now.available, m.available(c));
                }
                (got.is_ok(), fits)
            }
            Step::StalePurchase(c, x) => {
                let fits = m.hold(&r, c, x, true);
                let past = now() - 1;
                let got = ledger
                    .hold(&r, &m.cards[c].0, eur(x), past, &Merchant::default())
                    .await;
                (got.is_ok(), fits)
            }
            Step::Capture(h, pct) => {
                let Some(hold) = m.holds.get(h % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let i = h % m.holds.len();
                let x = (hold.remaining * pct / 100).max(1);
                // A stale hold sets nothing aside: its capture needs the
                // money available.
                let own = if hold.stale { 0 } else { hold.remaining };
                let fits = hold.open && m.available(hold.card) + own >= x;
                let got = ledger
                    .capture(
                        &r,
                        Some(&hold.reference),
                        &m.cards[hold.card].0,
                        eur(x),
                        &Merchant::default(),
                    )
                    .await;
                if fits {
                    m.cards[hold.card].3 -= x;
                    let h = &mut m.holds[i];
                    (h.remaining, h.captured, h.open) = (0, x, false);
                }
                (got.is_ok(), fits)
            }
            Step::ReverseHold(h, x) => {
                let Some(hold) = m.holds.get(h % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let i = h % m.holds.len();
                let got = ledger.reverse(&r, &hold.reference, x).await;
                let fits = if hold.open {
                    let undo = x.unwrap_or(hold.remaining).min(hold.remaining);
                    let h = &mut m.holds[i];
                    h.remaining -= undo;
                    h.open = h.remaining > 0;
                    h.released = !h.open;
                    undo > 0
                } else {
                    let left = hold.captured - hold.refunded;
                    let undo = x.unwrap_or(left).min(left);
                    let card = &mut m.cards[hold.card];
                    let fits = undo > 0 && card.3 + undo <= card.2;
                    if fits {
                        card.3 += undo;
                        m.holds[i].refunded += undo;
                    }
                    fits
                };
                (got.is_ok(), fits)
            }
            Step::ReverseLoad(l, x) => {
                let Some(load) = m.loads.get(l % m.loads.len().max(1)).cloned() else {
                    continue;
                };
                let i = l % m.loads.len();
                let left = load.2 - load.3;
                let undo = x.unwrap_or(left).min(left);
                let fits = undo > 0 && m.available(load.1) >= undo;
                let got = ledger.reverse(&r, &load.0, x).await;
                if fits {
                    m.cards[load.1].3 -= undo;
                    m.loads[i].3 += undo;
                }
                (got.is_ok(), fits)
            }
            Step::Move(a, b, x) => {
                let fits = a != b
                    && m.cards[a].1 == m.cards[b].1
                    && m.available(a) >= x
                    && m.cards[b].3 + x <= m.cards[b].2;
                let got = ledger
                    .move_balance(&r, &m.cards[a].0, &m.cards[b].0, eur(x))
                    .await;
                if fits {
                    m.cards[a].3 -= x;
                    m.cards[b].3 += x;
                }
                (got.is_ok(), fits)
            }
            Step::Replace(c) => {
                let new = format!("{}-r{n}", m.cards[c].0);
                let got = ledger.replace_card(&r, &m.cards[c].0, &new).await;
                m.cards[c].0 = new;
                (got.is_ok(), true)
            }
            Step::Expire => {
                let got = ledger.expire_holds(now()).await;
                (got.is_ok(), true)
            }
            Step::Reopen => {
                drop(ledger);
                ledger = open(dir.path());
                (true, true)
            }
        };
        prop_assert_eq!(
            ok.0,
            ok.1,
            "step {} {:?}: ledger ok {}, model ok {}",
            n,
            step,
            ok.0,
            ok.1
        );
        for (i, card) in m.cards.iter().enumerate() {
            let got = ledger.balance(&card.0).unwrap();
            prop_assert_eq!(
                got,
                bal(m.available(i), card.3),
                "card {} after step {} {:?}",
                card.0,
                n,
                step
            );
        }
        // The audit also checks each card's kept hold totals against the
        // sums of its holds.
        let audit = ledger.audit().unwrap();
        prop_assert!(
            audit.is_empty(),
            "after step {} {:?}: {:#?}",
            n,
            step,
            audit
        );
    }
    // Recovered exactly from the postings after a last reopen.
    drop(ledger);
    let ledger = open(dir.path());
    for (i, card) in m.cards.iter().enumerate() {
        prop_assert_eq!(
            ledger.balance(&card.0).unwrap(),
            bal(m.available(i), card.3)
        );
    }
    prop_assert!(ledger.audit().unwrap().is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_sequences_keep_the_ledger_sound(steps in proptest::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(steps))?;
    }
}
