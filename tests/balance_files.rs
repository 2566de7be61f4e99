//! The balance-file fixtures read with the example formats in
//! `fixtures/balances/formats.toml`: real files, read as the drop folder will.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::PathBuf;

use cardhub_core::standin::balance_file::{
    BalanceFileError, BalanceFormat, BalanceRow, FileSummary, read,
};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/balances")
}

fn formats() -> BTreeMap<String, BalanceFormat> {
    let text = std::fs::read_to_string(dir().join("formats.toml")).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("formats.toml: {e}"))
}

fn read_fixture(
    format: &str,
    file: &str,
) -> Result<(FileSummary, Vec<BalanceRow>), BalanceFileError> {
    let formats = formats();
    let mut rows = Vec::new();
    let input = File::open(dir().join(file)).unwrap();
    let summary = read(&formats[format], input, None, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok((summary, rows))
}

/// (account, minor units, currency code) of each row.
fn values(rows: &[BalanceRow]) -> Vec<(&str, i64, &str)> {
    rows.iter()
        .map(|r| (r.account.as_str(), r.available_minor, r.currency.code))
        .collect()
}

fn sha256(file: &str) -> [u8; 32] {
    Sha256::digest(std::fs::read(dir().join(file)).unwrap()).into()
}

fn as_of() -> Timestamp {
    "2026-11-21T22:00:00Z".parse().unwrap()
}

#[test]
fn every_example_format_checks() {
    let formats = formats();
    assert_eq!(
        formats.keys().map(String::as_str).collect::<Vec<_>>(),
        ["csv", "fixed", "xml"]
    );
    for (name, format) in &formats {
        format.check().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn good_fixtures_read_whole() {
    let bank_a = [
        ("A-1001", 150000, "USD"),
        ("A-1002", 25075, "USD"),
        ("A-1003", 0, "USD"),
        ("A-1004", -1240, "USD"),
    ];
    for (format, file) in [("csv", "csv-good.csv"), ("xml", "xml-good.xml")] {
        let (summary, rows) = read_fixture(format, file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(values(&rows), bank_a, "{file}");
        assert_eq!((summary.as_of, summary.rows), (as_of(), 4), "{file}");
        assert_eq!(summary.sha256, sha256(file), "{file}");
    }
    let (summary, rows) = read_fixture("fixed", "fixed-good.txt").unwrap();
    assert_eq!(
        values(&rows),
        [
            ("B-2001", 98000, "EUR"),
            ("B-2002", -4550, "EUR"),
            ("B-9001", 0, "EUR"),
            ("B-9002", 2500, "EUR"),
        ]
    );
    assert_eq!(rows[0].line, 2);
    assert_eq!((summary.as_of, summary.rows), (as_of(), 4));
    assert_eq!(summary.sha256, sha256("fixed-good.txt"));
}

#[test]
fn one_bad_line_refuses_the_file_with_a_report() {
    let err = read_fixture("csv", "csv-bad-line.csv").unwrap_err();
    assert!(err.is_bank_fault());
    assert_eq!(
        err.report(),
        "line 4, column available: \"250,7x\" is not an amount in USD\n"
    );
}

/// Reads `text` with the example CSV format and a sender's as-of.
fn read_csv(text: &str, supplied: Option<Timestamp>) -> Result<FileSummary, BalanceFileError> {
    read(&formats()["csv"], text.as_bytes(), supplied, |_| Ok(()))
}

#[test]
fn the_as_of_line_is_optional_when_the_sender_gives_the_as_of() {
    let good = std::fs::read_to_string(dir().join("csv-good.csv")).unwrap();
    let (line, rest) = good.split_once('\n').unwrap();
    assert_eq!(line, "#as_of=2026-11-21T22:00:00Z");
    let summary = read_csv(rest, Some(as_of())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((summary.as_of, summary.rows), (as_of(), 4));
    // With the line too, both must be the same instant.
    assert_eq!(read_csv(&good, Some(as_of())).unwrap().rows, 4);
    let later: Timestamp = "2026-11-21T23:00:00Z".parse().unwrap();
    let err = read_csv(&good, Some(later)).unwrap_err();
    assert_eq!(
        err.report(),
        "line 1, column as-of line: as-of 2026-11-21T22:00:00Z differs from the one supplied with the file, 2026-11-21T23:00:00Z\n"
    );
    // Without a sender's as-of the line is required.
    let err = read_csv(rest, None).unwrap_err();
    assert_eq!(
        err.report(),
        "line 1: the first line must give the as-of, starting \"#as_of=\"\n"
    );
}

#[test]
fn fixture_accounts_are_the_demo_cards_accounts() {
    let cards = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv"),
    )
    .unwrap();
    let accounts: BTreeSet<&str> = cards
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("pan,"))
        .filter_map(|l| l.split(',').nth(3))
        .collect();
    for (format, file) in [
        ("csv", "csv-good.csv"),
        ("fixed", "fixed-good.txt"),
        ("xml", "xml-good.xml"),
    ] {
        let (_, rows) = read_fixture(format, file).unwrap();
        for row in rows {
            assert!(
                accounts.contains(row.account.as_str()),
                "{file}: {}",
                row.account
            );
        }
    }
}
