//! Tests of `balance_file`: each format's good files and every kind of
//! problem, with exact lines and columns.

use std::io::Read;

use super::*;

mod fixed;
mod xml;

const CSV: &str = r##"
format = "csv"
account = "account"
available = "available"
currency = "currency"
as_of = "as_of"
"##;

const FIXED: &str = r##"
format = "fixed"
[header]
record_type = "H"
as_of = { start = 2, length = 14 }
as_of_format = "%Y%m%d%H%M%S"
[detail]
record_type = "D"
account = { start = 2, length = 10 }
available = { start = 12, length = 10, sign = "leading" }
currency = { start = 22, length = 3 }
[trailer]
record_type = "T"
count = { start = 2, length = 6 }
total = { start = 8, length = 12, sign = "leading" }
"##;

const XML: &str = r##"
format = "xml"
record = "Balances/Account"
account = "@number"
available = "Available"
currency = "Available/@currency"
as_of = "Balances/@asOf"
"##;

fn format(toml_text: &str) -> BalanceFormat {
    toml::from_str(toml_text).expect("format parses")
}

/// A format with `extra` keys added at the top (before any table).
fn with(base: &str, extra: &str) -> BalanceFormat {
    let (top, tables) = base
        .split_once("\n[")
        .map_or((base, ""), |(t, rest)| (t, rest));
    let tables = if tables.is_empty() {
        String::new()
    } else {
        format!("\n[{tables}")
    };
    format(&format!("{top}\n{extra}\n{tables}"))
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

type Outcome = Result<(FileSummary, Vec<BalanceRow>), BalanceFileError>;

fn run(format: &BalanceFormat, input: impl Read, supplied: Option<Timestamp>) -> Outcome {
    let mut rows = Vec::new();
    let summary = read(format, input, supplied, |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok((summary, rows))
}

fn rows(format: &BalanceFormat, text: &str) -> Vec<(String, i64, &'static str, u64)> {
    let (_, rows) = run(format, text.as_bytes(), None).unwrap_or_else(|e| panic!("{}", e.report()));
    rows.into_iter()
        .map(|r| (r.account, r.available_minor, r.currency.code, r.line))
        .collect()
}

/// A detail record of the `FIXED` layout.
fn detail(account: &str, amount: &str, currency: &str) -> String {
    format!("D{account:<10}{amount:>10}{currency}")
}

fn problems(format: &BalanceFormat, text: &[u8], supplied: Option<Timestamp>) -> Vec<String> {
    match run(format, text, supplied) {
        Err(BalanceFileError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("expected problems, got {other}"),
        Ok((_, rows)) => panic!("expected problems, got {} rows", rows.len()),
    }
}

fn row(
    account: &str,
    minor: i64,
    code: &'static str,
    line: u64,
) -> (String, i64, &'static str, u64) {
    (account.to_owned(), minor, code, line)
}

// ---- CSV ----

#[test]
fn csv_good_file() {
    let text = "account,available,currency,as_of,name\n\
                A-1001,1234.50,EUR,2026-11-21T22:00:00Z,x\n\
                A-1002,-3.00,978,2026-11-21T22:00:00Z,y\n\
                \"A-1003\", 7 ,eur,2026-11-21T23:00:00+01:00,\"z, q\"\n";
    let f = format(CSV);
    let (summary, _) = run(&f, text.as_bytes(), None).unwrap();
    assert_eq!(summary.as_of, at("2026-11-21T22:00:00Z"));
    assert_eq!(summary.rows, 3);
    assert_eq!(
        rows(&f, text),
        [
            row("A-1001", 123450, "EUR", 2),
            row("A-1002", -300, "EUR", 3),
            row("A-1003", 700, "EUR", 4),
        ]
    );
}

#[test]
fn csv_columns_in_any_order_with_another_delimiter() {
    let f = with(CSV, "delimiter = \";\"");
    let text = "\u{feff}AS_OF;Currency;Available;Account\n\
                2026-11-21T22:00:00Z;JPY;1250;J-1\n\
                2026-11-21T22:00:00Z;KWD;-1.250;K-1\n\
                2026-11-21T22:00:00Z;KWD;2.5;K-2\n";
    assert_eq!(
        rows(&f, text),
        [
            row("J-1", 1250, "JPY", 2),
            row("K-1", -1250, "KWD", 3),
            row("K-2", 2500, "KWD", 4),
        ]
    );
}

#[test]
fn csv_minor_units_and_a_fixed_currency() {
    let f = format(
        r##"
format = "csv"
account = "konto"
available = "saldo"
amount = "minor"
currency_code = "SEK"
as_of_line = "#as_of="
"##,
    );
    let text = "#as_of=2026-11-21T22:00:00Z\nkonto,saldo\nS-1,123450\nS-2,-300\n";
    assert_eq!(
        rows(&f, text),
        [row("S-1", 123450, "SEK", 3), row("S-2", -300, "SEK", 4)]
    );
    let errs = problems(
        &f,
        b"#as_of=2026-11-21T22:00:00Z\nkonto,saldo\nS-1,12.50\n",
        None,
    );
    assert_eq!(
        errs,
        ["line 3, column saldo: \"12.50\" is not an amount in minor units of SEK"]
    );
}

#[test]
fn csv_every_bad_value_is_reported_with_line_and_column() {
    let text = b"account,available,currency,as_of\n\
                A-1001,12.50,EUR,2026-11-21T22:00:00Z\n\
                A-1002,\"12,3x\",EUR,2026-11-21T22:00:00Z\n\
                A-1003,1.00,XYZ,2026-11-21T22:00:00Z\n\
                ,1.00,EUR,2026-11-21T22:00:00Z\n\
                A-1001,5.00,EUR,2026-11-21T22:00:00Z\n\
                A-1006,1.5,JPY,2026-11-21T22:00:00Z\n\
                A-1007,1.00,EUR\n\
                A-1008,1.00,EUR,2026-11-22T22:00:00Z\n\
                A-1009,1.0x,XYZ,yesterday\n\
                A-\xff,1.00,EUR,2026-11-21T22:00:00Z\n";
    let errs = problems(&format(CSV), text, None);
    let expected = [
        "line 3, column available: \"12,3x\" is not an amount in EUR",
        "line 4, column currency: unknown currency \"XYZ\"",
        "line 5, column account: account is empty",
        "line 6, column account: account \"A-1001\" already on line 2",
        "line 7, column available: \"1.5\" is not an amount in JPY",
        "line 8: 3 fields, the header has 4",
        "line 9, column as_of: as-of 2026-11-22T22:00:00Z differs from 2026-11-21T22:00:00Z on line 2",
        "line 10, column currency: unknown currency \"XYZ\"",
        "line 10, column available: \"1.0x\" is not an amount",
        "line 10, column as_of: \"yesterday\" is not an RFC 3339 time like 2026-11-21T22:00:00Z",
        "line 11, column account: not UTF-8 text",
    ];
    assert_eq!(errs, expected);
}

#[test]
fn csv_header_problems_stop_the_read() {
    let f = format(CSV);
    assert_eq!(
        problems(&f, b"account,currency,as_of,account\nA,EUR,x,A\n", None),
        [
            "line 1, column account: column appears twice",
            "line 1, column available: column missing from the header row",
        ]
    );
    assert_eq!(problems(&f, b"", None), ["line 1: no header row"]);
    let f = with(
        CSV.replace("as_of = \"as_of\"", "").as_str(),
        "as_of_line = \"#as_of=\"",
    );
    assert_eq!(
        problems(&f, b"account,available,currency\n", None),
        ["line 1: the first line must give the as-of, starting \"#as_of=\""]
    );
}

#[test]
fn supplied_as_of_stands_in_for_or_must_match_the_file() {
    let no_as_of = format(&CSV.replace("as_of = \"as_of\"", ""));
    let text = "account,available,currency\nA-1,1.00,EUR\n";
    let (summary, _) = run(&no_as_of, text.as_bytes(), Some(at("2026-11-21T22:00:00Z"))).unwrap();
    assert_eq!(summary.as_of, at("2026-11-21T22:00:00Z"));
    assert_eq!(
        problems(&no_as_of, text.as_bytes(), None),
        ["file: no as-of: neither the file nor its sender gives one"]
    );

    let f = format(CSV);
    let text = "account,available,currency,as_of\nA-1,1.00,EUR,2026-11-21T22:00:00Z\n";
    let same = run(&f, text.as_bytes(), Some(at("2026-11-21T23:00:00+01:00")));
    assert_eq!(same.unwrap().0.as_of, at("2026-11-21T22:00:00Z"));
    assert_eq!(
        problems(&f, text.as_bytes(), Some(at("2026-11-20T22:00:00Z"))),
        [
            "line 2, column as_of: as-of 2026-11-21T22:00:00Z differs from the one supplied with the file, 2026-11-20T22:00:00Z"
        ]
    );
}

#[test]
fn problems_are_capped_but_counted_and_reported_one_a_line() {
    let mut text = "account,available,currency,as_of\n".to_string();
    for i in 0..150 {
        text.push_str(&format!("A-{i},x,EUR,2026-11-21T22:00:00Z\n"));
    }
    let err = run(&format(CSV), text.as_bytes(), None).unwrap_err();
    let BalanceFileError::Invalid { problems, more } = &err else {
        panic!("{err}");
    };
    assert_eq!((problems.len(), *more), (MAX_REPORTED_PROBLEMS, 50));
    let report = err.report();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(
        lines[0],
        "line 2, column available: \"x\" is not an amount in EUR"
    );
    assert_eq!(lines[100], "and 50 more problems");
    assert!(err.is_bank_fault() && !err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("balance file refused: 150 problems; first: line 2")
    );
}

#[test]
fn rows_stop_going_to_the_sink_after_a_problem_and_a_refusing_sink_stops_the_read() {
    let text = "account,available,currency,as_of\n\
                A-1,1.00,EUR,2026-11-21T22:00:00Z\n\
                A-2,x,EUR,2026-11-21T22:00:00Z\n\
                A-3,1.00,EUR,2026-11-21T22:00:00Z\n";
    let mut seen = Vec::new();
    let result = read(&format(CSV), text.as_bytes(), None, |row| {
        seen.push(row.account);
        Ok(())
    });
    assert!(result.is_err());
    assert_eq!(seen, ["A-1"]);

    let result = read(&format(CSV), text.as_bytes(), None, |_| {
        Err(StoreError::WriterGone)
    });
    let err = result.unwrap_err();
    assert!(matches!(
        &err,
        BalanceFileError::Sink(StoreError::WriterGone)
    ));
    assert!(err.is_retryable() && !err.is_bank_fault());
}

#[test]
fn card_numbers_in_values_are_masked() {
    let text = "account,available,currency,as_of\n\
                4761739001010010,x,4761739001010010,2026-11-21T22:00:00Z\n";
    let errs = problems(&format(CSV), text.as_bytes(), None).concat();
    assert!(errs.contains("476173******0010"), "{errs}");
    assert!(!errs.contains("4761739001010010"), "{errs}");
}

/// XML problems quote the file's markup (names, the parser's messages):
/// card numbers there are masked as in values (found by fuzzing).
#[test]
fn card_numbers_in_xml_markup_are_masked() {
    let f = format(XML);
    let head = "<Balances asOf=\"2026-11-21T22:00:00Z\">\n";
    for text in [
        format!("{head}<p4761739001010010:Account/></Balances>"),
        format!("{head}<Account4761739001010010></Account></Balances>"),
        "<B4761739001010010>\n</B4761739001010010>".to_string(),
        format!("{head}<Account4761739001010010>"),
    ] {
        let errs = problems(&f, text.as_bytes(), None).concat();
        assert!(errs.contains("476173******0010"), "{errs}");
        assert!(!errs.contains("4761739001010010"), "{errs}");
    }
}

// ---- every format ----

/// A CSV file generated row by row, never held whole.
struct Generated {
    rows: u64,
    next: u64,
    line: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(rows: u64) -> Self {
        Generated {
            rows,
            next: 0,
            line: b"account,available,currency,as_of\n".to_vec(),
            at: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.line.len() {
            if self.next == self.rows {
                return Ok(0);
            }
            let n = self.next;
            self.line = format!(
                "A-{n:08},{}.{:02},EUR,2026-11-21T22:00:00Z\n",
                n % 5000,
                n % 100
            )
            .into_bytes();
            self.at = 0;
            self.next += 1;
        }
        let n = buf.len().min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_large_file_streams_through_and_hashes_the_bytes_read() {
    let rows = 200_000;
    let f = format(CSV);
    let mut count = 0u64;
    let mut sum = 0i64;
    let summary = read(&f, Generated::new(rows), None, |row| {
        count += 1;
        sum += row.available_minor;
        Ok(())
    })
    .unwrap();
    assert_eq!((summary.rows, count), (rows, rows));
    assert!(sum > 0);
    let mut bytes = Vec::new();
    Generated::new(rows).read_to_end(&mut bytes).unwrap();
    let expected: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(summary.sha256, expected);
    let again = read(&f, Generated::new(rows), None, |_| Ok(())).unwrap();
    assert_eq!(again.sha256, summary.sha256);
}

#[test]
fn the_same_rows_in_other_bytes_hash_differently() {
    let f = format(CSV);
    let a = "account,available,currency,as_of\nA-1,1.00,EUR,2026-11-21T22:00:00Z\n";
    let b = a.replace('\n', "\r\n");
    let (ha, ra) = run(&f, a.as_bytes(), None).unwrap();
    let (hb, rb) = run(&f, b.as_bytes(), None).unwrap();
    assert_eq!(ra, rb);
    assert_ne!(ha.sha256, hb.sha256);
}

#[test]
fn limits_bound_the_file_its_records_and_rows() {
    let f = format(CSV);
    let text = "account,available,currency,as_of\n\
                A-1,1.00,EUR,2026-11-21T22:00:00Z\n\
                A-2,1.00,EUR,2026-11-21T22:00:00Z\n";
    let limited = |limits: ReadLimits, f: &BalanceFormat, text: &str| -> Vec<String> {
        match read_with_limits(f, text.as_bytes(), None, limits, |_| Ok(())) {
            Err(BalanceFileError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("{other:?}"),
        }
    };
    let limits = ReadLimits {
        max_bytes: 80,
        ..ReadLimits::default()
    };
    assert_eq!(
        limited(limits, &f, text),
        ["line 3: file is larger than 80 bytes"]
    );
    let limits = ReadLimits {
        max_rows: 1,
        ..ReadLimits::default()
    };
    assert_eq!(limited(limits, &f, text), ["line 3: more than 1 rows"]);
    let limits = ReadLimits {
        max_record_bytes: 40,
        ..ReadLimits::default()
    };
    let long = text.replace("A-2", &"A".repeat(50));
    assert_eq!(
        limited(limits, &f, &long),
        ["line 3: record is longer than 40 bytes"]
    );
    let fixed = format(FIXED);
    let long = format!(
        "H20261121220000\n{}\nT000000+00000000000\n",
        "D".repeat(100)
    );
    assert_eq!(
        limited(limits, &fixed, &long),
        ["line 2: record is longer than 40 bytes"]
    );
    let xml = format(XML);
    let long = format!(
        "<Balances asOf=\"2026-11-21T22:00:00Z\">\n<!--{}--></Balances>",
        "-".repeat(100)
    );
    assert_eq!(
        limited(limits, &xml, &long),
        ["line 2: record is longer than 40 bytes"]
    );
}

#[test]
fn formats_refuse_unknown_keys() {
    let err = toml::from_str::<BalanceFormat>(&format!("{CSV}\ncolour = \"red\"\n")).unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    let err = toml::from_str::<BalanceFormat>(&FIXED.replace("[trailer]", "[trailer]\nextra = 1"))
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `extra`"), "{err}");
    assert!(toml::from_str::<BalanceFormat>("format = \"json\"").is_err());
}

#[test]
fn check_reports_every_format_problem() {
    for good in [CSV, FIXED, XML] {
        assert_eq!(format(good).check(), Ok(()));
    }
    let csv = format(
        r##"
format = "csv"
delimiter = ";;"
account = "a"
available = "A"
currency = "c"
currency_code = "EUR"
as_of = "t"
as_of_line = "#"
time_zone = "Mars/Olympus"
"##,
    );
    let problems = csv.check().unwrap_err().to_string();
    for want in [
        "delimiter: one ASCII character",
        "available: column \"A\" is also account",
        "currency and currency_code: give one, not both",
        "as_of and as_of_line: give one, not both",
        "time_zone:",
    ] {
        assert!(problems.contains(want), "{want} not in {problems}");
    }
    let fixed = format(
        &FIXED
            .replace(
                "account = { start = 2, length = 10 }",
                "account = { start = 1, length = 0 }",
            )
            .replace(
                "currency = { start = 22, length = 3 }",
                "currency = { start = 20, length = 3 }",
            )
            .replace("record_type = \"T\"", "record_type = \"DT\""),
    );
    let problems = fixed.check().unwrap_err().to_string();
    for want in [
        "detail.record_type and trailer.record_type: \"D\" and \"DT\" cannot be told apart",
        "detail.account: start and length count from 1",
        "detail.currency: bytes 20-22 overlap detail.available (12-21)",
    ] {
        assert!(problems.contains(want), "{want} not in {problems}");
    }
    let xml = format(
        &XML.replace("\"@number\"", "\"a:b\"")
            .replace("Balances/@asOf", "Other/@asOf"),
    );
    let problems = xml.check().unwrap_err().to_string();
    for want in [
        "account: \"a:b\": steps are local names",
        "as_of: a path from the root, starting Balances/",
    ] {
        assert!(problems.contains(want), "{want} not in {problems}");
    }
    let err = read(&xml, &b""[..], None, |_| Ok(())).unwrap_err();
    assert!(matches!(err, BalanceFileError::Format(_)), "{err}");
}

// ---- properties ----

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any bytes: an answer (rows or problems), never a panic.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            for f in [CSV, FIXED, XML] {
                let _ = run(&format(f), bytes.as_slice(), None);
            }
        }

        /// A fixed-width or XML file cut anywhere before its end is refused.
        #[test]
        fn cut_files_are_refused(cut in 0usize..1000) {
            let fixed = format!(
                "H20261121220000\n{}\n{}\nT000002+00000000050",
                detail("A-1", "+000000100", "EUR"),
                detail("A-2", "-000000050", "EUR"),
            );
            let xml = "<Balances asOf=\"2026-11-21T22:00:00Z\">\
                <Account number=\"A-1\"><Available currency=\"EUR\">1.00</Available></Account>\
                <Account number=\"A-2\"><Available currency=\"EUR\">-0.50</Available></Account>\
                </Balances>";
            for (f, text) in [(FIXED, fixed.as_str()), (XML, xml)] {
                prop_assert!(run(&format(f), text.as_bytes(), None).is_ok());
                let cut = cut % text.len();
                let result = run(&format(f), &text.as_bytes()[..cut], None);
                prop_assert!(matches!(result, Err(BalanceFileError::Invalid { .. })), "{}", &text[..cut]);
            }
        }

        /// Rows written as CSV and as fixed-width records read back the same.
        #[test]
        fn written_rows_read_back(amounts in proptest::collection::vec(-999_999_999i64..999_999_999, 0..20)) {
            let mut csv = String::from("account,available,currency,as_of\n");
            let mut fixed = String::from("H20261121220000\n");
            for (i, minor) in amounts.iter().enumerate() {
                let sign = if *minor < 0 { "-" } else { "" };
                let (units, cents) = (minor.abs() / 100, minor.abs() % 100);
                csv.push_str(&format!("A-{i},{sign}{units}.{cents:02},EUR,2026-11-21T22:00:00Z\n"));
                let signed = format!("{}{:09}", if *minor < 0 { '-' } else { '+' }, minor.abs());
                fixed.push_str(&format!("{}\n", detail(&format!("A-{i}"), &signed, "EUR")));
            }
            let total: i64 = amounts.iter().sum();
            let sign = if total < 0 { '-' } else { '+' };
            fixed.push_str(&format!("T{:06}{sign}{:011}\n", amounts.len(), total.abs()));
            for (f, text) in [(CSV, &csv), (FIXED, &fixed)] {
                // An empty CSV file gives no as-of of its own.
                let supplied = Some(at("2026-11-21T22:00:00Z"));
                let (summary, rows) = run(&format(f), text.as_bytes(), supplied)
                    .unwrap_or_else(|e| panic!("{}\n{text}", e.report()));
                let read: Vec<i64> = rows.iter().map(|r| r.available_minor).collect();
                prop_assert_eq!(&read, &amounts);
                prop_assert_eq!(summary.rows, amounts.len() as u64);
            }
        }
    }
}
