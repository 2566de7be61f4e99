//! Prepaid files against a real store and card registry: load files (all
//! or nothing, every refused line listed, idempotent, the first load
//! activates), the accounting export read back by an independent reader
//! (Python's `csv` module and byte slicing, stdlib only) and regenerated
//! byte for byte, and the attestation of small-purchase purchases.

#[path = "../support/mod.rs"]
mod support;

mod export;

use std::path::Path;
use std::process::Command;

use cardhub_core::cards::config::Catalog;
use cardhub_core::cards::file::CardRow;
use cardhub_core::cards::{CardRegistry, CardStatus, PanKeys, Product};
use cardhub_core::iso8583::fields::{Expiry, Pan};
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::attestation::AttestationState;
use cardhub_core::prepaid::config::PrepaidConfig;
use cardhub_core::prepaid::export::ExportFormat;
use cardhub_core::prepaid::load_file::LoadFileError;
use cardhub_core::prepaid::{
    Ledger, Merchant, NewOrderer, NewProgramme, PinDelivery, PrepaidError, ProgrammeKind, Subject,
};
use serde_json::Value;
use tempfile::TempDir;

const S1_PAN: &str = "4761739002010019";
const S2_PAN: &str = "4761739002010027";
const HEADER: &str = "reference,card_account,amount,currency\n";

fn eur(minor: u64) -> Money {
    Money::new(minor, Currency::from_numeric(978).unwrap())
}

struct Fixture {
    _dir: TempDir,
    ledger: Ledger,
    cards: CardRegistry,
}

/// `school` (small-purchase, max 100.00 EUR: cards s1, s2 registered
/// inactive with PANs, s3 only in the ledger) and `city` (social-client:
/// card c1).
async fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("prepaid-files")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let store = support::open_store(dir.path());
    let ledger = Ledger::new(store.clone(), &PrepaidConfig::default());
    let keys = PanKeys::from_bytes([7; 32], [9; 32]);
    let cards = CardRegistry::new(store, keys, Catalog::new(["city"], ["prepaid"]));
    for (orderer, programme, kind, accounts) in [
        (
            "school",
            "school-small",
            ProgrammeKind::SmallPurchase,
            &["s1", "s2", "s3"][..],
        ),
        (
            "city",
            "city-social",
            ProgrammeKind::SocialClient,
            &["c1"][..],
        ),
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
                kind,
                currency: Currency::from_numeric(978).unwrap(),
                max_balance: Some(10_000),
                pin_delivery: PinDelivery::WithCard,
                daily: Default::default(),
            })
            .await
            .unwrap();
        for account in accounts {
            ledger.open_card(account, programme).await.unwrap();
        }
    }
    let rows = [(S1_PAN, "s1"), (S2_PAN, "s2")]
        .into_iter()
        .enumerate()
        .map(|(i, (pan, account))| CardRow {
            line: i as u64 + 2,
            pan: Pan::new(pan).unwrap(),
            expiry: Expiry::parse("3012").unwrap(),
            status: CardStatus::Inactive,
            account: account.into(),
            institution: "city".into(),
            currency: Currency::from_numeric(978).unwrap(),
            profile: "prepaid".into(),
            product: Product::Prepaid,
        })
        .collect();
    cards.import(rows).await.unwrap();
    Fixture {
        _dir: dir,
        ledger,
        cards,
    }
}

fn ledger_balance(f: &Fixture, account: &str) -> i64 {
    f.ledger.balance(account).unwrap().ledger
}

fn status(f: &Fixture, pan: &str) -> CardStatus {
    f.cards
        .get(&Pan::new(pan).unwrap())
        .unwrap()
        .unwrap()
        .status
}

/// Imports `file`, which must be refused: its problems as
/// (line, column, reason).
async fn refused(f: &Fixture, file: &str) -> Vec<(u64, Option<String>, String)> {
    match f
        .ledger
        .import_load_file(&f.cards, file.as_bytes())
        .await
        .unwrap_err()
    {
        LoadFileError::Refused { problems, more } => {
            assert_eq!(more, 0);
            problems
                .into_iter()
                .map(|p| (p.line, p.column, p.reason))
                .collect()
        }
        other => panic!("expected a refusal, got {other}"),
    }
}

/// Where each problem is: (line, column).
fn places(problems: &[(u64, Option<String>, String)]) -> Vec<(u64, Option<&str>)> {
    problems
        .iter()
        .map(|(line, column, _)| (*line, column.as_deref()))
        .collect()
}

/// Nothing booked anywhere: every card at 0, no posting, a sound ledger,
/// the registered cards still inactive.
fn assert_nothing_booked(f: &Fixture) {
    for account in ["s1", "s2", "s3", "c1"] {
        assert_eq!(ledger_balance(f, account), 0, "{account}");
    }
    for orderer in ["school", "city"] {
        let lines = f
            .ledger
            .statement(&Subject::Orderer(orderer.into()), 0, i64::MAX)
            .unwrap();
        assert!(lines.is_empty(), "{orderer}: {lines:?}");
    }
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());
    assert_eq!(status(f, S1_PAN), CardStatus::Inactive);
    assert_eq!(status(f, S2_PAN), CardStatus::Inactive);
}

#[tokio::test]
async fn a_load_file_books_every_line_activates_first_loads_and_books_nothing_twice() {
    let f = fixture().await;
    let file = format!("{HEADER}L1,s1,50.00,EUR\nL2,s2,20.00,978\n L3 , s1 ,10.00,EUR\r\n");
    let report = f
        .ledger
        .import_load_file(&f.cards, file.as_bytes())
        .await
        .unwrap();
    assert_eq!((report.lines, report.booked, report.repeats), (3, 3, 0));
    assert_eq!(report.totals, vec![eur(8_000)]);
    assert_eq!(
        report.activated,
        vec![
            "476173******0019".to_string(),
            "476173******0027".to_string()
        ]
    );
    assert_eq!(ledger_balance(&f, "s1"), 6_000);
    assert_eq!(ledger_balance(&f, "s2"), 2_000);
    assert_eq!(status(&f, S1_PAN), CardStatus::Active);
    assert_eq!(status(&f, S2_PAN), CardStatus::Active);
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());
    // Every line is an entry of its own with its reference.
    let lines = f
        .ledger
        .statement(&Subject::Card("s1".into()), 0, i64::MAX)
        .unwrap();
    let refs: Vec<_> = lines
        .iter()
        .map(|l| (l.reference.as_str(), l.amount))
        .collect();
    assert_eq!(refs, [("L1", 5_000), ("L3", 1_000)]);

    // The same file again: all repeats, nothing booked.
    let again = f
        .ledger
        .import_load_file(&f.cards, file.as_bytes())
        .await
        .unwrap();
    assert_eq!((again.booked, again.repeats), (0, 3));
    assert!(again.totals.is_empty() && again.activated.is_empty());
    assert_eq!(ledger_balance(&f, "s1"), 6_000);

    // A corrected file with one new line: only that one is booked, and a
    // repeat does not count against the maximum again.
    let more = format!("{HEADER}L1,s1,50.00,EUR\nL4,s1,40.00,EUR\n");
    let report = f
        .ledger
        .import_load_file(&f.cards, more.as_bytes())
        .await
        .unwrap();
    assert_eq!((report.booked, report.repeats), (1, 1));
    assert_eq!(ledger_balance(&f, "s1"), 10_000);

    // A reference booked as something else is refused.
    let clash = format!("{HEADER}L2,s2,25.00,EUR\n");
    let problems = refused(&f, &clash).await;
    assert_eq!(places(&problems), [(2, Some("reference"))]);
    assert_eq!(ledger_balance(&f, "s2"), 2_000);
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());

    // A booked reference with another currency, even for the same card and
    // minor units (20.00 EUR booked, 2000 JPY sent), or another card: its
    // line is refused and the file with it, the good line not booked either.
    let reused = format!("{HEADER}L5,s3,10.00,EUR\nL2,s2,2000,JPY\nL1,s3,50.00,EUR\n");
    let problems = refused(&f, &reused).await;
    let at = places(&problems);
    assert_eq!(at, [(3, Some("reference")), (4, Some("reference"))]);
    assert!(
        problems[0].2.contains("\"L2\"") && problems[0].2.contains("other"),
        "{problems:?}"
    );
    for (account, balance) in [("s1", 10_000), ("s2", 2_000), ("s3", 0)] {
        assert_eq!(ledger_balance(&f, account), balance, "{account}");
    }
    let s3 = f
        .ledger
        .statement(&Subject::Card("s3".into()), 0, i64::MAX)
        .unwrap();
    assert!(s3.is_empty(), "{s3:?}");
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn bad_lines_are_all_reported_and_nothing_is_booked() {
    let f = fixture().await;
    // Text problems: found before the ledger is asked.
    let file = format!(
        "{HEADER}\
         A1,s1,10.00,EUR\n\
         A2,s1,12.5,EUR\n\
         A3,s1,1250,EUR\n\
         A4,s2,10.00\n\
         A1,s2,10.00,EUR\n\
         A6,s2,10.00,XXX\n\
         ,s2,10.00,EUR\n\
         A8,s2,0.00,EUR\n"
    );
    let problems = refused(&f, &file).await;
    let at = places(&problems);
    assert_eq!(
        at,
        [
            (3, Some("amount")),
            (4, Some("amount")),
            (5, None),
            (6, Some("reference")),
            (7, Some("currency")),
            (8, Some("reference")),
            (9, Some("amount")),
        ],
        "{problems:?}"
    );
    assert!(
        problems[2].2.contains("3 column(s), expected 4"),
        "{problems:?}"
    );
    assert!(problems[3].2.contains("repeats line 2"), "{problems:?}");
    assert!(
        problems[0].2.contains("exactly 2 decimal(s)"),
        "{problems:?}"
    );
    assert_nothing_booked(&f);

    // Ledger problems: every line checked, the maximum counting the file's
    // earlier lines for the same card.
    let file = format!(
        "{HEADER}\
         B1,s1,60.00,EUR\n\
         B2,s2,10.00,EUR\n\
         B3,nope,10.00,EUR\n\
         B4,s1,50.00,EUR\n\
         B5,s2,10.00,USD\n\
         B6,s1,40.00,EUR\n"
    );
    let problems = refused(&f, &file).await;
    let at = places(&problems);
    assert_eq!(
        at,
        [
            (4, Some("card_account")),
            (5, Some("amount")),
            (6, Some("currency")),
        ],
        "{problems:?}"
    );
    assert!(
        problems[1].2.contains("exceeds the maximum 10000"),
        "{problems:?}"
    );
    assert_nothing_booked(&f);

    // The file as a whole.
    for (file, line, reason) in [
        ("", 0, "empty"),
        (HEADER, 0, "no load lines"),
        ("ref,card,amount,currency\nX,s1,1.00,EUR\n", 1, "header"),
    ] {
        let problems = refused(&f, file).await;
        assert_eq!(problems.len(), 1, "{file:?}: {problems:?}");
        assert_eq!(problems[0].0, line, "{file:?}");
        assert!(problems[0].2.contains(reason), "{file:?}: {problems:?}");
    }
    assert_nothing_booked(&f);
}
