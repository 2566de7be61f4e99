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

use std::collections::BTreeMap;
use std::fmt::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::time::Instant;

use super::xml;
use crate::hub::account_system::AccountRequest;
use crate::hub::model::{Channel, Kind};

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
        let mut value = String::new();
        self.render_pieces(&self.pieces, ctx, out, &mut value);
    }

    fn render_pieces(
        &self,
        pieces: &[Piece],
        ctx: &RenderContext<'_>,
        out: &mut String,
        value: &mut String,
    ) {
        for piece in pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(field, format) => {
                    value.clear();
                    write_value(ctx, *field, format, value);
                    if self.xml {
                        xml::escape(value, out);
                    } else {
                        out.push_str(value);
                    }
                }
                Piece::Section(field, inner) => {
                    value.clear();
                    write_value(ctx, *field, &Format::Plain, value);
                    if !value.is_empty() {
                        self.render_pieces(inner, ctx, out, value);
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

fn write_value(ctx: &RenderContext<'_>, field: Field, format: &Format, out: &mut String) {
    let r = ctx.request;
    let time = |at: Timestamp, out: &mut String| match format {
        Format::Time { pattern, zone } => {
            let _ = write!(
                out,
                "{}",
                at.to_zoned(zone.clone()).strftime(pattern.as_str())
            );
        }
        _ => {
            let _ = write!(out, "{}", at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"));
        }
    };
    let text: std::borrow::Cow<'_, str> = match field {
        Field::TransactionId => r.transaction_id.as_str().into(),
        Field::Institution => r.institution.as_str().into(),
        Field::Account => r.account.as_str().into(),
        Field::Card => r.card.as_str().into(),
        Field::CardLast4 => r.card[r.card.len().saturating_sub(4)..].into(),
        Field::Pan => r.clear_pan.as_ref().map_or("", |p| p.expose()).into(),
        Field::Amount => match format {
            Format::Decimal => r.amount.to_decimal().into(),
            _ => r.amount.minor.to_string().into(),
        },
        Field::Currency => format!("{:03}", r.amount.currency.numeric).into(),
        Field::CurrencyCode => r.amount.currency.code.into(),
        Field::Channel => channel_name(r.channel).into(),
        Field::Kind => kind_name(r.kind).into(),
        Field::Terminal => r.terminal.as_str().into(),
        Field::Merchant => r.merchant.as_deref().unwrap_or_default().into(),
        Field::TransmissionTime => r.transmission_time.as_str().into(),
        Field::Rrn => r.rrn.as_str().into(),
        Field::Deadline => {
            let left = r.deadline.saturating_duration_since(Instant::now());
            let at = ctx.now.checked_add(left).unwrap_or(ctx.now);
            time(at, out);
            return;
        }
        Field::Now => {
            time(ctx.now, out);
            return;
        }
        Field::OriginalTransactionId => r
            .original_transaction_id
            .as_deref()
            .unwrap_or_default()
            .into(),
        Field::Decision => r.decision.as_ref().map_or("", |d| d.code.as_str()).into(),
        Field::DecidedBy => r
            .decision
            .as_ref()
            .map_or("", |d| d.decided_by.as_str())
            .into(),
        Field::Reason => r.decision.as_ref().map_or("", |d| d.reason.as_str()).into(),
        Field::Sequence => ctx.sequence.into(),
    };
    match format {
        Format::Upper => out.push_str(&text.to_uppercase()),
        Format::Lower => out.push_str(&text.to_lowercase()),
        Format::Vendor(table) => out.push_str(table.get(text.as_ref()).map_or(&text, |v| v)),
        _ => out.push_str(&text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};

    pub(crate) fn sample() -> AccountRequest {
        AccountRequest {
            transaction_id: "0193A2B4C5D60001".into(),
            institution: "bank-a".into(),
            account: "A-1001".into(),
            card: "476173******0010".into(),
            kind: Kind::Purchase,
            channel: Channel::Pos,
            amount: Money::new(12550, Currency::from_numeric(840).unwrap()),
            terminal: "POS<01>&".into(),
            merchant: None,
            transmission_time: "1122030201".into(),
            rrn: "531909004711".into(),
            original_transaction_id: None,
            decision: None,
            clear_pan: None,
            listen_until: None,
            deadline: Instant::now(),
        }
    }

    fn render(
        text: &str,
        values: &BTreeMap<String, BTreeMap<String, String>>,
        xml: bool,
    ) -> String {
        let t = Template::compile(text, values, &TimeZone::UTC, xml).unwrap();
        let req = sample();
        let mut out = String::new();
        let ctx = RenderContext {
            request: &req,
            now: "2026-11-22T04:30:00Z".parse().unwrap(),
            sequence: "000042",
        };
        t.render(&ctx, &mut out);
        out
    }

    #[test]
    fn fields_and_formats() {
        let none = BTreeMap::new();
        assert_eq!(
            render(
                "{amount} {amount:decimal} {currency} {currency_code} {kind} {channel:lower}",
                &none,
                false
            ),
            "12550 125.50 840 USD PURCHASE pos"
        );
        assert_eq!(
            render("{card_last4}|{merchant}|{sequence}", &none, false),
            "0010||000042"
        );
        assert_eq!(
            render("{now:%Y%m%d%H%M%S} {now}", &none, false),
            "20261122043000 2026-11-22T04:30:00.000Z"
        );
        assert_eq!(
            render("{{literal}} {rrn}", &none, false),
            "{literal} 531909004711"
        );
    }

    /// `{now:pattern}` at `now` in `zone`, and `{now}` (always UTC).
    fn local(zone: &str, now: &str) -> (String, String) {
        let zone = TimeZone::get(zone).unwrap();
        let none = BTreeMap::new();
        let t = Template::compile("{now:%Y-%m-%d %H:%M:%S %Z %z}|{now}", &none, &zone, false);
        let req = sample();
        let ctx = RenderContext {
            request: &req,
            now: now.parse().unwrap(),
            sequence: "",
        };
        let mut out = String::new();
        t.unwrap().render(&ctx, &mut out);
        let (local, iso) = out.split_once('|').unwrap();
        (local.to_owned(), iso.to_owned())
    }

    #[test]
    fn patterns_render_in_the_time_zone_across_daylight_saving_time() {
        // Stockholm: CET until 2026-03-29 01:00 UTC, CEST until 2026-10-25 01:00 UTC.
        let cases = [
            ("2026-03-29T00:59:59Z", "2026-03-29 01:59:59 CET +0100"),
            ("2026-03-29T01:00:00Z", "2026-03-29 03:00:00 CEST +0200"),
            ("2026-10-25T00:30:00Z", "2026-10-25 02:30:00 CEST +0200"),
            ("2026-10-25T01:30:00Z", "2026-10-25 02:30:00 CET +0100"),
            ("2026-12-31T23:30:00Z", "2027-01-01 00:30:00 CET +0100"),
        ];
        for (now, want) in cases {
            let (local, iso) = local("Europe/Stockholm", now);
            assert_eq!(local, want, "{now}");
            assert_eq!(iso, now.replace('Z', ".000Z"), "iso stays UTC");
        }
        let (utc, _) = local("UTC", "2026-03-29T01:00:00Z");
        assert_eq!(utc, "2026-03-29 01:00:00 UTC +0000");
    }

    #[test]
    fn time_patterns_are_checked_when_compiled() {
        let none = BTreeMap::new();
        let err = Template::compile("{deadline:%Y%J}", &none, &TimeZone::UTC, false);
        assert!(
            matches!(&err, Err(TemplateError::BadTimePattern { pattern, .. }) if pattern == "%Y%J"),
            "{err:?}"
        );
    }

    #[test]
    fn xml_templates_escape_values() {
        let none = BTreeMap::new();
        assert_eq!(
            render("<t>{terminal}</t>", &none, true),
            "<t>POS&lt;01&gt;&amp;</t>"
        );
        assert_eq!(render("<t>{terminal}</t>", &none, false), "<t>POS<01>&</t>");
    }

    #[test]
    fn vendor_values() {
        let mut values = BTreeMap::new();
        values.insert(
            "kind".to_string(),
            KINDS
                .iter()
                .map(|k| (k.to_string(), format!("V-{k}")))
                .collect(),
        );
        assert_eq!(render("{kind:vendor}", &values, false), "V-PURCHASE");
        let mut partial = values.clone();
        partial.get_mut("kind").unwrap().remove("REFUND");
        assert!(matches!(
            Template::compile("{kind:vendor}", &partial, &TimeZone::UTC, false),
            Err(TemplateError::VendorValues { .. })
        ));
    }

    #[test]
    fn sections_render_only_with_a_value() {
        let none = BTreeMap::new();
        assert_eq!(
            render("a{?merchant}<m>{merchant}</m>{/merchant}b", &none, true),
            "ab"
        );
        assert_eq!(
            render("a{?rrn}<r>{rrn}</r>{/rrn}b", &none, true),
            "a<r>531909004711</r>b"
        );
        assert_eq!(
            Template::compile("{?rrn}x", &none, &TimeZone::UTC, true),
            Err(TemplateError::UnclosedSection("rrn".into()))
        );
        assert_eq!(
            Template::compile("x{/rrn}", &none, &TimeZone::UTC, true),
            Err(TemplateError::StraySectionEnd("rrn".into()))
        );
    }

    #[test]
    fn compile_errors() {
        let none = BTreeMap::new();
        assert_eq!(
            Template::compile("{nope}", &none, &TimeZone::UTC, true),
            Err(TemplateError::UnknownField("nope".into()))
        );
        assert!(matches!(
            Template::compile("{amount:hex}", &none, &TimeZone::UTC, true),
            Err(TemplateError::BadFormat { .. })
        ));
        assert!(matches!(
            Template::compile("{rrn:decimal}", &none, &TimeZone::UTC, true),
            Err(TemplateError::BadFormat { .. })
        ));
        assert_eq!(
            Template::compile("a {rrn", &none, &TimeZone::UTC, true),
            Err(TemplateError::Unclosed(2))
        );
        assert_eq!(
            Template::compile("a } b", &none, &TimeZone::UTC, true),
            Err(TemplateError::LoneBrace(2))
        );
    }
}
