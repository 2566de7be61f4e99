//! Fixed-width balance files: a header record, detail records, a trailer
//! record, one a line; values at 1-based byte positions.

use std::io::{BufRead, BufReader, Read};

use super::{
    AmountField, BalanceFileError, BalanceRow, Collector, Counted, CurrencyFrom, Field,
    FixedFormat, Sign, Source, TimeText, ValueProblem, account, currency, shown, strip_eol,
};
use crate::money::Currency;
use crate::store::StoreError;

/// Most digits in an amount or count: the value fits an `i64`.
const MAX_DIGITS: usize = 18;
/// Longest text field, in bytes.
const MAX_FIELD_LEN: usize = 256;

/// A checked [`FixedFormat`].
pub(super) struct FixedReader {
    header: Layout,
    detail: Layout,
    trailer: Layout,
    as_of: Option<Field>,
    time: TimeText,
    account: Field,
    available: AmountField,
    currency: CurrencyFrom<Field>,
    implied_decimals: Option<u8>,
    count: Field,
    counts: Counted,
    total: Option<AmountField>,
}

/// A record type: what it starts with and how long it must be.
struct Layout {
    record_type: String,
    min_len: usize,
    name: &'static str,
}

/// What was seen so far.
#[derive(Default)]
struct State {
    line: u64,
    header_line: Option<u64>,
    trailer_line: Option<u64>,
    records: u64,
    details: u64,
    /// Sum of the detail amounts as written; `None` once one is unreadable.
    total: Option<i128>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Header,
    Detail,
    Trailer,
    Unknown,
}

impl FixedReader {
    pub(super) fn compile(f: &FixedFormat, problems: &mut Vec<String>) -> Option<FixedReader> {
        let types = [
            ("header", &f.header.record_type),
            ("detail", &f.detail.record_type),
            ("trailer", &f.trailer.record_type),
        ];
        for (i, (key, t)) in types.iter().enumerate() {
            if t.is_empty() || !t.is_ascii() {
                problems.push(format!("{key}.record_type: one or more ASCII characters"));
            }
            for (other, o) in &types[i + 1..] {
                if t.starts_with(o.as_str()) || o.starts_with(t.as_str()) {
                    problems.push(format!(
                        "{key}.record_type and {other}.record_type: {t:?} and {o:?} cannot be told apart"
                    ));
                }
            }
        }
        let mut header = Positions::new("header", &f.header.record_type);
        if let Some(as_of) = f.header.as_of {
            header.field("as_of", as_of, MAX_FIELD_LEN);
        }
        let header = header.finish(problems);
        let mut detail = Positions::new("detail", &f.detail.record_type);
        detail.field("account", f.detail.account, MAX_FIELD_LEN);
        detail.amount("available", f.detail.available);
        if let Some(currency) = f.detail.currency {
            detail.field("currency", currency, MAX_FIELD_LEN);
        }
        let detail = detail.finish(problems);
        let mut trailer = Positions::new("trailer", &f.trailer.record_type);
        trailer.field("count", f.trailer.count, MAX_DIGITS);
        if let Some(total) = f.trailer.total {
            trailer.amount("total", total);
        }
        let trailer = trailer.finish(problems);
        if f.implied_decimals.is_some_and(|d| d > 9) {
            problems.push("implied_decimals: at most 9".into());
        }
        let currency = CurrencyFrom::choose(
            f.detail.currency,
            f.currency_code.as_deref(),
            ("detail.currency", "currency_code"),
            problems,
        );
        let time = TimeText::compile(
            f.header.as_of_format.as_deref(),
            f.header.time_zone.as_deref(),
            "header.",
            problems,
        );
        Some(FixedReader {
            header,
            detail,
            trailer,
            as_of: f.header.as_of,
            time,
            account: f.detail.account,
            available: f.detail.available,
            currency: currency?,
            implied_decimals: f.implied_decimals,
            count: f.trailer.count,
            counts: f.trailer.counts,
            total: f.trailer.total,
        })
    }

    pub(super) fn read<R: Read, S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        source: &mut Source<R>,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let mut input = BufReader::new(source);
        let mut state = State {
            total: Some(0),
            ..State::default()
        };
        let mut buf = Vec::new();
        let mut at = 0u64;
        while !c.stopped {
            input.get_mut().record_at(at);
            buf.clear();
            let n = match input.read_until(b'\n', &mut buf) {
                Ok(n) => n,
                Err(e) => return c.io(e, state.line + 1),
            };
            if n == 0 {
                break;
            }
            at += n as u64;
            state.line += 1;
            self.record(strip_eol(&buf), &mut state, c)?;
        }
        if c.stopped || state.trailer_line.is_some() {
            return Ok(());
        }
        match state.line {
            0 => c.fatal(1, None, "empty file: no header record"),
            n => {
                let reason = format!(
                    "no trailer record (type {:?}) after line {n}: the file is cut short",
                    self.trailer.record_type
                );
                c.problem(n + 1, None, reason);
            }
        }
        Ok(())
    }

    /// One record: its place in the file, then its fields.
    fn record<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        raw: &[u8],
        st: &mut State,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let line = st.line;
        st.records += 1;
        let kind = [
            (Kind::Header, &self.header),
            (Kind::Detail, &self.detail),
            (Kind::Trailer, &self.trailer),
        ]
        .into_iter()
        .find(|(_, l)| raw.starts_with(l.record_type.as_bytes()))
        .map_or(Kind::Unknown, |(kind, _)| kind);
        if kind == Kind::Detail {
            st.details += 1;
        }
        if let Some(trailer) = st.trailer_line {
            c.problem(
                line,
                None,
                format!("record after the trailer on line {trailer}"),
            );
            return Ok(());
        }
        if line == 1 && kind != Kind::Header {
            let reason = format!(
                "missing header record: the file must start with a record of type {:?}",
                self.header.record_type
            );
            c.problem(1, None, reason);
        }
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                let reason = format!("not UTF-8 text (byte {})", e.valid_up_to() + 1);
                c.problem(line, None, reason);
                st.total = None;
                return Ok(());
            }
        };
        let layout = match kind {
            Kind::Header => &self.header,
            Kind::Detail => &self.detail,
            Kind::Trailer => &self.trailer,
            Kind::Unknown => {
                let types = [&self.header, &self.detail, &self.trailer].map(|l| &l.record_type);
                let start: String = text.chars().take(8).collect();
                let reason = format!(
                    "unknown record type: the record starts {}, expected {:?}, {:?} or {:?}",
                    shown(&start),
                    types[0],
                    types[1],
                    types[2]
                );
                c.problem(line, None, reason);
                return Ok(());
            }
        };
        if text.len() < layout.min_len {
            let reason = format!(
                "truncated record: {} bytes, a {} record needs {}",
                text.len(),
                layout.name,
                layout.min_len
            );
            c.problem(line, None, reason);
            if kind == Kind::Detail {
                st.total = None;
            }
            st.trailer_line = (kind == Kind::Trailer).then_some(line);
            return Ok(());
        }
        match kind {
            Kind::Header => self.header(text, st, c),
            Kind::Detail => self.detail(text, st, c)?,
            Kind::Trailer => self.trailer(text, st, c),
            Kind::Unknown => {}
        }
        Ok(())
    }

    fn header<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        text: &str,
        st: &mut State,
        c: &mut Collector<S>,
    ) {
        let line = st.line;
        if let Some(first) = st.header_line {
            c.problem(
                line,
                None,
                format!("second header record (the first is on line {first})"),
            );
            return;
        }
        st.header_line = Some(line);
        if line != 1 {
            c.problem(line, None, "header record after the first line");
        }
        if let Some(field) = self.as_of {
            let column = column("as_of", field.start, field.length);
            let as_of = slice(text, field).and_then(|t| self.time.parse(t.trim()));
            c.file_as_of(as_of, line, &column);
        }
    }

    fn detail<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        text: &str,
        st: &mut State,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let line = st.line;
        let account_column = column("account", self.account.start, self.account.length);
        let account = slice(text, self.account).and_then(|t| account(t.trim_end_matches(' ')));
        let account = c.check(line, &account_column, account);
        let currency = match self.currency {
            CurrencyFrom::Fixed(fixed) => Some(fixed),
            CurrencyFrom::Row(field) => {
                let found = slice(text, field).and_then(|t| currency(t.trim()));
                c.check(line, &column("currency", field.start, field.length), found)
            }
        };
        let f = self.available;
        let available_column = column("available", f.start, f.length);
        let raw = signed_digits(text, f);
        if let (Ok(raw), Some(total)) = (&raw, &mut st.total) {
            *total += i128::from(*raw);
        } else {
            st.total = None;
        }
        let available = match (raw, currency) {
            (Ok(raw), Some(cur)) => scale(raw, self.implied_decimals, cur),
            (Ok(_), None) => Ok(0),
            (Err(reason), _) => Err(reason),
        };
        let available = c.check(line, &available_column, available);
        if let (Some(account), Some(available_minor), Some(currency)) =
            (account, available, currency)
        {
            let row = BalanceRow {
                account,
                available_minor,
                currency,
                line,
            };
            c.row(row, &account_column)?;
        }
        Ok(())
    }

    fn trailer<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        text: &str,
        st: &mut State,
        c: &mut Collector<S>,
    ) {
        let line = st.line;
        st.trailer_line = Some(line);
        let field = self.count;
        let count_column = column("count", field.start, field.length);
        let (counted, what) = match self.counts {
            Counted::Details => (st.details, "detail records"),
            Counted::Records => (st.records, "records (header and trailer included)"),
        };
        match slice(text, field).and_then(|t| digits(t.trim_start_matches(' '))) {
            Ok(count) if count == counted => {}
            Ok(count) => {
                let reason = format!("trailer count {count}, the file has {counted} {what}");
                c.problem(line, Some(&count_column), reason);
            }
            Err(reason) => c.problem(line, Some(&count_column), reason.to_string()),
        }
        let Some(total_field) = self.total else {
            return;
        };
        let total_column = column("total", total_field.start, total_field.length);
        match signed_digits(text, total_field) {
            Ok(total) => match st.total {
                Some(sum) if sum != i128::from(total) => {
                    let reason =
                        format!("trailer total {total}, the detail amounts add up to {sum}");
                    c.problem(line, Some(&total_column), reason);
                }
                _ => {}
            },
            Err(reason) => c.problem(line, Some(&total_column), reason.to_string()),
        }
    }
}

/// Positions taken in one record type, to find overlaps.
struct Positions {
    record: &'static str,
    record_type: String,
    /// (key, first byte, last byte), 1-based.
    taken: Vec<(&'static str, usize, usize)>,
    problems: Vec<String>,
}

impl Positions {
    fn new(record: &'static str, record_type: &str) -> Positions {
        Positions {
            record,
            record_type: record_type.to_owned(),
            taken: vec![("record_type", 1, record_type.len().max(1))],
            problems: Vec::new(),
        }
    }

    fn field(&mut self, key: &'static str, f: Field, max_len: usize) {
        self.take(key, f.start, f.length, max_len);
    }

    /// An amount: digits, and the sign inside or apart.
    fn amount(&mut self, key: &'static str, f: AmountField) {
        let max_len = match f.sign {
            Sign::Separate(at) => {
                self.take(key, at, 1, 1);
                MAX_DIGITS
            }
            Sign::Leading | Sign::Trailing => MAX_DIGITS + 1,
        };
        self.take(key, f.start, f.length, max_len);
    }

    fn take(&mut self, key: &'static str, start: usize, length: usize, max_len: usize) {
        let record = self.record;
        if start == 0 || length == 0 {
            let problem = format!("{record}.{key}: start and length count from 1");
            self.problems.push(problem);
            return;
        }
        if length > max_len {
            let problem = format!("{record}.{key}: at most {max_len} bytes");
            self.problems.push(problem);
        }
        let end = start.saturating_add(length - 1);
        for &(other, s, e) in &self.taken {
            if start <= e && s <= end {
                let problem = format!(
                    "{record}.{key}: bytes {start}-{end} overlap {record}.{other} ({s}-{e})"
                );
                self.problems.push(problem);
            }
        }
        self.taken.push((key, start, end));
    }

    /// The record's layout; its problems join `problems`.
    fn finish(self, problems: &mut Vec<String>) -> Layout {
        problems.extend(self.problems);
        let min_len = self.taken.iter().map(|&(_, _, e)| e).max().unwrap_or(0);
        Layout {
            record_type: self.record_type,
            min_len,
            name: self.record,
        }
    }
}

/// `name (start-end)`: how a fixed-width column is named in messages.
fn column(name: &str, start: usize, length: usize) -> String {
    format!("{name} ({start}-{})", start + length.saturating_sub(1))
}

/// The bytes of a field (the record is long enough: checked before).
fn slice(text: &str, f: Field) -> Result<&str, ValueProblem> {
    let start = f.start.saturating_sub(1);
    text.get(start..start + f.length)
        .ok_or(ValueProblem::CutsCharacter)
}

/// Digits, possibly padded with spaces on the left.
fn digits(text: &str) -> Result<u64, ValueProblem> {
    let bad = || ValueProblem::NotNumber { value: shown(text) };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

/// An amount as written, sign applied, decimals still implied.
fn signed_digits(text: &str, f: AmountField) -> Result<i64, ValueProblem> {
    let field = slice(
        text,
        Field {
            start: f.start,
            length: f.length,
        },
    )?;
    let (sign, body, how) = match f.sign {
        Sign::Leading => match field.char_indices().nth(1) {
            Some((at, _)) => (&field[..at], &field[at..], "a leading sign"),
            None => ("", field, "a leading sign"),
        },
        Sign::Trailing => match field.char_indices().last() {
            Some((at, _)) => (&field[at..], &field[..at], "a trailing sign"),
            None => ("", field, "a trailing sign"),
        },
        Sign::Separate(at) => {
            let sign = text.get(at.saturating_sub(1)..at).unwrap_or("?");
            (sign, field, "its sign apart")
        }
    };
    let negative = match (sign, f.sign) {
        ("-", _) => true,
        ("+", _) => false,
        (" ", Sign::Leading | Sign::Separate(_)) => false,
        _ => {
            return Err(ValueProblem::BadSign {
                value: shown(field),
                how,
                sign: sign.to_owned(),
            });
        }
    };
    let magnitude =
        digits(body.trim_start_matches(' ')).map_err(|_| ValueProblem::NotSignedAmount {
            value: shown(field),
            how,
        })?;
    let magnitude = i64::try_from(magnitude).map_err(|_| ValueProblem::TooLarge {
        value: shown(field),
    })?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// An amount with `implied` decimals in minor units of `currency`: never
/// rounded, so decimals beyond the currency's must be zero.
fn scale(raw: i64, implied: Option<u8>, currency: Currency) -> Result<i64, ValueProblem> {
    let exponent = u32::from(currency.exponent);
    let implied = implied.map_or(exponent, u32::from);
    let code = currency.code;
    if implied >= exponent {
        let factor = 10i64.pow(implied - exponent);
        if raw % factor != 0 {
            return Err(ValueProblem::TooManyDecimals {
                raw,
                implied,
                currency: code,
                exponent,
            });
        }
        Ok(raw / factor)
    } else {
        10i64
            .checked_pow(exponent - implied)
            .and_then(|factor| raw.checked_mul(factor))
            .ok_or(ValueProblem::TooLargeIn {
                raw,
                currency: code,
            })
    }
}
