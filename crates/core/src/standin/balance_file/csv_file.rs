//! CSV balance files: an optional as-of line, a header row, one account a
//! row. Columns are found by header name.

use std::io::{BufRead, BufReader, Cursor, Read};

use super::{
    AmountText, BalanceFileError, BalanceRow, Collector, CsvFormat, CurrencyFrom, Source, TimeText,
    account, amount_syntax, currency, decimal_amount, minor_amount, strip_eol, value,
};
use crate::store::StoreError;

/// A checked [`CsvFormat`].
pub(super) struct CsvReader {
    delimiter: u8,
    account: String,
    available: String,
    amount: AmountText,
    currency: CurrencyFrom<String>,
    as_of: Option<String>,
    as_of_line: Option<String>,
    time: TimeText,
}

/// Where the format's columns are in the rows.
struct Header {
    account: usize,
    available: usize,
    currency: Option<usize>,
    as_of: Option<usize>,
    width: usize,
}

impl CsvReader {
    pub(super) fn compile(f: &CsvFormat, problems: &mut Vec<String>) -> Option<CsvReader> {
        let delimiter = match f.delimiter.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
            _ => {
                problems.push("delimiter: one ASCII character, not a quote or line break".into());
                b','
            }
        };
        let mut named = Vec::new();
        for (key, name) in [
            ("account", Some(&f.account)),
            ("available", Some(&f.available)),
            ("currency", f.currency.as_ref()),
            ("as_of", f.as_of.as_ref()),
        ] {
            let Some(name) = name else { continue };
            let name = name.trim();
            if name.is_empty() {
                problems.push(format!("{key}: empty column name"));
            } else if let Some((other, _)) = named
                .iter()
                .find(|(_, n): &&(&str, &str)| n.eq_ignore_ascii_case(name))
            {
                problems.push(format!("{key}: column {name:?} is also {other}"));
            }
            named.push((key, name));
        }
        let currency = CurrencyFrom::choose(
            f.currency.clone(),
            f.currency_code.as_deref(),
            ("currency", "currency_code"),
            problems,
        );
        match &f.as_of_line {
            Some(_) if f.as_of.is_some() => {
                problems.push("as_of and as_of_line: give one, not both".into());
            }
            Some(prefix) if prefix.is_empty() || prefix.contains(['\n', '\r']) => {
                problems.push("as_of_line: a non-empty prefix on one line".into());
            }
            _ => {}
        }
        let time = TimeText::compile(
            f.as_of_format.as_deref(),
            f.time_zone.as_deref(),
            "",
            problems,
        );
        Some(CsvReader {
            delimiter,
            account: f.account.trim().to_owned(),
            available: f.available.trim().to_owned(),
            amount: f.amount,
            currency: currency?,
            as_of: f.as_of.as_ref().map(|s| s.trim().to_owned()),
            as_of_line: f.as_of_line.clone(),
            time,
        })
    }

    /// Reads the file. With `as_of_supplied` (the sender gave the as-of) an
    /// `as_of_line` is optional: a first line without its prefix is the
    /// header row.
    pub(super) fn read<R: Read, S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        source: &mut Source<R>,
        c: &mut Collector<S>,
        as_of_supplied: bool,
    ) -> Result<(), BalanceFileError> {
        let mut input = BufReader::new(source);
        // Lines and bytes before the CSV proper: the as-of line.
        let (mut lines_before, mut bytes_before) = (0, 0);
        // A first line read for the as-of that is the header row after all.
        let mut header_read = Vec::new();
        if let Some(prefix) = &self.as_of_line {
            let mut line = Vec::new();
            if let Err(e) = input.read_until(b'\n', &mut line) {
                return c.io(e, 1);
            }
            let raw = strip_eol(&line);
            let raw = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
            let text = std::str::from_utf8(raw).unwrap_or_default();
            match text.strip_prefix(prefix.as_str()) {
                Some(rest) => {
                    (lines_before, bytes_before) = (1, line.len() as u64);
                    let as_of = self.time.parse(rest.trim());
                    c.file_as_of(as_of, 1, "as-of line");
                    input.get_mut().record_at(bytes_before);
                }
                None if as_of_supplied => header_read = line,
                None => {
                    let reason = format!("the first line must give the as-of, starting {prefix:?}");
                    c.fatal(1, None, reason);
                    return Ok(());
                }
            }
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            // Records end at `\n` only, so line numbers hold for CRLF files
            // too (csv counts a CRLF's `\n` into the next record); the `\r`
            // is trimmed from the last field.
            .terminator(csv::Terminator::Any(b'\n'))
            .delimiter(self.delimiter)
            .from_reader(Cursor::new(header_read).chain(input));
        let mut record = csv::ByteRecord::new();
        let header_line = lines_before + 1;
        if !next(&mut reader, &mut record, c, lines_before)? {
            if !c.stopped {
                c.fatal(header_line, None, "no header row");
            }
            return Ok(());
        }
        let Some(header) = self.header(&record, header_line, c) else {
            return Ok(());
        };
        loop {
            let at = bytes_before + reader.position().byte();
            reader.get_mut().get_mut().1.get_mut().record_at(at);
            if c.stopped || !next(&mut reader, &mut record, c, lines_before)? {
                return Ok(());
            }
            let line = record.position().map_or(0, csv::Position::line) + lines_before;
            // A CRLF blank line: one field, the trimmed `\r`.
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            self.row(&header, &record, line, c)?;
        }
    }

    /// Finds the format's columns; `None` (with problems) when one is
    /// missing or repeated.
    fn header<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        record: &csv::ByteRecord,
        line: u64,
        c: &mut Collector<S>,
    ) -> Option<Header> {
        let names: Vec<String> = record
            .iter()
            .map(|raw| {
                let raw = raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw);
                String::from_utf8_lossy(raw).into_owned()
            })
            .collect();
        let mut find = |name: &str| {
            let mut at = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.eq_ignore_ascii_case(name))
                .map(|(i, _)| i);
            let first = at.next();
            match (first, at.next()) {
                (None, _) => c.fatal(line, Some(name), "column missing from the header row"),
                (Some(_), Some(_)) => c.fatal(line, Some(name), "column appears twice"),
                (Some(_), None) => {}
            }
            first
        };
        let account = find(&self.account);
        let available = find(&self.available);
        let currency = match &self.currency {
            CurrencyFrom::Row(name) => Some(find(name)),
            CurrencyFrom::Fixed(_) => None,
        };
        let as_of = self.as_of.as_deref().map(&mut find);
        if c.stopped {
            return None;
        }
        Some(Header {
            account: account?,
            available: available?,
            currency: currency.flatten(),
            as_of: as_of.flatten(),
            width: record.len(),
        })
    }

    /// Checks one data row, reporting everything wrong with it.
    fn row<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        header: &Header,
        record: &csv::ByteRecord,
        line: u64,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        if record.len() != header.width {
            let reason = format!("{} fields, the header has {}", record.len(), header.width);
            c.problem(line, None, reason);
            return Ok(());
        }
        // Every column is checked, so all problems of the row are reported.
        let field = |i: usize| value(&record[i]);
        let account = c.check(line, &self.account, field(header.account).and_then(account));
        let currency = match (&self.currency, header.currency) {
            (CurrencyFrom::Fixed(fixed), _) => Some(*fixed),
            (CurrencyFrom::Row(name), Some(i)) => c.check(line, name, field(i).and_then(currency)),
            (CurrencyFrom::Row(_), None) => None,
        };
        let text = field(header.available);
        let available = match currency {
            Some(cur) => text.and_then(|t| match self.amount {
                AmountText::Decimal => decimal_amount(t, cur),
                AmountText::Minor => minor_amount(t, cur),
            }),
            None => text
                .and_then(|t| amount_syntax(t, self.amount == AmountText::Minor))
                .map(|()| 0),
        };
        let available = c.check(line, &self.available, available);
        if let (Some(name), Some(i)) = (&self.as_of, header.as_of) {
            c.file_as_of(field(i).and_then(|t| self.time.parse(t)), line, name);
        }
        if let (Some(account), Some(available_minor), Some(currency)) =
            (account, available, currency)
        {
            let row = BalanceRow {
                account,
                available_minor,
                currency,
                line,
            };
            c.row(row, &self.account)?;
        }
        Ok(())
    }
}

/// The next record, `false` at the end (or when a limit stops the read).
fn next<R: Read, S: FnMut(BalanceRow) -> Result<(), StoreError>>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    c: &mut Collector<S>,
    lines_before: u64,
) -> Result<bool, BalanceFileError> {
    match reader.read_byte_record(record) {
        Ok(more) => Ok(more),
        Err(e) => {
            let line = reader.position().line() + lines_before;
            let io = match e.into_kind() {
                csv::ErrorKind::Io(io) => io,
                other => std::io::Error::other(format!("{other:?}")),
            };
            c.io(io, line).map(|()| false)
        }
    }
}
