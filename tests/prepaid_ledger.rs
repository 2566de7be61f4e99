//! The prepaid ledger against a real store: flows by example, and a
//! property test of random operation sequences against a model, with the
//! store reopened at random points.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cardhub_core::account::{AccountSystem, Balances, DecisionRow};
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::config::PrepaidConfig;
use cardhub_core::prepaid::{
    DailyLimits, Ledger, NewOrderer, NewProgramme, PinDelivery, PrepaidError, PrepaidLedger,
    ProgrammeKind, Subject,
};
use cardhub_core::standin::config::HoldsConfig;
use cardhub_core::store::Store;
use proptest::prelude::*;
use tempfile::TempDir;

fn eur(minor: i64) -> Money {
    Money::new(minor as u64, Currency::from_numeric(978).unwrap())
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("prepaid-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn open(path: &Path) -> Ledger {
    Ledger::new(Store::open(path).unwrap(), &PrepaidConfig::default())
}

/// Two orderers: `city` (cards a0..a2, max 10,000) and `school` (cards
/// b0, b1, the default max of 150,000 lowered to 5,000 by its programme).
async fn setup(ledger: &Ledger) {
    for (orderer, programme, max, cards) in [
        ("city", "city-social", 10_000, &["a0", "a1", "a2"][..]),
        ("school", "school-small", 5_000, &["b0", "b1"][..]),
    ] {
        ledger
            .create_orderer(NewOrderer {
                id: orderer.into(),
                name: format!("{orderer} office"),
                funding_account: "NL00BANK0123456789".into(),
            })
            .await
            .unwrap();
        ledger
            .create_programme(NewProgramme {
                id: programme.into(),
                orderer: orderer.into(),
                kind: ProgrammeKind::SocialClient,
                currency: Currency::from_numeric(978).unwrap(),
                max_balance: Some(max),
                pin_delivery: PinDelivery::Separately,
                daily: Default::default(),
            })
            .await
            .unwrap();
        for card in cards {
            ledger.open_card(card, programme).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_programme_s_daily_limits_bound_each_card_s_day() {
    let dir = temp_dir();
    let ledger = open(&dir.path().join("hub.db"));
    setup(&ledger).await;
    ledger
        .create_programme(NewProgramme {
            id: "city-daily".into(),
            orderer: "city".into(),
            kind: ProgrammeKind::SmallPurchase,
            currency: Currency::from_numeric(978).unwrap(),
            max_balance: Some(50_000),
            pin_delivery: PinDelivery::WithCard,
            daily: DailyLimits {
                amount: Some(10_000),
                count: Some(2),
            },
        })
        .await
        .unwrap();
    ledger.open_card("d0", "city-daily").await.unwrap();
    ledger.load("L1", "d0", eur(40_000)).await.unwrap();
    let far = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    ledger
        .hold("H1", "d0", eur(6_000), far, None)
        .await
        .unwrap();
    let over = ledger
        .hold("H2", "d0", eur(5_000), far, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            over,
            PrepaidError::DailyLimit {
                what: "amount",
                limit: 10_000,
                used: 6_000,
                ..
            }
        ),
        "{over:?}"
    );
    ledger
        .hold("H3", "d0", eur(3_000), far, None)
        .await
        .unwrap();
    let third = ledger
        .hold("H4", "d0", eur(500), far, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            third,
            PrepaidError::DailyLimit {
                what: "count",
                limit: 2,
                ..
            }
        ),
        "{third:?}"
    );
    // A released authorization gives its share of the day back.
    ledger.reverse("R1", "H3", None).await.unwrap();
    ledger.hold("H5", "d0", eur(500), far, None).await.unwrap();
    assert_eq!(ledger.balance("d0").unwrap(), bal(33_500, 40_000));
    // Cards of programmes without limits are not counted.
    ledger.load("L2", "a0", eur(9_000)).await.unwrap();
    for n in 0..4 {
        ledger
            .hold(&format!("A{n}"), "a0", eur(100), far, None)
            .await
            .unwrap();
    }
    let zero = NewProgramme {
        id: "zero".into(),
        orderer: "city".into(),
        kind: ProgrammeKind::SmallPurchase,
        currency: Currency::from_numeric(978).unwrap(),
        max_balance: None,
        pin_delivery: PinDelivery::WithCard,
        daily: DailyLimits {
            amount: None,
            count: Some(0),
        },
    };
    assert!(matches!(
        ledger.create_programme(zero).await,
        Err(PrepaidError::InvalidAmount { minor: 0 })
    ));
}

fn bal(available: i64, ledger: i64) -> Balances {
    Balances { available, ledger }
}

#[tokio::test]
async fn load_hold_capture_reverse_move_replace_by_example() {
    let dir = temp_dir();
    let ledger = open(&dir.path().join("hub.db"));
    setup(&ledger).await;

    let loaded = ledger.load("L1", "a0", eur(6_000)).await.unwrap();
    assert_eq!(loaded.balances, bal(6_000, 6_000));
    // A repeat books nothing twice.
    assert!(ledger.load("L1", "a0", eur(6_000)).await.unwrap().repeat);
    // Over the maximum: refused, nothing booked.
    let over = ledger.load("L2", "a0", eur(4_001)).await.unwrap_err();
    assert!(
        matches!(over, PrepaidError::OverMax { max: 10_000, .. }),
        "{over:?}"
    );
    assert_eq!(ledger.balance("a0").unwrap(), bal(6_000, 6_000));

    let far = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    let held = ledger
        .hold("H1", "a0", eur(2_500), far, None)
        .await
        .unwrap();
    // The answer's balances are the card's after the hold.
    assert_eq!(held.balances, bal(3_500, 6_000));
    assert_eq!(ledger.balance("a0").unwrap(), bal(3_500, 6_000));
    let short = ledger
        .hold("H2", "a0", eur(3_501), far, None)
        .await
        .unwrap_err();
    assert!(matches!(
        short,
        PrepaidError::InsufficientFunds {
            available: 3_500,
            ..
        }
    ));
    // Captured for less: the rest is released.
    ledger
        .capture("C1", Some("H1"), "a0", eur(2_000), None)
        .await
        .unwrap();
    assert_eq!(ledger.balance("a0").unwrap(), bal(4_000, 4_000));
    // Part of the purchase reversed, then the load partly.
    ledger.reverse("R1", "H1", Some(500)).await.unwrap();
    ledger.reverse("R2", "L1", Some(1_000)).await.unwrap();
    assert_eq!(ledger.balance("a0").unwrap(), bal(3_500, 3_500));

    let (from, to) = ledger
        .move_balance("M1", "a0", "a1", eur(1_500))
        .await
        .unwrap();
    assert_eq!((from.ledger, to.ledger), (2_000, 1_500));
    let other = ledger
        .move_balance("M2", "a0", "b0", eur(1))
        .await
        .unwrap_err();
    assert!(matches!(other, PrepaidError::NotMovable { .. }));

    ledger
        .hold("H3", "a1", eur(1_000), far, None)
        .await
        .unwrap();
    let new = ledger.replace_card("X1", "a1", "a1-new").await.unwrap();
    assert_eq!(new, bal(500, 1_500));
    assert!(matches!(
        ledger.load("L3", "a1", eur(1)).await.unwrap_err(),
        PrepaidError::CardReplaced { .. }
    ));
    // The hold moved with the card: its capture draws on the new one.
    ledger
        .capture("C3", Some("H3"), "a1", eur(1_000), None)
        .await
        .unwrap();
    assert_eq!(ledger.balance("a1-new").unwrap(), bal(500, 500));

    let lines = ledger
        .statement(&Subject::Card("a0".into()), 0, i64::MAX)
        .unwrap();
    let amounts: Vec<i64> = lines.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [6_000, -2_000, 500, -1_000, -1_500]);
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
}

/// As the hub's account system, the ledger writes the hub's decision row in
/// the transaction of its booking or refusal: a hold is never durable
/// without the decision the switch gets.
#[tokio::test]
async fn the_decision_row_is_written_in_the_transaction_of_the_hold() {
    let dir = temp_dir();
    let store = Store::open(&dir.path().join("hub.db")).unwrap();
    let ledger = Ledger::new(store.clone(), &PrepaidConfig::default());
    setup(&ledger).await;
    ledger.load("L1", "a0", eur(6_000)).await.unwrap();
    store
        .write(|c| c.execute_batch("CREATE TABLE rows (code TEXT, available INTEGER)"))
        .await
        .unwrap();
    let system = PrepaidLedger::new(ledger.clone(), HoldsConfig::default());
    assert!(system.books_in_hub_store());
    let purchase = |id: &str, minor: i64, row: DecisionRow| {
        let mut r = support::account_request("a0", Duration::from_secs(5));
        r.transaction_id = id.into();
        r.amount = eur(minor);
        r.decision_row = Some(row);
        r
    };
    let recorded = || {
        DecisionRow::new(|c, answer| {
            let available = answer.balances.map(|b| b.available);
            c.execute(
                "INSERT INTO rows (code, available) VALUES (?1, ?2)",
                cardhub_core::params![answer.code.as_str(), available],
            )
            .map(|_| ())
        })
    };
    let rows = || {
        store
            .read(|c| {
                c.prepare_cached("SELECT code, available FROM rows ORDER BY rowid")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<cardhub_core::store::sql::Result<Vec<(String, Option<i64>)>>>()
            })
            .unwrap()
    };

    // The row cannot be written: nothing is booked, the call fails.
    let failing = DecisionRow::new(|_, _| Err(cardhub_core::store::sql::Error::NoRows));
    let refused = system.authorize(&purchase("T1", 2_500, failing)).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(ledger.balance("a0").unwrap(), bal(6_000, 6_000));
    assert!(rows().is_empty());

    // Written: the hold and its decision's row are there together.
    let held = system
        .authorize(&purchase("T2", 2_500, recorded()))
        .await
        .unwrap();
    assert_eq!(held.balances, Some(bal(3_500, 6_000)));
    assert_eq!(rows(), [("00".to_string(), Some(3_500))]);

    // A refusal books nothing and writes its row with its code.
    let declined = system
        .authorize(&purchase("T3", 9_000, recorded()))
        .await
        .unwrap();
    assert_eq!(declined.code.as_str(), "51");
    assert_eq!(ledger.balance("a0").unwrap(), bal(3_500, 6_000));
    assert_eq!(rows()[1], ("51".to_string(), None));
}

#[tokio::test]
async fn stale_holds_stop_counting_and_expire() {
    let dir = temp_dir();
    let ledger = open(&dir.path().join("hub.db"));
    setup(&ledger).await;
    ledger.load("L1", "b0", eur(1_000)).await.unwrap();
    let past = jiff::Timestamp::now().as_microsecond() - 1;
    ledger.hold("H1", "b0", eur(800), past, None).await.unwrap();
    assert_eq!(ledger.balance("b0").unwrap(), bal(1_000, 1_000));
    assert_eq!(ledger.expire_holds(past + 1).await.unwrap(), 1);
    assert_eq!(ledger.expire_holds(past + 1).await.unwrap(), 0);
}

/// One step of a random sequence; indices are taken modulo what exists.
#[derive(Debug, Clone)]
enum Step {
    Load(usize, i64),
    Purchase(usize, i64),
    Capture(usize, i64),
    ReverseHold(usize, Option<i64>),
    ReverseLoad(usize, Option<i64>),
    Move(usize, usize, i64),
    Replace(usize),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let amount = 1i64..6_000;
    prop_oneof![
        4 => (0..5usize, amount.clone()).prop_map(|(c, x)| Step::Load(c, x)),
        4 => (0..5usize, amount.clone()).prop_map(|(c, x)| Step::Purchase(c, x)),
        3 => (0..64usize, 1i64..=100).prop_map(|(h, pct)| Step::Capture(h, pct)),
        2 => (0..64usize, proptest::option::of(amount.clone())).prop_map(|(h, x)| Step::ReverseHold(h, x)),
        2 => (0..64usize, proptest::option::of(amount.clone())).prop_map(|(l, x)| Step::ReverseLoad(l, x)),
        2 => (0..5usize, 0..5usize, amount).prop_map(|(a, b, x)| Step::Move(a, b, x)),
        1 => (0..5usize).prop_map(Step::Replace),
        1 => Just(Step::Reopen),
    ]
}

/// What the ledger should hold.
struct Model {
    /// (current account name, orderer, max, balance).
    cards: Vec<(String, &'static str, i64, i64)>,
    /// (reference, card, remaining, captured, refunded, open).
    holds: Vec<(String, usize, i64, i64, i64, bool)>,
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
            ],
            holds: Vec::new(),
            loads: Vec::new(),
        }
    }

    fn available(&self, card: usize) -> i64 {
        let held: i64 = self
            .holds
            .iter()
            .filter(|h| h.1 == card && h.5)
            .map(|h| h.2)
            .sum();
        self.cards[card].3 - held
    }
}

async fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = temp_dir();
    let path: PathBuf = dir.path().join("hub.db");
    let mut ledger = open(&path);
    setup(&ledger).await;
    let mut m = Model::new();
    let far = jiff::Timestamp::now().as_microsecond() + 24 * 3_600_000_000;
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
                let fits = m.available(c) >= x;
                let got = ledger.hold(&r, &m.cards[c].0, eur(x), far, None).await;
                if fits {
                    m.holds.push((r.clone(), c, x, 0, 0, true));
                }
                if let Ok(held) = &got {
                    // The answer's balances are the card's after the hold.
                    let now = ledger.balance(&m.cards[c].0).unwrap();
                    prop_assert_eq!(held.balances, now);
                    prop_assert_eq!(now.available, m.available(c));
                }
                (got.is_ok(), fits)
            }
            Step::Capture(h, pct) => {
                let Some(hold) = m.holds.get(h % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let i = h % m.holds.len();
                let x = (hold.2 * pct / 100).max(1);
                let fits = hold.5;
                let got = ledger
                    .capture(&r, Some(&hold.0), &m.cards[hold.1].0, eur(x), None)
                    .await;
                if fits {
                    m.cards[hold.1].3 -= x;
                    m.holds[i] = (hold.0, hold.1, 0, x, 0, false);
                }
                (got.is_ok(), fits)
            }
            Step::ReverseHold(h, x) => {
                let Some(hold) = m.holds.get(h % m.holds.len().max(1)).cloned() else {
                    continue;
                };
                let i = h % m.holds.len();
                let got = ledger.reverse(&r, &hold.0, x).await;
                let fits = if hold.5 {
                    let undo = x.unwrap_or(hold.2).min(hold.2);
                    m.holds[i].2 -= undo;
                    m.holds[i].5 = m.holds[i].2 > 0;
                    undo > 0
                } else {
                    let left = hold.3 - hold.4;
                    let undo = x.unwrap_or(left).min(left);
                    let card = &mut m.cards[hold.1];
                    let fits = undo > 0 && card.3 + undo <= card.2;
                    if fits {
                        card.3 += undo;
                        m.holds[i].4 += undo;
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
            Step::Reopen => {
                drop(ledger);
                ledger = open(&path);
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
    let ledger = open(&path);
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
