//! The card file: CSV from the card management system, checked whole before
//! anything is applied.
//!
//! ```text
//! pan,expiry,status,account,institution,currency,profile,product
//! 4761739001010010,2812,active,SE4550000000058398257466,bank-a,SEK,standard,debit
//! ```
//!
//! Columns are found by header name, in any order; `product` may be left
//! out (default `debit`). Lines starting with `#` are comments. Every bad
//! value is reported with its line and column — never with the clear PAN —
//! and one bad line rejects the whole file. Size is bounded: rows, bytes and
//! the length of each value; rows are read one at a time.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::Read;
use std::path::Path;

use crate::cards::card::{CardStatus, Product, UnknownName};
use crate::cards::config::Catalog;
use crate::cards::error::{CardError, LineError};
use crate::iso8583::ValueError;
use crate::iso8583::fields::{Expiry, Pan};
use crate::mask::redact_pans;
use crate::money::Currency;

/// At most this many errors are kept for the report (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;
/// Longest value in any column, in characters.
pub const MAX_VALUE_LEN: usize = 64;

/// One checked line of a card file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRow {
    /// Line in the file, for messages.
    pub line: u64,
    pub pan: Pan,
    pub expiry: Expiry,
    pub status: CardStatus,
    pub account: String,
    pub institution: String,
    pub currency: Currency,
    pub profile: String,
    pub product: Product,
}

/// Bounds on a card file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Data rows (the header not counted).
    pub max_rows: u64,
    /// Bytes of the whole file.
    pub max_bytes: u64,
}

impl Default for FileLimits {
    /// 10 million rows, 2 GiB.
    fn default() -> Self {
        FileLimits {
            max_rows: 10_000_000,
            max_bytes: 2 << 30,
        }
    }
}

/// The columns, in the documented order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Pan,
    Expiry,
    Status,
    Account,
    Institution,
    Currency,
    Profile,
    Product,
}

const COLUMNS: [Column; 8] = [
    Column::Pan,
    Column::Expiry,
    Column::Status,
    Column::Account,
    Column::Institution,
    Column::Currency,
    Column::Profile,
    Column::Product,
];

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Pan => "pan",
            Column::Expiry => "expiry",
            Column::Status => "status",
            Column::Account => "account",
            Column::Institution => "institution",
            Column::Currency => "currency",
            Column::Profile => "profile",
            Column::Product => "product",
        }
    }

    fn required(self) -> bool {
        self != Column::Product
    }
}

/// Why a value of a row is refused (the reason of its [`LineError`]).
/// Values are quoted with card-number-like digits masked; a PAN shows only
/// its length or masked form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("longer than {MAX_VALUE_LEN} characters")]
    TooLong,
    #[error("contains control characters")]
    ControlCharacters,
    #[error("card number must be 12 to 19 digits, got {length} characters")]
    PanLength { length: usize },
    /// The masked card number.
    #[error("card number {masked} fails the Luhn check")]
    Luhn { masked: String },
    #[error("{0}")]
    Expiry(#[from] ValueError),
    /// An unknown status or product.
    #[error("{0}")]
    Name(#[from] UnknownName),
    #[error("account is empty")]
    EmptyAccount,
    #[error("unknown institution {0:?} (no [[institution]] with this id)")]
    UnknownInstitution(String),
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("unknown limits profile {0:?}")]
    UnknownProfile(String),
}

/// Where each column is in the rows.
struct Header {
    index: [Option<usize>; COLUMNS.len()],
    width: usize,
}

/// Errors of one file: the first [`MAX_REPORTED_ERRORS`] kept, all counted.
#[derive(Default)]
struct Errors {
    total: usize,
    kept: Vec<LineError>,
}

impl Errors {
    fn push(&mut self, line: u64, column: Option<&str>, reason: impl Into<String>) {
        self.total += 1;
        if self.kept.len() < MAX_REPORTED_ERRORS {
            self.kept.push(LineError {
                line,
                column: column.map(str::to_string),
                reason: reason.into(),
            });
        }
    }
}

/// Reads and checks a card file.
///
/// # Errors
/// [`CardError::FileRead`] when it cannot be read, [`CardError::FileTooLarge`]
/// past the default [`FileLimits`], [`CardError::File`] with every bad line.
pub fn read(path: &Path, catalog: &Catalog) -> Result<Vec<CardRow>, CardError> {
    let file = std::fs::File::open(path).map_err(|source| CardError::FileRead {
        path: path.to_path_buf(),
        source,
    })?;
    parse(
        std::io::BufReader::new(file),
        path,
        catalog,
        FileLimits::default(),
    )
}

/// Checks a card file read from `input`; `name` is used in messages.
/// Institutions and profiles must be in `catalog`; a PAN may appear once.
///
/// # Errors
/// As [`read`], with `limits` instead of the defaults.
pub fn parse(
    input: impl Read,
    name: &Path,
    catalog: &Catalog,
    limits: FileLimits,
) -> Result<Vec<CardRow>, CardError> {
    let too_large = |limit: String| CardError::FileTooLarge {
        path: name.to_path_buf(),
        limit,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input.take(limits.max_bytes.saturating_add(1)));
    let mut record = csv::ByteRecord::new();
    let mut errors = Errors::default();
    let header = if next_record(&mut reader, &mut record, name)? {
        Header::parse(&record, &mut errors)
    } else {
        errors.push(1, None, "empty file: no header row");
        None
    };
    let mut rows = Vec::new();
    // PAN (length, value) → first line, to find repeats without keeping clear copies.
    let mut seen: HashMap<(usize, u64), u64> = HashMap::new();
    if let Some(header) = header {
        let mut count = 0u64;
        while next_record(&mut reader, &mut record, name)? {
            count += 1;
            if count > limits.max_rows {
                return Err(too_large(format!("{} rows", limits.max_rows)));
            }
            let Some(row) = header.row(&record, catalog, &mut errors) else {
                continue;
            };
            match seen.entry(pan_key(&row.pan)) {
                Entry::Occupied(first) => errors.push(
                    row.line,
                    Some(Column::Pan.name()),
                    format!("card {} already on line {}", row.pan, first.get()),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(row.line);
                    rows.push(row);
                }
            }
        }
    }
    if reader.get_ref().limit() == 0 {
        return Err(too_large(format!("{} bytes", limits.max_bytes)));
    }
    if errors.total > 0 {
        return Err(CardError::File {
            path: name.to_path_buf(),
            total: errors.total,
            errors: errors.kept,
        });
    }
    Ok(rows)
}

/// The next record, `false` at the end.
fn next_record(
    reader: &mut csv::Reader<impl Read>,
    record: &mut csv::ByteRecord,
    name: &Path,
) -> Result<bool, CardError> {
    reader.read_byte_record(record).map_err(|e| {
        let source = match e.into_kind() {
            csv::ErrorKind::Io(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        };
        CardError::FileRead {
            path: name.to_path_buf(),
            source,
        }
    })
}

/// A PAN as a number with its length: unique per PAN, 16 bytes to keep.
fn pan_key(pan: &Pan) -> (usize, u64) {
    let digits = pan.expose();
    // At most 19 digits: below u64::MAX, no overflow.
    let value = digits
        .bytes()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    (digits.len(), value)
}

impl Header {
    /// Finds the columns; `None` (with errors) when some are missing,
    /// unknown or repeated.
    fn parse(record: &csv::ByteRecord, errors: &mut Errors) -> Option<Header> {
        let line = record.position().map_or(1, csv::Position::line);
        let before = errors.total;
        let mut index = [None; COLUMNS.len()];
        for (at, raw) in record.iter().enumerate() {
            let text = String::from_utf8_lossy(raw);
            let name = text.trim_start_matches('\u{feff}').to_ascii_lowercase();
            match COLUMNS.iter().position(|c| c.name() == name) {
                Some(c) if index[c].is_some() => {
                    errors.push(line, Some(&name), "column appears twice");
                }
                Some(c) => index[c] = Some(at),
                None => errors.push(
                    line,
                    Some(&shorten(&name)),
                    "unknown column (expected pan, expiry, status, account, institution, currency, profile, product)",
                ),
            }
        }
        for (c, column) in COLUMNS.iter().enumerate() {
            if column.required() && index[c].is_none() {
                errors.push(line, Some(column.name()), "required column missing");
            }
        }
        (errors.total == before).then_some(Header {
            index,
            width: record.len(),
        })
    }

    /// Checks one data row; `None` when anything in it is wrong (all of it
    /// reported).
    fn row(
        &self,
        record: &csv::ByteRecord,
        catalog: &Catalog,
        errors: &mut Errors,
    ) -> Option<CardRow> {
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != self.width {
            errors.push(
                line,
                None,
                format!("{} fields, the header has {}", record.len(), self.width),
            );
            return None;
        }
        let mut fields = Fields {
            header: self,
            record,
            line,
            errors,
        };
        // Every column is read before any `?`, so all problems of the row are reported.
        let pan = fields.get(Column::Pan, parse_pan);
        let expiry = fields.get(Column::Expiry, |s| Ok(Expiry::parse(s)?));
        let status = fields.get(Column::Status, |s| Ok(s.parse::<CardStatus>()?));
        let account = fields.get(Column::Account, |s| {
            if s.is_empty() {
                Err(ValueProblem::EmptyAccount)
            } else {
                Ok(s.to_string())
            }
        });
        let institution = fields.get(Column::Institution, |s| {
            if catalog.has_institution(s) {
                Ok(s.to_string())
            } else {
                Err(ValueProblem::UnknownInstitution(redact_pans(s)))
            }
        });
        let currency = fields.get(Column::Currency, |s| {
            Currency::parse(s).map_err(|_| ValueProblem::UnknownCurrency(redact_pans(s)))
        });
        let profile = fields.get(Column::Profile, |s| {
            if catalog.has_profile(s) {
                Ok(s.to_string())
            } else {
                Err(ValueProblem::UnknownProfile(redact_pans(s)))
            }
        });
        let product = fields.get(Column::Product, |s| match s {
            "" => Ok(Product::Debit),
            s => Ok(s.parse::<Product>()?),
        });
        Some(CardRow {
            line,
            pan: pan?,
            expiry: expiry?,
            status: status?,
            account: account?,
            institution: institution?,
            currency: currency?,
            profile: profile?,
            product: product?,
        })
    }
}

/// The values of one row, read column by column with errors recorded.
struct Fields<'a> {
    header: &'a Header,
    record: &'a csv::ByteRecord,
    line: u64,
    errors: &'a mut Errors,
}

impl Fields<'_> {
    /// The column's value parsed, or `None` with the problem recorded. An
    /// absent optional column reads as empty.
    fn get<T>(
        &mut self,
        column: Column,
        parse: impl FnOnce(&str) -> Result<T, ValueProblem>,
    ) -> Option<T> {
        let raw = match self.header.index[column as usize] {
            Some(i) => &self.record[i],
            None => &[][..],
        };
        match value(raw).and_then(parse) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.errors
                    .push(self.line, Some(column.name()), reason.to_string());
                None
            }
        }
    }
}

/// A field as text: UTF-8, bounded, no control characters.
fn value(raw: &[u8]) -> Result<&str, ValueProblem> {
    let s = std::str::from_utf8(raw).map_err(|_| ValueProblem::NotUtf8)?;
    if s.chars().count() > MAX_VALUE_LEN {
        return Err(ValueProblem::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(ValueProblem::ControlCharacters);
    }
    Ok(s)
}

/// A card number: 12–19 digits with a right Luhn check digit. Messages show
/// the masked form only.
fn parse_pan(s: &str) -> Result<Pan, ValueProblem> {
    let pan = Pan::new(s).map_err(|_| ValueProblem::PanLength {
        length: s.chars().count(),
    })?;
    if !pan.luhn_ok() {
        return Err(ValueProblem::Luhn {
            masked: pan.to_string(),
        });
    }
    Ok(pan)
}

/// A header name fit for a message: bounded, card numbers masked (a file
/// without its header row starts with one).
fn shorten(name: &str) -> String {
    redact_pans(&name.chars().take(MAX_VALUE_LEN).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "pan,expiry,status,account,institution,currency,profile,product\n";

    fn catalog() -> Catalog {
        Catalog::new(["bank-a", "bank-b"], ["standard", "prepaid"])
    }

    fn check(text: &str) -> Result<Vec<CardRow>, CardError> {
        parse(
            text.as_bytes(),
            Path::new("cards.csv"),
            &catalog(),
            FileLimits::default(),
        )
    }

    fn errors(text: &str) -> Vec<String> {
        match check(text) {
            Err(CardError::File { errors, .. }) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected line errors, got {other:?}"),
        }
    }

    #[test]
    fn good_rows_in_any_column_order() {
        let rows = check(
            "# demo\nproduct,profile,currency,institution,account,status,expiry,pan\n\
             prepaid,prepaid,978,bank-b,ACC-2,inactive,3001,4761739001010028\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.line, r.pan.expose()), (3, "4761739001010028"));
        assert_eq!(
            (r.status, r.product),
            (CardStatus::Inactive, Product::Prepaid)
        );
        assert_eq!(
            (r.currency.code, r.expiry.year, r.expiry.month),
            ("EUR", 30, 1)
        );

        let rows = check(
            "pan,expiry,status,account,institution,currency,profile\n\
             4761739001010010,2812,ACTIVE,ACC-1,bank-a,sek,standard\n",
        )
        .unwrap();
        assert_eq!(rows[0].product, Product::Debit);
        assert_eq!(rows[0].currency.numeric, 752);
    }

    #[test]
    fn every_bad_value_is_reported_with_line_and_column() {
        let text = format!(
            "{HEADER}\
             4761739001010010,2812,active,A1,bank-a,EUR,standard,debit\n\
             4761739001010011,2813,frozen,A2,bank-z,XXX,gold,credit\n\
             12AB,2812,active,,bank-a,EUR,standard,\n\
             4761739001010010,2812,active,A1,bank-a,EUR,standard,debit\n\
             4761739001010028,2812,active\n"
        );
        let errs = errors(&text);
        let expected = [
            "line 3, column pan: card number 476173******0011 fails the Luhn check",
            "line 3, column expiry: expiry month 13 is not 01 to 12",
            "line 3, column status: unknown card status \"frozen\"",
            "line 3, column institution: unknown institution \"bank-z\"",
            "line 3, column currency: unknown currency \"XXX\"",
            "line 3, column profile: unknown limits profile \"gold\"",
            "line 3, column product: unknown product \"credit\"",
            "line 4, column pan: card number must be 12 to 19 digits, got 4 characters",
            "line 4, column account: account is empty",
            "line 5, column pan: card 476173******0010 already on line 2",
            "line 6: 3 fields, the header has 8",
        ];
        assert_eq!(errs.len(), expected.len(), "{errs:#?}");
        for (got, want) in errs.iter().zip(expected) {
            assert!(
                got.starts_with(want),
                "{got:?} does not start with {want:?}"
            );
        }
        assert!(!errs.concat().contains("4761739001010011"));
    }

    #[test]
    fn header_problems_stop_before_the_rows() {
        let errs = errors("pan,expiry,stauts,pan\n1,2,3,4\n");
        assert_eq!(errs.len(), 7, "{errs:#?}");
        assert!(errs[0].starts_with("line 1, column stauts: unknown column"));
        assert!(errs[1].starts_with("line 1, column pan: column appears twice"));
        assert!(
            errs.iter()
                .any(|e| e.contains("column status: required column missing"))
        );
        assert_eq!(errors(""), ["line 1: empty file: no header row"]);
        // A byte-order mark before the header is not part of the first name.
        assert!(check(&format!("\u{feff}{HEADER}")).unwrap().is_empty());
    }

    #[test]
    fn misplaced_card_numbers_are_not_echoed() {
        let row = "4761739001010010,2812,active,A1,bank-a,EUR,standard,debit\n";
        let no_header = errors(row).concat();
        assert!(
            no_header.contains("column 476173******0010: unknown column"),
            "{no_header}"
        );
        let shifted = errors(&format!(
            "{HEADER}2812,4761739001010010,4761739001010010,4761739001010010,4761739001010010,4761739001010010,4761739001010010,4761739001010010\n"
        ))
        .concat();
        assert!(shifted.contains("476173******0010"), "{shifted}");
        assert!(!shifted.contains("4761739001010010"), "{shifted}");
    }

    #[test]
    fn errors_are_capped_but_counted() {
        let mut text = HEADER.to_string();
        for _ in 0..150 {
            text.push_str("1,2812,active,A,bank-a,EUR,standard,debit\n");
        }
        let Err(CardError::File { total, errors, .. }) = check(&text) else {
            panic!("expected errors");
        };
        assert_eq!((total, errors.len()), (150, MAX_REPORTED_ERRORS));
    }

    #[test]
    fn size_is_bounded() {
        let row = "4761739001010010,2812,active,A1,bank-a,EUR,standard,debit\n";
        let text = format!("{HEADER}{row}{}", row.replace("0010,", "0028,"));
        let limits = FileLimits {
            max_rows: 1,
            max_bytes: 1 << 20,
        };
        let err = parse(text.as_bytes(), Path::new("c.csv"), &catalog(), limits).unwrap_err();
        assert!(err.to_string().contains("more than 1 rows"), "{err}");
        let limits = FileLimits {
            max_rows: 10,
            max_bytes: 80,
        };
        let err = parse(text.as_bytes(), Path::new("c.csv"), &catalog(), limits).unwrap_err();
        assert!(err.to_string().contains("more than 80 bytes"), "{err}");
        let long = format!(
            "{HEADER}4761739001010010,2812,active,{},bank-a,EUR,standard,\n",
            "A".repeat(65)
        );
        assert!(errors(&long)[0].contains("column account: longer than 64 characters"));
    }
}
