//! Prepaid files against a real store and card registry: load files (all
//! or nothing, every refused line listed, idempotent, the first load
//! activates), the accounting export read back by an independent reader
//! (Python's `csv` module and byte slicing, stdlib only) and regenerated
//! byte for byte, and the attestation of small-purchase purchases.

mod support;

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

/// The refused lines of a load file as `(line, column, reason)`.
fn refused(e: LoadFileError) -> Vec<(u64, Option<String>, String)> {
    match e {
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
    let problems = refused(
        f.ledger
            .import_load_file(&f.cards, clash.as_bytes())
            .await
            .unwrap_err(),
    );
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].0, problems[0].1.as_deref()),
        (2, Some("reference"))
    );
    assert_eq!(ledger_balance(&f, "s2"), 2_000);
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());

    // A booked reference with another currency, even for the same card and
    // minor units (20.00 EUR booked, 2000 JPY sent), or another card: its
    // line is refused and the file with it, the good line not booked either.
    let reused = format!("{HEADER}L5,s3,10.00,EUR\nL2,s2,2000,JPY\nL1,s3,50.00,EUR\n");
    let problems = refused(
        f.ledger
            .import_load_file(&f.cards, reused.as_bytes())
            .await
            .unwrap_err(),
    );
    let at: Vec<_> = problems
        .iter()
        .map(|(line, column, _)| (*line, column.as_deref()))
        .collect();
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
    let problems = refused(
        f.ledger
            .import_load_file(&f.cards, file.as_bytes())
            .await
            .unwrap_err(),
    );
    let at: Vec<_> = problems
        .iter()
        .map(|(line, column, _)| (*line, column.as_deref()))
        .collect();
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
    let problems = refused(
        f.ledger
            .import_load_file(&f.cards, file.as_bytes())
            .await
            .unwrap_err(),
    );
    let at: Vec<_> = problems
        .iter()
        .map(|(line, column, _)| (*line, column.as_deref()))
        .collect();
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
        let problems = refused(
            f.ledger
                .import_load_file(&f.cards, file.as_bytes())
                .await
                .unwrap_err(),
        );
        assert_eq!(problems.len(), 1, "{file:?}: {problems:?}");
        assert_eq!(problems[0].0, line, "{file:?}");
        assert!(problems[0].2.contains(reason), "{file:?}: {problems:?}");
    }
    assert_nothing_booked(&f);
}

/// Runs a Python 3 script (stdlib only) with `args`; its stdout as JSON.
fn python(script: &str, args: &[&Path]) -> Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python3 prints JSON")
}

/// Reads the CSV export with Python's csv module: header and rows.
const READ_CSV: &str = r#"
import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
print(json.dumps({"header": rows[0], "rows": rows[1:]}))
"#;

/// Reads the fixed-width export by byte slicing, with the widths of
/// docs/prepaid.md; checks every record's length, header and trailer.
const READ_FIXED: &str = r#"
import json, sys
WIDTHS = [("date", 8), ("booked_at", 20), ("entry", 12), ("card_account", 64),
          ("kind", 8), ("reference", 64), ("merchant", 40), ("amount", 20),
          ("currency", 3), ("vat", 20), ("attestation", 8),
          ("attestation_user", 64), ("comment", 200), ("merchant_name", 40)]
RECORD = 1 + sum(w for _, w in WIDTHS)
data = open(sys.argv[1], "rb").read()
assert data.endswith(b"\n")
records = data[:-1].split(b"\n")
assert all(len(r) == RECORD for r in records), [len(r) for r in records]
head, details, trailer = records[0], records[1:-1], records[-1]
assert head[:1] == b"H" and trailer[:1] == b"T"
out = {"orderer": head[1:65].decode().rstrip(), "date": head[65:73].decode(),
       "count": int(trailer[1:13]), "rows": []}
for r in details:
    assert r[:1] == b"D"
    at, row = 1, {}
    for name, width in WIDTHS:
        row[name] = r[at:at + width].decode("utf-8").rstrip(" ")
        at += width
    row["amount"] = int(row["amount"])
    row["entry"] = int(row["entry"])
    out["rows"].append(row)
print(json.dumps(out))
"#;

/// DE 43 of the shop: name (25), city (13), country (2), trimmed.
const SHOP: &str = "CORNER SHOP, \"THE\"       AMSTERDAM    NL";
const BAKERY: &str = "BAKKERIJ DE ZON          UTRECHT      NL";

/// Loads by file, purchases with a merchant on school cards (one
/// attested, one disputed, one partly reversed), one on a city card.
async fn trade(f: &Fixture) {
    let file = format!("{HEADER}L1,s1,80.00,EUR\nL2,s2,30.00,EUR\nL3,c1,20.00,EUR\n");
    f.ledger
        .import_load_file(&f.cards, file.as_bytes())
        .await
        .unwrap();
    let far = i64::MAX / 2;
    let named = |id: &str, name: &str| Merchant {
        id: Some(id.into()),
        name: Some(name.into()),
    };
    let none = Merchant::default();
    f.ledger
        .hold(
            "H1",
            "s1",
            eur(1_250),
            far,
            &named("SHOP, \"THE\" 42", SHOP),
        )
        .await
        .unwrap();
    // A completion without DE 42 and DE 43: the authorization's.
    f.ledger
        .capture("C1", Some("H1"), "s1", eur(1_250), &none)
        .await
        .unwrap();
    f.ledger
        .hold("H2", "s1", eur(500), far, &named("BAKERY", BAKERY))
        .await
        .unwrap();
    // Its own DE 42 and no DE 43: the authorization's name.
    f.ledger
        .capture(
            "C2",
            Some("H2"),
            "s1",
            eur(500),
            &Merchant::with_id("BAKERY 2"),
        )
        .await
        .unwrap();
    f.ledger.reverse("R2", "H2", Some(200)).await.unwrap();
    f.ledger
        .capture(
            "C3",
            None,
            "s2",
            eur(700),
            &Merchant::with_id("KIOSK\tNORTH"),
        )
        .await
        .unwrap();
    f.ledger
        .hold("H4", "c1", eur(300), far, &Merchant::with_id("MARKET"))
        .await
        .unwrap();
    f.ledger
        .capture("C4", Some("H4"), "c1", eur(300), &none)
        .await
        .unwrap();
    f.ledger
        .attest("school", "C1", "anna", "cost centre 4711, crayons")
        .await
        .unwrap();
    f.ledger
        .dispute("school", "C2", "ben", "not ours, \"never\" seen")
        .await
        .unwrap();
}

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

#[tokio::test]
async fn the_export_reads_back_with_python_and_regenerates_byte_for_byte() {
    let f = fixture().await;
    trade(&f).await;
    let day = today();
    let as_of = now_us();
    let csv = f
        .ledger
        .export_day("school", day, ExportFormat::Csv, as_of)
        .unwrap();
    let fixed = f
        .ledger
        .export_day("school", day, ExportFormat::FixedWidth, as_of)
        .unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (csv_path, fixed_path) = (dir.path().join("x.csv"), dir.path().join("x.txt"));
    std::fs::write(&csv_path, &csv).unwrap();
    std::fs::write(&fixed_path, &fixed).unwrap();

    let read = python(READ_CSV, &[&csv_path]);
    let header: Vec<&str> = read["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        header,
        [
            "date",
            "booked_at",
            "entry",
            "card_account",
            "kind",
            "reference",
            "merchant",
            "merchant_name",
            "amount",
            "currency",
            "vat",
            "attestation",
            "attestation_user",
            "comment"
        ]
    );
    let rows = read["rows"].as_array().unwrap();
    let cell = |row: &Value, i: usize| row[i].as_str().unwrap().to_string();
    // card_account, kind, reference, merchant, merchant_name, amount, attestation
    let summary: Vec<Vec<String>> = rows
        .iter()
        .map(|r| [3, 4, 5, 6, 7, 8, 11].map(|i| cell(r, i)).to_vec())
        .collect();
    assert_eq!(
        summary,
        [
            ["s1", "load", "L1", "", "", "8000", ""],
            ["s2", "load", "L2", "", "", "3000", ""],
            [
                "s1",
                "capture",
                "C1",
                "SHOP, \"THE\" 42",
                SHOP,
                "-1250",
                "attested"
            ],
            [
                "s1", "capture", "C2", "BAKERY 2", BAKERY, "-500", "disputed"
            ],
            ["s1", "reversal", "R2", "BAKERY", BAKERY, "200", ""],
            ["s2", "capture", "C3", "KIOSK\tNORTH", "", "-700", "open"],
        ]
    );
    let s = |x: &str| x.to_string();
    for r in rows {
        assert_eq!(cell(r, 0), day.to_string());
        assert!(cell(r, 1).starts_with(&day.to_string()) && cell(r, 1).ends_with('Z'));
        assert_eq!((cell(r, 9), cell(r, 10)), (s("EUR"), s("")));
    }
    assert_eq!(
        (cell(&rows[2], 12), cell(&rows[2], 13)),
        (s("anna"), s("cost centre 4711, crayons"))
    );
    assert_eq!(
        (cell(&rows[3], 12), cell(&rows[3], 13)),
        (s("ben"), s("not ours, \"never\" seen"))
    );

    // The fixed-width file says the same, by byte position.
    let read = python(READ_FIXED, &[&fixed_path]);
    assert_eq!(read["orderer"], "school");
    assert_eq!(read["date"], day.strftime("%Y%m%d").to_string());
    assert_eq!(read["count"], rows.len());
    let fixed_rows = read["rows"].as_array().unwrap();
    assert_eq!(fixed_rows.len(), rows.len());
    for (csv_row, fixed_row) in rows.iter().zip(fixed_rows) {
        assert_eq!(
            fixed_row["entry"].as_i64().unwrap(),
            cell(csv_row, 2).parse::<i64>().unwrap()
        );
        assert_eq!(
            fixed_row["amount"].as_i64().unwrap(),
            cell(csv_row, 8).parse::<i64>().unwrap()
        );
        for (name, i) in [
            ("card_account", 3),
            ("kind", 4),
            ("reference", 5),
            ("merchant_name", 7),
            ("currency", 9),
            ("vat", 10),
            ("attestation", 11),
            ("attestation_user", 12),
        ] {
            assert_eq!(
                fixed_row[name].as_str().unwrap(),
                cell(csv_row, i),
                "{name}"
            );
        }
        // Control characters become spaces in fixed width.
        let merchant = cell(csv_row, 6).replace('\t', " ");
        assert_eq!(fixed_row["merchant"].as_str().unwrap(), merchant);
        let compact: String = cell(csv_row, 1)
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert_eq!(fixed_row["booked_at"].as_str().unwrap(), compact);
    }
    assert_eq!(fixed_rows[3]["comment"], "not ours, \"never\" seen");

    // Regenerated: the same bytes, also later with nothing new.
    let again = |as_of: i64, format: ExportFormat| {
        f.ledger.export_day("school", day, format, as_of).unwrap()
    };
    assert_eq!(again(as_of, ExportFormat::Csv), csv);
    assert_eq!(again(as_of, ExportFormat::FixedWidth), fixed);
    assert_eq!(again(now_us(), ExportFormat::Csv), csv);
    // A later attestation shows in a later export; as of the first time
    // the export is still the same bytes.
    f.ledger
        .attest("school", "C3", "anna", "cost centre 4712")
        .await
        .unwrap();
    let later = again(now_us(), ExportFormat::Csv);
    assert_ne!(later, csv);
    assert!(
        String::from_utf8(later)
            .unwrap()
            .contains("attested,anna,cost centre 4712")
    );
    assert_eq!(again(as_of, ExportFormat::Csv), csv);
    assert_eq!(again(as_of, ExportFormat::FixedWidth), fixed);

    // Other days and orderers: only the header (and trailer).
    let yesterday = day.yesterday().unwrap();
    let empty = again_for(&f, "school", yesterday, ExportFormat::Csv);
    assert_eq!(empty.iter().filter(|b| **b == b'\n').count(), 1);
    let empty = again_for(&f, "school", yesterday, ExportFormat::FixedWidth);
    assert_eq!(
        empty.len(),
        2 * (cardhub_core::prepaid::export::FIXED_RECORD_BYTES + 1)
    );
    let city = String::from_utf8(again_for(&f, "city", day, ExportFormat::Csv)).unwrap();
    assert!(
        city.contains(",c1,capture,C4,MARKET,,-300,EUR,,,,\r\n"),
        "{city}"
    );
    assert!(matches!(
        f.ledger.export_day("nobody", day, ExportFormat::Csv, as_of),
        Err(PrepaidError::UnknownOrderer { .. })
    ));
}

fn again_for(f: &Fixture, orderer: &str, day: jiff::civil::Date, format: ExportFormat) -> Vec<u8> {
    f.ledger.export_day(orderer, day, format, now_us()).unwrap()
}

#[tokio::test]
async fn purchases_are_attested_or_disputed_and_the_unattested_are_reported() {
    let f = fixture().await;
    trade(&f).await;
    // Only captures on small-purchase cards of the orderer.
    for (orderer, reference) in [("school", "L1"), ("school", "R2"), ("city", "C4")] {
        let e = f
            .ledger
            .attest(orderer, reference, "anna", "x")
            .await
            .unwrap_err();
        assert!(
            matches!(e, PrepaidError::NotAttestable { .. }),
            "{reference}: {e}"
        );
    }
    for (orderer, reference) in [("city", "C1"), ("school", "nope")] {
        let e = f
            .ledger
            .attest(orderer, reference, "anna", "x")
            .await
            .unwrap_err();
        assert!(
            matches!(e, PrepaidError::UnknownPurchase { .. }),
            "{reference}: {e}"
        );
    }
    for (user, comment, field) in [
        (" ", "x", "user"),
        ("anna", "", "comment"),
        ("anna", "a\u{7}b", "comment"),
    ] {
        let e = f
            .ledger
            .attest("school", "C3", user, comment)
            .await
            .unwrap_err();
        assert!(
            matches!(e, PrepaidError::InvalidText { field: got, .. } if got == field),
            "{e}"
        );
    }
    let long = "x".repeat(201);
    assert!(matches!(
        f.ledger.dispute("school", "C3", "anna", &long).await,
        Err(PrepaidError::InvalidText {
            field: "comment",
            ..
        })
    ));

    // Too young for a report of purchases older than a day.
    assert!(
        f.ledger
            .unattested("school", 1, now_us())
            .unwrap()
            .is_empty()
    );
    // Two days later: C2 (disputed) and C3 (open), not C1 (attested).
    let later = now_us() + 2 * 86_400_000_000;
    let report = f.ledger.unattested("school", 1, later).unwrap();
    let got: Vec<_> = report
        .iter()
        .map(|p| {
            (
                p.reference.as_str(),
                p.card_account.as_str(),
                p.amount,
                p.merchant.as_deref(),
                p.state,
                p.comment.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "C2",
                "s1",
                eur(500),
                Some("BAKERY 2"),
                AttestationState::Disputed,
                Some("not ours, \"never\" seen")
            ),
            (
                "C3",
                "s2",
                eur(700),
                Some("KIOSK\tNORTH"),
                AttestationState::Open,
                None
            ),
        ]
    );
    // A dispute resolved is attested; an attestation may be disputed.
    let event = f
        .ledger
        .attest("school", "C2", " ben ", " refunded by the shop ")
        .await
        .unwrap();
    assert_eq!(event.state, AttestationState::Attested);
    assert_eq!(
        (event.user.as_str(), event.comment.as_str()),
        ("ben", "refunded by the shop")
    );
    f.ledger
        .dispute("school", "C1", "carl", "double charge")
        .await
        .unwrap();
    let report = f.ledger.unattested("school", 1, later).unwrap();
    let got: Vec<_> = report
        .iter()
        .map(|p| (p.reference.as_str(), p.state))
        .collect();
    assert_eq!(
        got,
        [
            ("C1", AttestationState::Disputed),
            ("C3", AttestationState::Open)
        ]
    );
    assert!(f.ledger.unattested("city", 0, later).unwrap().is_empty());
    assert!(matches!(
        f.ledger.unattested("nobody", 0, later),
        Err(PrepaidError::UnknownOrderer { .. })
    ));
    assert_eq!(f.ledger.audit().unwrap(), Vec::<String>::new());
}
