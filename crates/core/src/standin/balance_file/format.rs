//! The balance-file formats as configured (`[institution.balances]`), and
//! the pieces every format shares: where the currency comes from, how the
//! as-of is written.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::{ValueProblem, shown};
use crate::money::Currency;

/// How an institution's balance files are written: its
/// `[institution.balances]` section, `format = "csv" | "fixed" | "xml"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum BalanceFormat {
    Csv(CsvFormat),
    Fixed(FixedFormat),
    Xml(XmlFormat),
}

/// CSV with a header row. Columns are found by header name (ignoring ASCII
/// case); columns the format does not name are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvFormat {
    /// Field separator, one ASCII character; default `,`.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Header name of the account column.
    pub account: String,
    /// Header name of the available-balance column.
    pub available: String,
    /// How amounts are written; default `decimal`.
    #[serde(default)]
    pub amount: AmountText,
    /// Header name of the currency column (alphabetic or numeric ISO 4217).
    pub currency: Option<String>,
    /// The currency of every row, when the file has no currency column.
    pub currency_code: Option<String>,
    /// Header name of an as-of column; every row must give the same time.
    pub as_of: Option<String>,
    /// Prefix of a first line that carries the as-of, e.g. `#as_of=`; the
    /// header row follows that line.
    pub as_of_line: Option<String>,
    /// Format of the as-of (jiff `strptime`, e.g. `%Y%m%d%H%M%S`); default
    /// RFC 3339 (`2026-11-21T22:00:00Z`).
    pub as_of_format: Option<String>,
    /// Time zone of an as-of written without an offset (IANA name); default
    /// `UTC`.
    pub time_zone: Option<String>,
}

/// How CSV amounts are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AmountText {
    /// In the currency's units: `1234.50`, `-3.00` (EUR), `1250` (JPY); at
    /// most as many decimals as the currency has.
    #[default]
    Decimal,
    /// In minor units: `123450`, `-300`.
    Minor,
}

/// Fixed-width records, one a line: a header first, detail records, a
/// trailer last. Positions are 1-based bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedFormat {
    pub header: FixedHeader,
    pub detail: FixedDetail,
    pub trailer: FixedTrailer,
    /// The currency of every record, when details have no currency field.
    pub currency_code: Option<String>,
    /// Decimals implied in amounts; default the currency's exponent.
    pub implied_decimals: Option<u8>,
}

/// The header record: first in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedHeader {
    /// What the record starts with, e.g. `H`.
    pub record_type: String,
    /// Where the as-of is (absent: the caller supplies it).
    pub as_of: Option<Field>,
    /// Format of the as-of (jiff `strptime`); default RFC 3339.
    pub as_of_format: Option<String>,
    /// Time zone of an as-of without an offset (IANA name); default `UTC`.
    pub time_zone: Option<String>,
}

/// A detail record: one account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedDetail {
    pub record_type: String,
    /// Trailing spaces are not part of the account.
    pub account: Field,
    pub available: AmountField,
    /// Alphabetic or numeric ISO 4217 code.
    pub currency: Option<Field>,
}

/// The trailer record: last in the file, it proves the file is whole.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedTrailer {
    pub record_type: String,
    /// The number of records, which must match.
    pub count: Field,
    /// What `count` counts; default `details`.
    #[serde(default)]
    pub counts: Counted,
    /// The sum of the detail amounts as written (implied decimals, any
    /// currency), which must match when given.
    pub total: Option<AmountField>,
}

/// What a trailer's record count counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counted {
    /// Detail records only.
    #[default]
    Details,
    /// Every record, header and trailer included.
    Records,
}

/// Where a value is in a fixed-width record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// 1-based byte position of the first character.
    pub start: usize,
    /// Length in bytes.
    pub length: usize,
}

/// Where an amount is (digits only, implied decimals) and how its sign is
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountField {
    pub start: usize,
    pub length: usize,
    pub sign: Sign,
}

/// How the sign of a fixed-width amount is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sign {
    /// The field's first character: `+`, `-` or a space (positive).
    Leading,
    /// The field's last character: `+` or `-`.
    Trailing,
    /// A one-byte sign column at this 1-based position: `+`, `-` or space.
    Separate(usize),
}

/// XML: one element per account at a path from the root. Names are local
/// names (namespace prefixes are not written in paths).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlFormat {
    /// Path of the repeating record from the root, root included:
    /// `Balances/Account`.
    pub record: String,
    /// Path from the record element to the account: a child element
    /// (`Number`), an attribute of the record (`@id`) or of a child
    /// (`Available/@currency`).
    pub account: String,
    /// Path from the record to the available balance, decimal text.
    pub available: String,
    /// Path from the record to the currency code.
    pub currency: Option<String>,
    /// The currency of every record, when records have no currency.
    pub currency_code: Option<String>,
    /// Path from the root, root included, to the as-of: `Balances/@asOf`,
    /// `Balances/Header/AsOf`.
    pub as_of: Option<String>,
    /// Format of the as-of (jiff `strptime`); default RFC 3339.
    pub as_of_format: Option<String>,
    /// Time zone of an as-of without an offset (IANA name); default `UTC`.
    pub time_zone: Option<String>,
}

/// Where the currency of a row comes from.
#[derive(Debug, Clone)]
pub(super) enum CurrencyFrom<T> {
    /// A column, field or path of the row.
    Row(T),
    /// The same for every row.
    Fixed(Currency),
}

/// How an as-of is written, ready to parse.
#[derive(Debug, Clone)]
pub(super) struct TimeText {
    format: Option<String>,
    zone: TimeZone,
}

fn comma() -> String {
    ",".into()
}

impl<T> CurrencyFrom<T> {
    /// The currency source a format names: a row value or a fixed code,
    /// exactly one of them.
    pub(super) fn choose(
        row: Option<T>,
        code: Option<&str>,
        keys: (&str, &str),
        problems: &mut Vec<String>,
    ) -> Option<CurrencyFrom<T>> {
        match (row, code) {
            (Some(row), None) => Some(CurrencyFrom::Row(row)),
            (None, Some(code)) => match Currency::parse(code) {
                Ok(currency) => Some(CurrencyFrom::Fixed(currency)),
                Err(e) => {
                    problems.push(format!("{}: {e}", keys.1));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push(format!("{} and {}: give one, not both", keys.0, keys.1));
                None
            }
            (None, None) => {
                problems.push(format!(
                    "{} or {}: the currency must come from the file or the format",
                    keys.0, keys.1
                ));
                None
            }
        }
    }
}

impl TimeText {
    /// `prefix` names the keys in messages (`header.` for fixed-width).
    pub(super) fn compile(
        format: Option<&str>,
        zone: Option<&str>,
        prefix: &str,
        problems: &mut Vec<String>,
    ) -> TimeText {
        if format.is_some_and(|f| f.trim().is_empty()) {
            problems.push(format!("{prefix}as_of_format: empty"));
        }
        let zone = match zone {
            None => TimeZone::UTC,
            Some(name) if name.eq_ignore_ascii_case("UTC") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).unwrap_or_else(|e| {
                problems.push(format!("{prefix}time_zone: {e}"));
                TimeZone::UTC
            }),
        };
        TimeText {
            format: format.map(str::to_owned),
            zone,
        }
    }

    /// Parses an as-of; one without an offset is in the format's time zone.
    pub(super) fn parse(&self, text: &str) -> Result<Timestamp, ValueProblem> {
        let Some(format) = &self.format else {
            return text
                .parse::<Timestamp>()
                .map_err(|_| ValueProblem::NotRfc3339 { value: shown(text) });
        };
        let bad = || ValueProblem::NotTimeInFormat {
            value: shown(text),
            format: format.clone(),
        };
        let tm = jiff::fmt::strtime::parse(format, text).map_err(|_| bad())?;
        if tm.offset().is_some() || tm.timestamp().is_some() {
            return tm.to_timestamp().map_err(|_| bad());
        }
        let civil = tm.to_datetime().map_err(|_| bad())?;
        civil
            .to_zoned(self.zone.clone())
            .map(|z| z.timestamp())
            .map_err(|_| bad())
    }
}
