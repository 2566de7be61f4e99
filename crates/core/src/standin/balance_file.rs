//! Balance files: the snapshots of account balances that banks upload and
//! that stand-in decides from when an account system cannot answer.
//!
//! Each institution's config says how its files are written
//! ([`BalanceFormat`]): CSV with a header row, fixed-width records between a
//! header and a trailer, or XML. [`read`] streams a file — the text is never
//! held whole; only the accounts seen so far are kept, to refuse repeats —
//! hashes the exact bytes read, hands every good row to the caller's sink and
//! collects every problem with its line and column.
//!
//! This module reads and checks; it stores nothing. The caller stages the
//! rows and applies a file whole or not at all (discarding what it staged
//! when [`read`] returns an error), treats a file whose hash it has seen as a
//! no-op, and refuses one older than the balances it holds. Guide:
//! `docs/balance-files.md`.

mod csv_file;
mod fixed_file;
mod format;
mod xml_file;

pub use format::{
    AmountField, AmountText, BalanceFormat, Counted, CsvFormat, Field, FixedDetail, FixedFormat,
    FixedHeader, FixedTrailer, Sign, XmlFormat,
};
use format::{CurrencyFrom, TimeText};

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{self, Read};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::mask::redact_pans;
use crate::money::{Currency, Money};
use crate::store::StoreError;

/// At most this many problems are kept for the report (all are counted).
pub const MAX_REPORTED_PROBLEMS: usize = 100;
/// Longest account or other value, in characters.
pub const MAX_VALUE_LEN: usize = 64;

/// One good row of a balance file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub account: String,
    /// Available balance in minor units of `currency`; negative when
    /// overdrawn.
    pub available_minor: i64,
    pub currency: Currency,
    /// Line in the file (of the record's start, for XML), for messages.
    pub line: u64,
}

/// A file read whole and found good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// The time the balances are of.
    pub as_of: Timestamp,
    /// Rows handed to the sink.
    pub rows: u64,
    /// SHA-256 of the exact bytes read: the same file gives the same hash.
    pub sha256: [u8; 32],
}

/// Bounds on one balance file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Bytes of the whole file.
    pub max_bytes: u64,
    /// Good rows (each account is remembered to refuse repeats).
    pub max_rows: u64,
    /// Bytes of one CSV record or fixed-width line, or one XML tag or text.
    pub max_record_bytes: u64,
}

impl Default for ReadLimits {
    /// 8 GiB, 100 million rows, 64 KiB records.
    fn default() -> Self {
        ReadLimits {
            max_bytes: 8 << 30,
            max_rows: 100_000_000,
            max_record_bytes: 64 << 10,
        }
    }
}

/// One problem in a balance file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line; 0 for the file as a whole.
    pub line: u64,
    /// The column: CSV header name, fixed-width `name (start-end)`, XML path.
    pub column: Option<String>,
    /// What is wrong; values are quoted, card-number-like digits masked.
    pub reason: String,
}

/// Why a balance file was not read to the end or not accepted.
#[derive(Debug, thiserror::Error)]
pub enum BalanceFileError {
    /// The file is wrong (the bank's to fix; sending it again cannot help).
    /// `problems` holds the first [`MAX_REPORTED_PROBLEMS`], `more` counts
    /// the rest.
    #[error("balance file refused: {}", summary(.problems, *.more))]
    Invalid {
        problems: Vec<LineError>,
        more: usize,
    },
    /// The input could not be read.
    #[error("balance file cannot be read: {0}")]
    Io(#[from] io::Error),
    /// The sink refused a row (ours: staging failed).
    #[error("balance rows cannot be staged: {0}")]
    Sink(#[source] StoreError),
    /// The format itself is wrong (the institution's config; see
    /// [`BalanceFormat::check`]).
    #[error("balance file format: {0}")]
    Format(#[from] FormatError),
}

/// A [`BalanceFormat`] that cannot be used: every problem, each naming its
/// key (shown `; `-separated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct FormatError {
    pub problems: Vec<String>,
}

/// Why one value of a file is refused (the reason of its [`LineError`]).
/// `value` fields hold the value as shown in messages: quoted, bounded,
/// card-number-like digits masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("longer than {MAX_VALUE_LEN} characters")]
    TooLong,
    #[error("{value} contains control characters")]
    ControlCharacters { value: String },
    #[error("account is empty")]
    EmptyAccount,
    #[error("unknown currency {value}")]
    UnknownCurrency { value: String },
    /// Not a decimal amount in the currency (or more decimals than it has).
    #[error("{value} is not an amount in {currency}")]
    NotDecimalAmount {
        value: String,
        currency: &'static str,
    },
    #[error("{value} is not an amount in minor units of {currency}")]
    NotMinorAmount {
        value: String,
        currency: &'static str,
    },
    /// Not an amount in any currency (the row's currency is unknown).
    #[error("{value} is not an amount")]
    NotAmount { value: String },
    #[error("{value} is not an RFC 3339 time like 2026-11-21T22:00:00Z")]
    NotRfc3339 { value: String },
    #[error("{value} is not a time in the format {format:?}")]
    NotTimeInFormat { value: String, format: String },
    /// A fixed-width field whose bounds fall inside a UTF-8 character.
    #[error("the field cuts a multi-byte character")]
    CutsCharacter,
    #[error("{value} is not a number")]
    NotNumber { value: String },
    /// A fixed-width amount whose sign is not where the format says.
    #[error("{value} is not an amount with {how} (sign {sign:?})")]
    BadSign {
        value: String,
        how: &'static str,
        sign: String,
    },
    #[error("{value} is not an amount with {how}")]
    NotSignedAmount { value: String, how: &'static str },
    #[error("{value} is too large an amount")]
    TooLarge { value: String },
    /// Implied decimals that the currency does not have are not zero.
    #[error("{raw} with {implied} implied decimals has more decimals than {currency} ({exponent})")]
    TooManyDecimals {
        raw: i64,
        implied: u32,
        currency: &'static str,
        exponent: u32,
    },
    #[error("{raw} is too large an amount in {currency}")]
    TooLargeIn { raw: i64, currency: &'static str },
}

/// The file as read: every byte hashed; reads are bounded by the file size
/// and by the end the current record may reach.
struct Source<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    max_bytes: u64,
    max_record: u64,
    record_end: u64,
}

/// A read refused by [`Source`]: a limit was passed.
#[derive(Debug)]
enum Overrun {
    File(u64),
    Record(u64),
}

/// The state of one read: problems, accounts seen, the file's as-of, the
/// sink.
struct Collector<S> {
    problems: Vec<LineError>,
    total_problems: usize,
    /// Account → first line.
    seen: HashMap<String, u64>,
    rows: u64,
    max_rows: u64,
    /// The file's as-of and where it was first given.
    as_of: Option<(Timestamp, u64, String)>,
    /// An as-of in the file could not be read (so "no as-of" is no news).
    as_of_unreadable: bool,
    /// A problem after which reading cannot go on.
    stopped: bool,
    sink: S,
}

impl BalanceFormat {
    /// Checks the format as a whole: columns named, positions that do not
    /// overlap or run to zero length, paths that parse, known currency and
    /// time zone.
    ///
    /// # Errors
    /// [`FormatError`] with every problem, each naming its key.
    pub fn check(&self) -> Result<(), FormatError> {
        self.compile().map(drop)
    }

    fn compile(&self) -> Result<Reader, FormatError> {
        let mut problems = Vec::new();
        let reader = match self {
            BalanceFormat::Csv(f) => {
                csv_file::CsvReader::compile(f, &mut problems).map(Reader::Csv)
            }
            BalanceFormat::Fixed(f) => {
                fixed_file::FixedReader::compile(f, &mut problems).map(Reader::Fixed)
            }
            BalanceFormat::Xml(f) => {
                xml_file::XmlReader::compile(f, &mut problems).map(Reader::Xml)
            }
        };
        match reader {
            Some(reader) if problems.is_empty() => Ok(reader),
            _ => Err(FormatError { problems }),
        }
    }
}

/// A compiled format.
enum Reader {
    Csv(csv_file::CsvReader),
    Fixed(fixed_file::FixedReader),
    Xml(xml_file::XmlReader),
}

/// Reads and checks a whole balance file with the default [`ReadLimits`].
///
/// Every good row goes to `sink` while the file has no problem yet; once
/// one is found, rows are still checked but no longer handed on (the result
/// will be an error). The as-of comes from the file, from `supplied_as_of`
/// (e.g. an HTTP header), or both when they agree.
///
/// # Errors
/// [`BalanceFileError::Invalid`] with every problem found,
/// [`BalanceFileError::Io`] when `input` fails, [`BalanceFileError::Sink`]
/// as soon as `sink` refuses a row, [`BalanceFileError::Format`] when
/// `format` does not pass [`BalanceFormat::check`].
pub fn read<R: Read>(
    format: &BalanceFormat,
    input: R,
    supplied_as_of: Option<Timestamp>,
    sink: impl FnMut(BalanceRow) -> Result<(), StoreError>,
) -> Result<FileSummary, BalanceFileError> {
    read_with_limits(format, input, supplied_as_of, ReadLimits::default(), sink)
}

/// [`read`] with other bounds.
///
/// # Errors
/// As [`read`]; a file past `limits` is [`BalanceFileError::Invalid`].
pub fn read_with_limits<R: Read>(
    format: &BalanceFormat,
    input: R,
    supplied_as_of: Option<Timestamp>,
    limits: ReadLimits,
    sink: impl FnMut(BalanceRow) -> Result<(), StoreError>,
) -> Result<FileSummary, BalanceFileError> {
    let reader = format.compile()?;
    let mut source = Source::new(input, limits);
    let mut collector = Collector::new(limits.max_rows, sink);
    match &reader {
        Reader::Csv(r) => r.read(&mut source, &mut collector, supplied_as_of.is_some())?,
        Reader::Fixed(r) => r.read(&mut source, &mut collector)?,
        Reader::Xml(r) => r.read(&mut source, &mut collector)?,
    }
    let sha256 = source.hasher.finalize().into();
    collector.finish(supplied_as_of, sha256)
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.column) {
            (0, _) => write!(f, "file: {}", self.reason),
            (line, Some(column)) => write!(f, "line {line}, column {column}: {}", self.reason),
            (line, None) => write!(f, "line {line}: {}", self.reason),
        }
    }
}

impl BalanceFileError {
    /// The report written beside a refused file: one problem a line, then
    /// how many more were not listed.
    pub fn report(&self) -> String {
        let mut out = String::new();
        match self {
            BalanceFileError::Invalid { problems, more } => {
                for problem in problems {
                    out.push_str(&problem.to_string());
                    out.push('\n');
                }
                if *more > 0 {
                    out.push_str(&format!("and {more} more problems\n"));
                }
            }
            other => {
                out.push_str(&other.to_string());
                out.push('\n');
            }
        }
        out
    }

    /// Whether the file is at fault (the bank must send a corrected one).
    pub fn is_bank_fault(&self) -> bool {
        matches!(self, BalanceFileError::Invalid { .. })
    }

    /// Whether reading the same file again later can help: input and
    /// staging failures may pass; a bad file or format stays bad.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BalanceFileError::Io(_) | BalanceFileError::Sink(_))
    }
}

fn summary(problems: &[LineError], more: usize) -> String {
    let total = problems.len() + more;
    let first = problems
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    match total {
        1 => first,
        _ => format!("{total} problems; first: {first}"),
    }
}

impl<R: Read> Source<R> {
    fn new(inner: R, limits: ReadLimits) -> Self {
        Source {
            inner,
            hasher: Sha256::new(),
            read: 0,
            max_bytes: limits.max_bytes,
            max_record: limits.max_record_bytes,
            record_end: limits.max_record_bytes,
        }
    }

    /// A record starts at byte `at`: reads may go on to `at` plus the
    /// record bound.
    fn record_at(&mut self, at: u64) {
        self.record_end = at.saturating_add(self.max_record);
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let bound = self.record_end.min(self.max_bytes.saturating_add(1));
        if self.read >= bound {
            let overrun = if self.read > self.max_bytes {
                Overrun::File(self.max_bytes)
            } else {
                Overrun::Record(self.max_record)
            };
            return Err(io::Error::other(overrun));
        }
        let room = usize::try_from(bound - self.read).unwrap_or(usize::MAX);
        let take = room.min(buf.len());
        let n = self.inner.read(&mut buf[..take])?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overrun::File(max) => write!(f, "file is larger than {max} bytes"),
            Overrun::Record(max) => write!(f, "record is longer than {max} bytes"),
        }
    }
}

impl std::error::Error for Overrun {}

impl<S: FnMut(BalanceRow) -> Result<(), StoreError>> Collector<S> {
    fn new(max_rows: u64, sink: S) -> Self {
        Collector {
            problems: Vec::new(),
            total_problems: 0,
            seen: HashMap::new(),
            rows: 0,
            max_rows,
            as_of: None,
            as_of_unreadable: false,
            stopped: false,
            sink,
        }
    }

    fn problem(&mut self, line: u64, column: Option<&str>, reason: impl Into<String>) {
        self.total_problems += 1;
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(LineError {
                line,
                column: column.map(str::to_owned),
                reason: reason.into(),
            });
        }
    }

    /// The value of a `check` on a found value (text, line, column), or
    /// `None` with its problem reported.
    fn checked<T>(
        &mut self,
        found: Option<(&str, u64, &str)>,
        check: impl FnOnce(&str) -> Result<T, ValueProblem>,
    ) -> Option<T> {
        let (text, line, column) = found?;
        self.check(line, column, check(text))
    }

    /// The value of `result`, or `None` with its problem reported.
    fn check<T>(&mut self, line: u64, column: &str, result: Result<T, ValueProblem>) -> Option<T> {
        result
            .map_err(|reason| self.problem(line, Some(column), reason.to_string()))
            .ok()
    }

    /// A problem after which the rest of the file cannot be read.
    fn fatal(&mut self, line: u64, column: Option<&str>, reason: impl Into<String>) {
        self.problem(line, column, reason);
        self.stopped = true;
    }

    /// An input error: a passed limit is the file's problem (and ends the
    /// read), anything else is an I/O failure.
    fn io(&mut self, error: io::Error, line: u64) -> Result<(), BalanceFileError> {
        match overrun(&error) {
            Some(overrun) => {
                self.fatal(line, None, overrun.to_string());
                Ok(())
            }
            None => Err(BalanceFileError::Io(error)),
        }
    }

    /// Takes a checked row: a repeated account is a problem; the row goes to
    /// the sink while the file is clean.
    ///
    /// # Errors
    /// [`BalanceFileError::Sink`] when the sink refuses the row.
    fn row(&mut self, row: BalanceRow, column: &str) -> Result<(), BalanceFileError> {
        match self.seen.entry(row.account.clone()) {
            Entry::Occupied(first) => {
                let reason = format!(
                    "account {} already on line {}",
                    shown(&row.account),
                    first.get()
                );
                self.problem(row.line, Some(column), reason);
                return Ok(());
            }
            Entry::Vacant(slot) => {
                slot.insert(row.line);
            }
        }
        self.rows += 1;
        if self.rows > self.max_rows {
            let reason = format!("more than {} rows", self.max_rows);
            self.fatal(row.line, None, reason);
            return Ok(());
        }
        if self.total_problems == 0 {
            (self.sink)(row).map_err(BalanceFileError::Sink)?;
        }
        Ok(())
    }

    /// The file gives an as-of on `line`; every one it gives must agree.
    fn file_as_of(&mut self, as_of: Result<Timestamp, ValueProblem>, line: u64, column: &str) {
        let as_of = match as_of {
            Ok(as_of) => as_of,
            Err(reason) => {
                self.as_of_unreadable = true;
                return self.problem(line, Some(column), reason.to_string());
            }
        };
        match &self.as_of {
            None => self.as_of = Some((as_of, line, column.to_owned())),
            Some((first, first_line, _)) if *first != as_of => {
                let reason = format!("as-of {as_of} differs from {first} on line {first_line}");
                self.problem(line, Some(column), reason);
            }
            Some(_) => {}
        }
    }

    fn finish(
        mut self,
        supplied: Option<Timestamp>,
        sha256: [u8; 32],
    ) -> Result<FileSummary, BalanceFileError> {
        let as_of = match (self.as_of.take(), supplied) {
            (Some((file, line, column)), Some(supplied)) if file != supplied => {
                let reason =
                    format!("as-of {file} differs from the one supplied with the file, {supplied}");
                self.problem(line, Some(&column), reason);
                None
            }
            (Some((file, ..)), _) => Some(file),
            (None, Some(supplied)) => Some(supplied),
            (None, None) if self.stopped || self.as_of_unreadable => None,
            (None, None) => {
                self.problem(
                    0,
                    None,
                    "no as-of: neither the file nor its sender gives one",
                );
                None
            }
        };
        match as_of {
            Some(as_of) if self.total_problems == 0 => Ok(FileSummary {
                as_of,
                rows: self.rows,
                sha256,
            }),
            _ => Err(BalanceFileError::Invalid {
                more: self.total_problems - self.problems.len(),
                problems: self.problems,
            }),
        }
    }
}

fn overrun(error: &io::Error) -> Option<&Overrun> {
    error.get_ref()?.downcast_ref::<Overrun>()
}

/// A value quoted for a message: bounded, control characters escaped,
/// card-number-like digit runs masked.
pub(crate) fn shown(text: &str) -> String {
    let bounded: String = text.chars().take(MAX_VALUE_LEN).collect();
    format!("{:?}", redact_pans(&bounded))
}

/// A value as text: UTF-8, bounded, no control characters.
pub(crate) fn value(raw: &[u8]) -> Result<&str, ValueProblem> {
    let text = std::str::from_utf8(raw).map_err(|_| ValueProblem::NotUtf8)?;
    if text.chars().count() > MAX_VALUE_LEN {
        return Err(ValueProblem::TooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(ValueProblem::ControlCharacters { value: shown(text) });
    }
    Ok(text)
}

fn account(text: &str) -> Result<String, ValueProblem> {
    let text = value(text.as_bytes())?;
    if text.is_empty() {
        return Err(ValueProblem::EmptyAccount);
    }
    Ok(text.to_owned())
}

/// A currency by alphabetic (`EUR`) or numeric (`978`) code.
pub(crate) fn currency(text: &str) -> Result<Currency, ValueProblem> {
    let text = value(text.as_bytes())?;
    Currency::parse(text).map_err(|_| ValueProblem::UnknownCurrency { value: shown(text) })
}

/// `-` or `+` in front, and the rest.
fn split_sign(text: &str) -> (bool, &str) {
    match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    }
}

fn signed(negative: bool, magnitude: u64) -> Option<i64> {
    let magnitude = i64::try_from(magnitude).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A decimal amount in the currency's units ("-3.00" EUR → -300); more
/// decimals than the currency has is an error, never rounded.
fn decimal_amount(text: &str, currency: Currency) -> Result<i64, ValueProblem> {
    let bad = || ValueProblem::NotDecimalAmount {
        value: shown(text),
        currency: currency.code,
    };
    let (negative, digits) = split_sign(text);
    let money = Money::parse_decimal(digits, currency).map_err(|_| bad())?;
    signed(negative, money.minor).ok_or_else(bad)
}

/// An amount in minor units ("-300").
fn minor_amount(text: &str, currency: Currency) -> Result<i64, ValueProblem> {
    let bad = || ValueProblem::NotMinorAmount {
        value: shown(text),
        currency: currency.code,
    };
    let (negative, digits) = split_sign(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let magnitude = digits.parse::<u64>().map_err(|_| bad())?;
    signed(negative, magnitude).ok_or_else(bad)
}

/// Whether `text` could be an amount in some currency: checked when the
/// row's currency is unknown, so a bad amount is reported too.
fn amount_syntax(text: &str, minor: bool) -> Result<(), ValueProblem> {
    let (_, digits) = split_sign(text);
    let (units, decimals) = digits.split_once('.').unwrap_or((digits, "0"));
    let shape_ok = !(units.is_empty() || decimals.is_empty() || minor && digits.contains('.'));
    let ok = shape_ok
        && units
            .bytes()
            .chain(decimals.bytes())
            .all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ValueProblem::NotAmount { value: shown(text) })
    }
}

/// The bytes of a line without its `\n` or `\r\n`.
fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
