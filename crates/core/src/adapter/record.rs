//! Fixed-width records (`fixed-tcp`) field by field: the request record
//! rendered into its columns; the answer record checked against its layout
//! (length, record type) and its columns read. Both are in
//! the adapter's record encoding, and columns count bytes as the host's
//! layout does (a UTF-8 `ü` takes two). Framing and the sequence column are
//! the transport's ([`fixed`](super::fixed)); what the values mean is the
//! engine's.

use std::borrow::Cow;
use std::iter::repeat_n;

use super::file::{Align, AmountSource, Column, ResponseFile, Source};
use super::template::{RenderContext, Template};
use crate::account::AccountError;
use crate::encoding::Encoding;

/// One field of a request record.
pub(super) struct RecordField {
    pub(super) name: String,
    pub(super) template: Template,
    /// Columns (bytes) the field takes.
    pub(super) length: usize,
    pub(super) align: Align,
}

/// What an operation's answer record must be before any column is read:
/// its length and record type (transaction code), when the layout has them.
/// A record that is not is another transaction's or another layout's.
#[derive(Debug, Default)]
pub(super) struct AnswerLayout {
    /// Bytes in the record.
    length: Option<usize>,
    /// The record-type column and its bytes in the record encoding.
    record_type: Option<(Column, Vec<u8>)>,
}

/// An answer record as received, read column by column.
#[derive(Debug, Clone, Copy)]
pub(super) struct AnswerRecord<'a> {
    bytes: &'a [u8],
    encoding: Encoding,
}

/// Renders a request record: each field's value encoded, then padded to its
/// columns (`left`: spaces after, `right`: zeros before).
///
/// # Errors
/// [`AccountError::Unsendable`] when a value holds a character the encoding
/// cannot write, or is longer than its columns: it is refused, never cut (a
/// cut amount or account is another one).
pub(super) fn render(
    fields: &[RecordField],
    ctx: &RenderContext<'_>,
    encoding: Encoding,
) -> Result<Vec<u8>, AccountError> {
    let mut record = Vec::with_capacity(fields.iter().map(|f| f.length).sum());
    let mut value = String::new();
    for f in fields {
        value.clear();
        f.template.render(ctx, &mut value);
        let start = record.len();
        encoding
            .encode(&value, &mut record)
            .map_err(|e| AccountError::Unsendable(format!("record field {}: {e}", f.name)))?;
        let width = record.len() - start;
        let Some(pad) = f.length.checked_sub(width) else {
            return Err(AccountError::Unsendable(format!(
                "record field {}: {width} bytes do not fit its {} columns",
                f.name, f.length
            )));
        };
        match f.align {
            Align::Left => record.extend(repeat_n(encoding.ascii_byte(b' '), pad)),
            Align::Right => {
                record.splice(start..start, repeat_n(encoding.ascii_byte(b'0'), pad));
            }
        }
    }
    Ok(record)
}

impl<'a> AnswerRecord<'a> {
    pub(super) fn new(bytes: &'a [u8], encoding: Encoding) -> AnswerRecord<'a> {
        AnswerRecord { bytes, encoding }
    }

    /// The text of a column; `None` when the record is too short to hold it.
    ///
    /// # Errors
    /// [`AccountError::Malformed`] when the column's bytes are not text in
    /// the record encoding (invalid UTF-8, a character cut in two, a byte
    /// over 0x7F in ASCII).
    pub(super) fn column(&self, c: Column) -> Result<Option<Cow<'a, str>>, AccountError> {
        let end = c.start.saturating_add(c.length);
        let Some(bytes) = self.bytes.get(c.start..end) else {
            return Ok(None);
        };
        self.encoding.decode(bytes).map(Some).map_err(|e| {
            AccountError::Malformed(format!("answer columns {}..{end}: {e} of them", c.start))
        })
    }
}

impl AnswerLayout {
    /// The layout of `response`; `sequence` is the correlation column every
    /// answer holds. Problems (named by key under `at`): a record type that
    /// does not fill its column or cannot be written in the encoding, a
    /// column past the record's length.
    pub(super) fn compile(
        response: &ResponseFile,
        sequence: Column,
        encoding: Encoding,
        at: &str,
        problems: &mut Vec<String>,
    ) -> AnswerLayout {
        let record_type = response.record_type.as_ref().and_then(|t| {
            let column = Column {
                start: t.start,
                length: t.length,
            };
            let mut bytes = Vec::with_capacity(t.length);
            match encoding.encode(&t.value, &mut bytes) {
                Err(e) => problems.push(format!("{at}.record_type.value: {e}")),
                Ok(()) if bytes.len() != t.length => problems.push(format!(
                    "{at}.record_type.value: {:?} is {} bytes; the column is {}",
                    t.value,
                    bytes.len(),
                    t.length
                )),
                Ok(()) => return Some((column, bytes)),
            }
            None
        });
        if let Some(length) = response.length {
            let mut columns = vec![("records.sequence".to_owned(), sequence)];
            let read = record_type.iter().map(|(c, _)| ("record_type", *c));
            let read = read.chain(read_columns(response));
            columns.extend(read.map(|(key, c)| (format!("{at}.{key}"), c)));
            for (key, c) in columns {
                let end = c.start.saturating_add(c.length);
                if end > length {
                    problems.push(format!(
                        "{key}: columns {}..{end} end past the answer's {length} bytes \
                         ({at}.length)",
                        c.start
                    ));
                }
            }
        }
        AnswerLayout {
            length: response.length,
            record_type,
        }
    }

    /// Checks an answer record against the layout.
    ///
    /// # Errors
    /// [`AccountError::Malformed`] naming the length or record type found
    /// and the one expected.
    pub(super) fn check(&self, record: &[u8], encoding: Encoding) -> Result<(), AccountError> {
        if let Some(length) = self.length
            && record.len() != length
        {
            return Err(AccountError::Malformed(format!(
                "answer record is {} bytes; the layout's is {length}",
                record.len()
            )));
        }
        if let Some((c, expected)) = &self.record_type {
            let end = c.start.saturating_add(c.length);
            let found = record.get(c.start..end);
            if found != Some(expected.as_slice()) {
                let text = |bytes: &[u8]| match encoding.decode(bytes) {
                    Ok(text) => format!("{text:?}"),
                    Err(_) => format!("{bytes:02X?}"),
                };
                return Err(AccountError::Malformed(format!(
                    "answer record type {} in columns {}..{end}; this operation's is {}",
                    found.map_or_else(|| "missing".into(), text),
                    c.start,
                    text(expected)
                )));
            }
        }
        Ok(())
    }
}

/// The columns a response reads, named by key (paths are not columns).
fn read_columns(response: &ResponseFile) -> Vec<(&'static str, Column)> {
    let column = |s: &Source| match s {
        Source::Column(c) => Some(*c),
        Source::Path(_) => None,
    };
    let amount = |a: &AmountSource| column(&a.at).into_iter().chain(a.sign);
    let mut columns = Vec::new();
    let single = [
        ("result_code", Some(&response.result_code)),
        ("auth_id", response.auth_id.as_ref()),
        ("message", response.message.as_ref()),
    ];
    for (key, source) in single {
        columns.extend(source.and_then(column).map(|c| (key, c)));
    }
    for (key, a) in [
        ("available", &response.available),
        ("ledger", &response.ledger),
    ] {
        columns.extend(a.iter().flat_map(amount).map(|c| (key, c)));
    }
    columns
}
