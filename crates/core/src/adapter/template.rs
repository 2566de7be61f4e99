//! Request templates: text with `{field}` or `{field:format}` placeholders
//! for canonical request values, compiled once when the adapter loads and
//! rendered per call without parsing. `{{` and `}}` are literal braces.
//!
//! Fields: `transaction_id`, `institution`, `account`, `card` (masked),
//! `card_last4`, `pan` (clear: only when the adapter sets `send_clear_pan`), `amount`, `currency` (numeric), `currency_code` (alphabetic),
//! `channel`, `kind`, `terminal`, `merchant`, `transmission_time`, `rrn`,
//! `deadline`, `now`, `original_transaction_id`, `decision`, `decided_by`,
//! `reason`, `sequence` (fixed-width records: filled by the transport).
//!
//! Formats: amounts `minor` (default) or `decimal` (the currency's decimals);
//! times (`deadline`, `now`) `iso` (default, UTC with milliseconds) or a
//! strftime pattern like `%Y%m%d%H%M%S`, rendered in the adapter's time zone
//! (daylight saving time included); any field `upper`, `lower`, or `vendor`
//! (through the adapter's `[values.<field>]` table).
//!
//! `{?field}…{/field}` is a section rendered only when the field has a value
//! (for optional elements such as `merchantId` or `originalTransactionId`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::Timestamp;
use jiff::fmt::temporal::DateTimePrinter;
use jiff::tz::TimeZone;
use tokio::time::Instant;

use crate::account::AccountRequest;
use crate::account::{Channel, Kind};
use crate::soap_writer;

/// A canonical value a placeholder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    TransactionId,
    Institution,
    Account,
    Card,
    CardLast4,
    /// The clear PAN: only in adapters with `send_clear_pan = true`.
    Pan,
    Amount,
    Currency,
    CurrencyCode,
    Channel,
    Kind,
    Terminal,
    Merchant,
    TransmissionTime,
    Rrn,
    Deadline,
    Now,
    OriginalTransactionId,
    Decision,
    DecidedBy,
    Reason,
    Sequence,
}

const FIELDS: &[(&str, Field)] = &[
    ("transaction_id", Field::TransactionId),
    ("institution", Field::Institution),
    ("account", Field::Account),
    ("card", Field::Card),
    ("card_last4", Field::CardLast4),
    ("pan", Field::Pan),
    ("amount", Field::Amount),
    ("currency", Field::Currency),
    ("currency_code", Field::CurrencyCode),
    ("channel", Field::Channel),
    ("kind", Field::Kind),
    ("terminal", Field::Terminal),
    ("merchant", Field::Merchant),
    ("transmission_time", Field::TransmissionTime),
    ("rrn", Field::Rrn),
    ("deadline", Field::Deadline),
    ("now", Field::Now),
    ("original_transaction_id", Field::OriginalTransactionId),
    ("decision", Field::Decision),
    ("decided_by", Field::DecidedBy),
    ("reason", Field::Reason),
    ("sequence", Field::Sequence),
];

/// Canonical names of the enumerated fields, as the canonical WSDL writes them.
pub fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Atm => "ATM",
        Channel::Pos => "POS",
        Channel::Other => "OTHER",
    }
}

/// See [`channel_name`].
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Purchase => "PURCHASE",
        Kind::Cash => "CASH",
        Kind::BalanceInquiry => "BALANCE_INQUIRY",
        Kind::Load => "LOAD",
        Kind::Refund => "REFUND",
    }
}

const CHANNELS: [&str; 3] = ["ATM", "POS", "OTHER"];
const KINDS: [&str; 5] = ["PURCHASE", "CASH", "BALANCE_INQUIRY", "LOAD", "REFUND"];

/// How a value is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Plain,
    Decimal,
    Upper,
    Lower,
    /// Through `[values.<field>]`.
    Vendor(BTreeMap<String, String>),
    /// A strftime pattern, rendered in a time zone.
    Time {
        pattern: String,
        zone: TimeZone,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Value(Field, Format),
    /// Rendered only when the field is not empty.
    Section(Field, Vec<Piece>),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// XML templates escape every value.
    xml: bool,
}

/// A template that cannot be compiled (the adapter file's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed placeholder starting at character {0}")]
    Unclosed(usize),
    #[error("a lone '}}' at character {0} (write '}}}}' for a brace)")]
    LoneBrace(usize),
    #[error("unknown field {0:?} in a placeholder")]
    UnknownField(String),
    #[error("format {format:?} does not apply to {field:?}")]
    BadFormat { field: String, format: String },
    #[error("{{{field}:{pattern}}}: not a strftime pattern jiff can render: {reason}")]
    BadTimePattern {
        field: String,
        pattern: String,
        reason: String,
    },
    #[error("{{{field}:vendor}} needs a [values.{field}] table mapping {missing}")]
    VendorValues { field: String, missing: String },
    #[error("section {{?{0}}} is not closed by {{/{0}}}")]
    UnclosedSection(String),
    #[error("{{/{0}}} closes no open section")]
    StraySectionEnd(String),
}

/// What a template is rendered from.
pub struct RenderContext<'a> {
    pub request: &'a AccountRequest,
    /// The wall-clock time of rendering (also gives `deadline` a wall time).
    pub now: Timestamp,
    /// Fixed-width records: the correlation number's placeholder text.
    pub sequence: &'a str,
}

impl Template {
    /// Compiles template text; `values` are the adapter's `[values]` tables,
    /// `time_zone` the zone strftime patterns render in.
    ///
    /// # Errors
    /// A [`TemplateError`] naming the placeholder and what is wrong.
    pub fn compile(
        text: &str,
        values: &BTreeMap<String, BTreeMap<String, String>>,
        time_zone: &TimeZone,
        xml: bool,
    ) -> Result<Template, TemplateError> {
        // Open sections: the field and the pieces before it.
        let mut stack: Vec<(Field, String, Vec<Piece>)> = Vec::new();
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::LoneBrace(at)),
                '{' => {
                    if !text[at..].contains('}') {
                        return Err(TemplateError::Unclosed(at));
                    }
                    let inner: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '}')
                        .collect();
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    if let Some(name) = inner.strip_prefix('?') {
                        let field = field(name.trim())?;
                        stack.push((field, name.trim().to_string(), std::mem::take(&mut pieces)));
                    } else if let Some(name) = inner.strip_prefix('/') {
                        match stack.pop() {
                            Some((field, open, before)) if open == name.trim() => {
                                let section = std::mem::replace(&mut pieces, before);
                                pieces.push(Piece::Section(field, section));
                            }
                            _ => return Err(TemplateError::StraySectionEnd(name.trim().into())),
                        }
                    } else {
                        pieces.push(placeholder(&inner, values, time_zone)?);
                    }
                }
                c => literal.push(c),
            }
        }
        if let Some((_, name, _)) = stack.pop() {
            return Err(TemplateError::UnclosedSection(name));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces, xml })
    }

    /// Whether the template writes the clear PAN (`{pan}`).
    pub fn uses_clear_pan(&self) -> bool {
        fn any(pieces: &[Piece]) -> bool {
            pieces.iter().any(|p| match p {
                Piece::Value(Field::Pan, _) | Piece::Section(Field::Pan, _) => true,
                Piece::Section(_, inner) => any(inner),
                _ => false,
            })
        }
        any(&self.pieces)
    }

    /// Renders into `out`. Absent optional values (a merchant, an original
    /// transaction) render as nothing.
    pub fn render(&self, ctx: &RenderContext<'_>, out: &mut String) {
        self.render_pieces(&self.pieces, ctx, out);
    }

    fn render_pieces(&self, pieces: &[Piece], ctx: &RenderContext<'_>, out: &mut String) {
        for piece in pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(field, format) => {
                    // Written in place; escaped (moved aside) only when needed.
                    let start = out.len();
                    write_value(ctx, *field, format, out);
                    if self.xml && out.get(start..).is_some_and(soap_writer::needs_escape) {
                        let value = out.split_off(start);
                        soap_writer::escape(&value, out);
                    }
                }
                Piece::Section(field, inner) => {
                    let start = out.len();
                    write_value(ctx, *field, &Format::Plain, out);
                    let present = out.len() > start;
                    out.truncate(start);
                    if present {
                        self.render_pieces(inner, ctx, out);
                    }
                }
            }
        }
    }
}

fn field(name: &str) -> Result<Field, TemplateError> {
    FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| TemplateError::UnknownField(name.to_string()))
}

fn placeholder(
    inner: &str,
    values: &BTreeMap<String, BTreeMap<String, String>>,
    time_zone: &TimeZone,
) -> Result<Piece, TemplateError> {
    let (name, format) = match inner.split_once(':') {
        Some((n, f)) => (n.trim(), Some(f.trim())),
        None => (inner.trim(), None),
    };
    let field = field(name)?;
    let bad = || TemplateError::BadFormat {
        field: name.to_string(),
        format: format.unwrap_or_default().to_string(),
    };
    let is_time = matches!(field, Field::Deadline | Field::Now);
    let format = match format {
        None | Some("minor") if field == Field::Amount => Format::Plain,
        None => Format::Plain,
        Some("decimal") if field == Field::Amount => Format::Decimal,
        Some("iso") if is_time => Format::Plain,
        Some(f) if is_time && f.contains('%') => {
            // Rendering fails on a bad directive: find out now, not per call.
            let sample = Timestamp::UNIX_EPOCH.to_zoned(time_zone.clone());
            if let Err(e) = jiff::fmt::strtime::format(f, &sample) {
                return Err(TemplateError::BadTimePattern {
                    field: name.to_string(),
                    pattern: f.to_string(),
                    reason: e.to_string(),
                });
            }
            Format::Time {
                pattern: f.to_string(),
                zone: time_zone.clone(),
            }
        }
        Some("upper") => Format::Upper,
        Some("lower") => Format::Lower,
        Some("vendor") => {
            let table = values.get(name).cloned().unwrap_or_default();
            let required: &[&str] = match field {
                Field::Channel => &CHANNELS,
                Field::Kind => &KINDS,
                _ => &[],
            };
            let missing: Vec<&str> = required
                .iter()
                .filter(|v| !table.contains_key(**v))
                .copied()
                .collect();
            if !missing.is_empty() || table.is_empty() {
                return Err(TemplateError::VendorValues {
                    field: name.to_string(),
                    missing: if missing.is_empty() {
                        "its values".into()
                    } else {
                        missing.join(", ")
                    },
                });
            }
            Format::Vendor(table)
        }
        Some(_) => return Err(bad()),
    };
    Ok(Piece::Value(field, format))
}

/// Appends a field's value in its format.
fn write_value(ctx: &RenderContext<'_>, field: Field, format: &Format, out: &mut String) {
    let r = ctx.request;
    let start = out.len();
    let text = match field {
        Field::TransactionId => r.transaction_id.as_str(),
        Field::Institution => r.institution.as_str(),
        Field::Account => r.account.as_str(),
        Field::Card => r.card.as_str(),
        Field::CardLast4 => &r.card[r.card.len().saturating_sub(4)..],
        Field::Pan => r.clear_pan.as_ref().map_or("", |p| p.expose()),
        Field::Amount => {
            match format {
                Format::Decimal => out.push_str(&r.amount.to_decimal()),
                _ => {
                    let _ = write!(out, "{}", r.amount.minor);
                }
            }
            ""
        }
        Field::Currency => {
            let _ = write!(out, "{:03}", r.amount.currency.numeric);
            ""
        }
        Field::CurrencyCode => r.amount.currency.code,
        Field::Channel => channel_name(r.channel),
        Field::Kind => kind_name(r.kind),
        Field::Terminal => r.terminal.as_str(),
        Field::Merchant => r.merchant.as_deref().unwrap_or_default(),
        Field::TransmissionTime => r.transmission_time.as_str(),
        Field::Rrn => r.rrn.as_str(),
        Field::Deadline => {
            let left = r.deadline.saturating_duration_since(Instant::now());
            write_time(ctx.now.checked_add(left).unwrap_or(ctx.now), format, out);
            ""
        }
        Field::Now => {
            write_time(ctx.now, format, out);
            ""
        }
        Field::OriginalTransactionId => r.original_transaction_id.as_deref().unwrap_or_default(),
        Field::Decision => r.decision.as_ref().map_or("", |d| d.code.as_str()),
        Field::DecidedBy => r.decision.as_ref().map_or("", |d| d.decided_by.as_str()),
        Field::Reason => r.decision.as_ref().map_or("", |d| d.reason.as_str()),
        Field::Sequence => ctx.sequence,
    };
    out.push_str(text);
    // The formats that rewrite the value as a whole, whichever field wrote it.
    let written = out.get(start..).unwrap_or_default();
    let rewritten = match format {
        Format::Upper => Cow::Owned(written.to_uppercase()),
        Format::Lower => Cow::Owned(written.to_lowercase()),
        Format::Vendor(table) => match table.get(written) {
            Some(vendor) => Cow::Borrowed(vendor.as_str()),
            None => return,
        },
        _ => return,
    };
    out.truncate(start);
    out.push_str(&rewritten);
}

/// Appends a time: through a strftime pattern in its zone, or (`iso`) as
/// [`write_iso_millis`].
fn write_time(at: Timestamp, format: &Format, out: &mut String) {
    match format {
        Format::Time { pattern, zone } => {
            let _ = write!(
                out,
                "{}",
                at.to_zoned(zone.clone()).strftime(pattern.as_str())
            );
        }
        _ => write_iso_millis(at, out),
    }
}

/// The ISO time printer: UTC with `Z`, exactly three fractional digits
/// (jiff truncates to the precision, as strftime's `%.3f` does).
const ISO_MILLIS: DateTimePrinter = DateTimePrinter::new().precision(Some(3));

/// Appends `YYYY-MM-DDThh:mm:ss.sssZ`: UTC, milliseconds truncated (what
/// strftime's `%Y-%m-%dT%H:%M:%S%.3fZ` writes, without its pattern parsing).
pub(super) fn write_iso_millis(at: Timestamp, out: &mut String) {
    // Printing into a `String` cannot fail.
    let _ = ISO_MILLIS.print_timestamp(&at, out);
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
