//! Fixed-width records (`fixed-tcp`) field by field: the request record
//! rendered into its columns, the answer record's columns read. Both are in
//! the adapter's record encoding, and columns count bytes as the host's
//! layout does (a UTF-8 `ü` takes two). Framing and the sequence column are
//! the transport's ([`fixed`](super::fixed)); what the values mean is the
//! engine's.

use std::borrow::Cow;
use std::iter::repeat_n;

use super::encoding::Encoding;
use super::file::{Align, Column};
use super::template::{RenderContext, Template};
use crate::hub::account_system::AccountError;

/// One field of a request record.
pub(super) struct RecordField {
    pub(super) name: String,
    pub(super) template: Template,
    /// Columns (bytes) the field takes.
    pub(super) length: usize,
    pub(super) align: Align,
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
