//! The prepaid ledger against a real store: flows by example, and a
//! property test of random operation sequences against a model, with the
//! store reopened at random points.

#[path = "../support/mod.rs"]
mod support;

mod property;

use std::path::Path;
use std::time::Duration;

use cardhub_core::account::{AccountSystem, Balances, DecisionRow, Kind, Operation};
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::config::PrepaidConfig;
use cardhub_core::prepaid::{
    DailyLimits, Ledger, Merchant, NewOrderer, NewProgramme, PinDelivery, PrepaidError,
    PrepaidLedger, ProgrammeKind, Subject,
};
use cardhub_core::standin::config::HoldsConfig;
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

/// The ledger on the store of the test whose files are in `dir`
/// (`support::open_store`: SQLite, or PostgreSQL in the PostgreSQL pass).
fn open(dir: &Path) -> Ledger {
    Ledger::new(support::open_store(dir), &PrepaidConfig::default())
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
    let ledger = open(dir.path());
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
        .hold("H1", "d0", eur(6_000), far, &Merchant::default())
        .await
        .unwrap();
    let over = ledger
        .hold("H2", "d0", eur(5_000), far, &Merchant::default())
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
        .hold("H3", "d0", eur(3_000), far, &Merchant::default())
        .await
        .unwrap();
    let third = ledger
        .hold("H4", "d0", eur(500), far, &Merchant::default())
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
    ledger
        .hold("H5", "d0", eur(500), far, &Merchant::default())
        .await
        .unwrap();
    assert_eq!(ledger.balance("d0").unwrap(), bal(33_500, 40_000));
    // Cards of programmes without limits are not counted.
    ledger.load("L2", "a0", eur(9_000)).await.unwrap();
    for n in 0..4 {
        ledger
            .hold(&format!("A{n}"), "a0", eur(100), far, &Merchant::default())
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
    let ledger = open(dir.path());
    setup(&ledger).await;

    let loaded = ledger.load("L1", "a0", eur(6_000)).await.unwrap();
    assert_eq!(loaded.balances, bal(6_000, 6_000));
    // A repeat books nothing twice.
    assert!(ledger.load("L1", "a0", eur(6_000)).await.unwrap().repeat);
    // Its reference with another amount, card or currency: refused,
    // nothing booked (never answered as done).
    let usd = Money::new(6_000, Currency::from_numeric(840).unwrap());
    for (account, amount) in [("a0", eur(5_000)), ("a1", eur(6_000)), ("a0", usd)] {
        let clash = ledger.load("L1", account, amount).await.unwrap_err();
        assert!(
            matches!(&clash, PrepaidError::ReferenceConflict { reference } if reference == "L1"),
            "{account} {amount}: {clash:?}"
        );
    }
    assert_eq!(ledger.balance("a0").unwrap(), bal(6_000, 6_000));
    assert_eq!(ledger.balance("a1").unwrap(), bal(0, 0));
    // Over the maximum: refused, nothing booked.
    let over = ledger.load("L2", "a0", eur(4_001)).await.unwrap_err();
    assert!(
        matches!(over, PrepaidError::OverMax { max: 10_000, .. }),
        "{over:?}"
    );
    assert_eq!(ledger.balance("a0").unwrap(), bal(6_000, 6_000));

    let far = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    let held = ledger
        .hold("H1", "a0", eur(2_500), far, &Merchant::default())
        .await
        .unwrap();
    // The answer's balances are the card's after the hold.
    assert_eq!(held.balances, bal(3_500, 6_000));
    assert_eq!(ledger.balance("a0").unwrap(), bal(3_500, 6_000));
    let short = ledger
        .hold("H2", "a0", eur(3_501), far, &Merchant::default())
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
        .capture("C1", Some("H1"), "a0", eur(2_000), &Merchant::default())
        .await
        .unwrap();
    assert_eq!(ledger.balance("a0").unwrap(), bal(4_000, 4_000));
    // Part of the purchase reversed, then the load partly.
    ledger.reverse("R1", "H1", Some(500)).await.unwrap();
    ledger.reverse("R2", "L1", Some(1_000)).await.unwrap();
    assert_eq!(ledger.balance("a0").unwrap(), bal(3_500, 3_500));

    let moved = ledger
        .move_balance("M1", "a0", "a1", eur(1_500))
        .await
        .unwrap();
    assert_eq!((moved.from.ledger, moved.to.ledger), (2_000, 1_500));
    // Sent again: a repeat; its reference with other details, or a load's
    // or a hold's reference: refused, nothing moved.
    let again = ledger
        .move_balance("M1", "a0", "a1", eur(1_500))
        .await
        .unwrap();
    assert_eq!(
        (again.from, again.to, again.repeat),
        (moved.from, moved.to, true)
    );
    for (reference, from, to, amount) in [
        ("M1", "a0", "a1", eur(1_000)),
        ("M1", "a0", "a2", eur(1_500)),
        ("M1", "a1", "a0", eur(1_500)),
        ("L1", "a0", "a1", eur(1_500)),
        ("H1", "a0", "a1", eur(1_500)),
    ] {
        let clash = ledger
            .move_balance(reference, from, to, amount)
            .await
            .unwrap_err();
        assert!(
            matches!(&clash, PrepaidError::ReferenceConflict { reference: r } if r == reference),
            "{reference} {from} {to}: {clash:?}"
        );
    }
    assert!(matches!(
        ledger.load("M1", "a0", eur(1_500)).await.unwrap_err(),
        PrepaidError::ReferenceConflict { .. }
    ));
    assert_eq!(ledger.balance("a0").unwrap().ledger, 2_000);
    assert_eq!(ledger.balance("a1").unwrap().ledger, 1_500);
    assert_eq!(ledger.balance("a2").unwrap().ledger, 0);
    let other = ledger
        .move_balance("M2", "a0", "b0", eur(1))
        .await
        .unwrap_err();
    assert!(matches!(other, PrepaidError::NotMovable { .. }));

    ledger
        .hold("H3", "a1", eur(1_000), far, &Merchant::default())
        .await
        .unwrap();
    let new = ledger.replace_card("X1", "a1", "a1-new").await.unwrap();
    assert_eq!(new, bal(500, 1_500));
    // Sent again: a repeat; its reference for another account: refused.
    let again = ledger.replace_card("X1", "a1", "a1-new").await.unwrap();
    assert_eq!(again, new);
    assert!(matches!(
        ledger.replace_card("X1", "a1", "a1-other").await.unwrap_err(),
        PrepaidError::ReferenceConflict { reference } if reference == "X1"
    ));
    assert!(ledger.balance("a1-other").is_err());
    assert!(matches!(
        ledger.load("L3", "a1", eur(1)).await.unwrap_err(),
        PrepaidError::CardReplaced { .. }
    ));
    // The hold moved with the card: its capture draws on the new one.
    ledger
        .capture("C3", Some("H3"), "a1", eur(1_000), &Merchant::default())
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

/// Two loads with one reference at once: of the same load, one books and
/// the other is its repeat; of different amounts, one books and the other
/// is refused — the comparison is made in the store job that books.
#[tokio::test(flavor = "multi_thread")]
async fn two_loads_with_one_reference_at_once_book_once() {
    let dir = temp_dir();
    let ledger = open(dir.path());
    setup(&ledger).await;
    let (a, b) = tokio::join!(
        ledger.load("SAME", "a0", eur(1_000)),
        ledger.load("SAME", "a0", eur(1_000))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!([a.repeat, b.repeat].iter().filter(|r| !**r).count(), 1);
    assert_eq!(ledger.balance("a0").unwrap().ledger, 1_000);

    let (a, b) = tokio::join!(
        ledger.load("OTHER", "a1", eur(1_000)),
        ledger.load("OTHER", "a1", eur(2_000))
    );
    let booked = match (a, b) {
        (Ok(done), Err(PrepaidError::ReferenceConflict { .. }))
        | (Err(PrepaidError::ReferenceConflict { .. }), Ok(done)) => done,
        other => panic!("one load booked, the other refused: {other:?}"),
    };
    assert!(!booked.repeat);
    assert_eq!(ledger.balance("a1").unwrap(), booked.balances);
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
}

/// An ISO 8583 load reaches the ledger under cardhub's transaction id: sent
/// to it again with the same card, amount and currency (its advice replayed
/// from the SAF queue) it is still a repeat, approved and booked once.
#[tokio::test]
async fn an_iso_load_sent_to_the_ledger_again_is_a_repeat() {
    let dir = temp_dir();
    let ledger = open(dir.path());
    setup(&ledger).await;
    let system = PrepaidLedger::new(ledger.clone(), HoldsConfig::default());
    let mut r = support::account_request("a0", Duration::from_secs(5));
    r.kind = Kind::Load;
    r.amount = eur(2_500);
    let first = system.call(Operation::Load, &r).await.unwrap();
    let again = system.call(Operation::Advice, &r).await.unwrap();
    let answered = |a: &cardhub_core::account::AccountAnswer| {
        (a.code.as_str().to_string(), a.raw_code.clone())
    };
    assert_eq!(answered(&first), ("00".to_string(), "BOOKED".to_string()));
    assert_eq!(answered(&again), ("00".to_string(), "REPEAT".to_string()));
    assert_eq!(again.balances, Some(bal(2_500, 2_500)));
    assert_eq!(ledger.balance("a0").unwrap(), bal(2_500, 2_500));
}

/// The [`setup`] ledger, card a0 loaded with 60.00, on its store (and the
/// folder the store lives in).
async fn a0_loaded() -> (TempDir, cardhub_core::store::Store, Ledger) {
    let dir = temp_dir();
    let store = support::open_store(dir.path());
    let ledger = Ledger::new(store.clone(), &PrepaidConfig::default());
    setup(&ledger).await;
    ledger.load("L1", "a0", eur(6_000)).await.unwrap();
    (dir, store, ledger)
}

/// As the hub's account system, the ledger writes the hub's decision row in
/// the transaction of its booking or refusal: a hold is never durable
/// without the decision the switch gets.
#[tokio::test]
async fn the_decision_row_is_written_in_the_transaction_of_the_hold() {
    let (_dir, store, ledger) = a0_loaded().await;
    store
        .write(|c| c.execute_batch("CREATE TABLE rows (n BIGINT, code TEXT, available BIGINT)"))
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
                "INSERT INTO rows (n, code, available) \
                 VALUES ((SELECT COUNT(*) FROM rows), ?1, ?2)",
                cardhub_core::params![answer.code.as_str(), available],
            )
            .map(|_| ())
        })
    };
    let rows = || {
        store
            .read(|c| {
                c.prepare_cached("SELECT code, available FROM rows ORDER BY n")?
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
    let ledger = open(dir.path());
    setup(&ledger).await;
    ledger.load("L1", "b0", eur(1_000)).await.unwrap();
    let past = jiff::Timestamp::now().as_microsecond() - 1;
    ledger
        .hold("H1", "b0", eur(800), past, &Merchant::default())
        .await
        .unwrap();
    assert_eq!(ledger.balance("b0").unwrap(), bal(1_000, 1_000));
    assert_eq!(ledger.expire_holds(past + 1).await.unwrap(), 1);
    assert_eq!(ledger.expire_holds(past + 1).await.unwrap(), 0);
}

/// Each card's hold totals (migration 0014) are audited against its holds:
/// a column that drifts from them is reported.
#[tokio::test]
async fn the_audit_finds_hold_totals_that_differ_from_the_holds() {
    let (_dir, store, ledger) = a0_loaded().await;
    let far = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    ledger
        .hold("H1", "a0", eur(500), far, &Merchant::default())
        .await
        .unwrap();
    assert!(ledger.audit().unwrap().is_empty());
    for (column, breach) in [
        ("held", "open-holds total"),
        ("day_amount", "day amount"),
        ("day_count", "day count"),
    ] {
        let sql = format!("UPDATE prepaid_accounts SET {column} = {column} + 1 WHERE name = 'a0'");
        let undo = format!("UPDATE prepaid_accounts SET {column} = {column} - 1 WHERE name = 'a0'");
        store.write(move |c| c.execute_batch(&sql)).await.unwrap();
        let audit = ledger.audit().unwrap();
        assert_eq!(audit.len(), 1, "{column}: {audit:?}");
        assert!(audit[0].contains(breach), "{column}: {audit:?}");
        store.write(move |c| c.execute_batch(&undo)).await.unwrap();
    }
    assert!(ledger.audit().unwrap().is_empty());
}

/// A store from before the hold totals: the migration sums each card's
/// holds into them (open, captured, partly and wholly released, expired).
#[tokio::test]
async fn the_hold_totals_migration_sums_the_holds_a_store_had() {
    let dir = temp_dir();
    let path = dir.path().join("hub.db");
    let ledger = open(dir.path());
    setup(&ledger).await;
    let far = jiff::Timestamp::now().as_microsecond() + 3_600_000_000;
    let past = jiff::Timestamp::now().as_microsecond() - 1;
    ledger.load("L1", "a0", eur(9_000)).await.unwrap();
    for (reference, minor, expiry) in [
        ("H1", 1_000, far),
        ("H2", 2_000, far),
        ("H3", 300, far),
        ("H4", 400, far),
        ("H5", 500, past),
        ("H6", 600, past),
    ] {
        ledger
            .hold(reference, "a0", eur(minor), expiry, &Merchant::default())
            .await
            .unwrap();
    }
    ledger
        .capture("C2", Some("H2"), "a0", eur(1_500), &Merchant::default())
        .await
        .unwrap();
    ledger.reverse("R3", "H3", Some(100)).await.unwrap();
    ledger.reverse("R4", "H4", None).await.unwrap();
    ledger.expire_holds(past + 1).await.unwrap();
    let before = ledger.balance("a0").unwrap();
    assert_eq!(before, bal(9_000 - 1_500 - 1_000 - 200, 7_500));
    drop(ledger);

    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(support::UNDO_SEARCH_TABLES).unwrap();
    db.execute_batch(support::UNDO_MERCHANT_NAME).unwrap();
    db.execute_batch(
        "DROP INDEX call_intents_duplicate_key; DROP INDEX balance_files_one_current;
         DROP TABLE daily_totals; DROP TABLE shadow_account_locks;
         DROP TABLE fleet_leases; DROP TABLE fleet_members;
         ALTER TABLE institution_state DROP COLUMN version;
         ALTER TABLE prepaid_accounts DROP COLUMN held;
         ALTER TABLE prepaid_accounts DROP COLUMN day_start_us;
         ALTER TABLE prepaid_accounts DROP COLUMN day_amount;
         ALTER TABLE prepaid_accounts DROP COLUMN day_count;
         CREATE INDEX prepaid_holds_day ON prepaid_holds (account, created_at_us, state, amount);
         PRAGMA user_version = 13;",
    )
    .unwrap();
    drop(db);

    let ledger = open(dir.path());
    assert_eq!(ledger.balance("a0").unwrap(), before);
    assert!(ledger.audit().unwrap().is_empty());
    let totals: (i64, i64, i64) = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT held, day_amount, day_count FROM prepaid_accounts WHERE name = 'a0'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    // Open: H1 and H3's rest (the expired H5, H6 are not held); the day:
    // every hold but the wholly released H4.
    assert_eq!(totals, (1_000 + 200, 1_000 + 2_000 + 300 + 500 + 600, 5));
}
