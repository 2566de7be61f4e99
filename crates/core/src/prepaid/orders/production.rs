//! The card producer's files, fixed width (byte by byte in
//! `docs/prepaid.md`, "Card orders"): the card production file of an order
//! and the PIN mailer file. A codec only: it formats what the store holds
//! and does no I/O.
//!
//! Every record is [`RECORD_LEN`] bytes of printable ASCII and a line feed:
//! a header (`H`), one detail record (`D`) per card, a trailer (`T`) with
//! the count. Text fields are left-aligned and padded with spaces, numbers
//! right-aligned and padded with zeros. Names are embossed as
//! [`names::emboss`] makes them. The same order or mailer always gives the
//! same bytes (dates are the order's or the mailer's, not the writing's).

use super::OrderError;
use super::names::{self, NAME_LEN};
use crate::iso8583::fields::Pan;

/// Bytes of a record before its line feed.
pub const RECORD_LEN: usize = 160;
/// Format id in the production file's header.
pub const PRODUCTION_FORMAT: &str = "CHPROD01";
/// Format id in the PIN mailer file's header.
pub const MAILER_FORMAT: &str = "CHPINM01";

/// An order's cards, as the production file shows them.
#[derive(Debug, Clone)]
pub(super) struct ProductionOrder {
    pub id: i64,
    pub reference: String,
    pub programme: String,
    pub orderer_name: String,
    /// `YYYYMMDD` (UTC) of the order.
    pub date: String,
    pub personal: bool,
    pub cards: Vec<ProductionCard>,
}

/// One card of a production file (its PAN comes from the registry).
#[derive(Debug, Clone)]
pub(super) struct ProductionCard {
    pub sequence: u32,
    /// The ledger card account (the registry's `account`).
    pub account: String,
    /// `YYMM`.
    pub expiry: String,
    pub holder: Option<String>,
    /// The PIN request for the producer's HSM.
    pub pin_request: i64,
    /// The PIN goes in a PIN mailer (`M`), not with the card (`C`).
    pub pin_by_mailer: bool,
}

/// One record of a PIN mailer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MailerRecord {
    pub order: i64,
    pub sequence: u32,
    pub pan_masked: String,
    pub reorder: bool,
    pub pin_request: i64,
    pub holder: Option<String>,
    pub orderer_name: String,
}

/// The reference of a PIN request, as the producer's HSM gets it:
/// `PIN` and 13 digits.
pub fn pin_reference(id: i64) -> String {
    format!("PIN{id:013}")
}

/// One fixed-width record being built.
struct Record {
    kind: &'static str,
    bytes: Vec<u8>,
}

impl Record {
    fn new(kind: &'static str, code: u8) -> Record {
        let mut bytes = Vec::with_capacity(RECORD_LEN + 1);
        bytes.push(code);
        Record { kind, bytes }
    }

    /// A text field, left-aligned, space-padded.
    fn text(
        mut self,
        field: &'static str,
        value: &str,
        width: usize,
    ) -> Result<Record, OrderError> {
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) || value.len() > width {
            return Err(OrderError::Field {
                record: self.kind,
                field,
                reason: format!("{} bytes or not printable ASCII, for {width}", value.len()),
            });
        }
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes
            .resize(self.bytes.len() + width - value.len(), b' ');
        Ok(self)
    }

    /// A number, right-aligned, zero-padded.
    fn number(self, field: &'static str, value: i64, width: usize) -> Result<Record, OrderError> {
        let digits = format!("{value:0width$}");
        if value < 0 || digits.len() > width {
            return Err(OrderError::Field {
                record: self.kind,
                field,
                reason: format!("{value} does not fit {width} digits"),
            });
        }
        self.text(field, &digits, width)
    }

    /// Pads to [`RECORD_LEN`] and ends the line.
    fn end(mut self, out: &mut Vec<u8>) {
        self.bytes.resize(RECORD_LEN, b' ');
        self.bytes.push(b'\n');
        out.extend_from_slice(&self.bytes);
    }
}

fn embossed(field: &str, name: Option<&str>) -> Result<String, OrderError> {
    Ok(match name {
        Some(name) => names::emboss(field, name)?,
        None => String::new(),
    })
}

/// The production file of `order`, with `pans[i]` the PAN of
/// `order.cards[i]`. Holds clear PANs: write it only to the producer's
/// file, never to a log.
pub(super) fn production_file(
    order: &ProductionOrder,
    pans: &[Pan],
) -> Result<Vec<u8>, OrderError> {
    let count = i64::try_from(order.cards.len()).unwrap_or(i64::MAX);
    let orderer = names::emboss("orderer name", &order.orderer_name)?;
    let mut out = Vec::with_capacity((order.cards.len() + 2) * (RECORD_LEN + 1));
    Record::new("header", b'H')
        .text("format", PRODUCTION_FORMAT, 8)?
        .number("order", order.id, 10)?
        .text("reference", &order.reference, 35)?
        .text("programme", &order.programme, 20)?
        .text("orderer name", &orderer, NAME_LEN)?
        .text("order date", &order.date, 8)?
        .number("count", count, 6)?
        .text("personal", if order.personal { "P" } else { "I" }, 1)?
        .end(&mut out);
    for (card, pan) in order.cards.iter().zip(pans) {
        Record::new("detail", b'D')
            .number("order", order.id, 10)?
            .number("sequence", i64::from(card.sequence), 6)?
            .text("pan", pan.expose(), 19)?
            .text("expiry", &card.expiry, 4)?
            .text("orderer name", &orderer, NAME_LEN)?
            .text(
                "holder name",
                &embossed("holder name", card.holder.as_deref())?,
                NAME_LEN,
            )?
            .text("programme", &order.programme, 20)?
            .text(
                "pin delivery",
                if card.pin_by_mailer { "M" } else { "C" },
                1,
            )?
            .text("pin request", &pin_reference(card.pin_request), 16)?
            .end(&mut out);
    }
    Record::new("trailer", b'T')
        .number("order", order.id, 10)?
        .number("count", count, 6)?
        .end(&mut out);
    Ok(out)
}

/// The PIN mailer file `mailer` of `date` (`YYYYMMDD`): masked PANs only.
pub(super) fn mailer_file(
    mailer: i64,
    date: &str,
    records: &[MailerRecord],
) -> Result<Vec<u8>, OrderError> {
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity((records.len() + 2) * (RECORD_LEN + 1));
    Record::new("header", b'H')
        .text("format", MAILER_FORMAT, 8)?
        .number("mailer", mailer, 10)?
        .text("mailer date", date, 8)?
        .number("count", count, 6)?
        .end(&mut out);
    for r in records {
        Record::new("detail", b'D')
            .number("order", r.order, 10)?
            .number("sequence", i64::from(r.sequence), 6)?
            .text("masked pan", &r.pan_masked, 19)?
            .text("kind", if r.reorder { "R" } else { "N" }, 1)?
            .text("pin request", &pin_reference(r.pin_request), 16)?
            .text(
                "holder name",
                &embossed("holder name", r.holder.as_deref())?,
                NAME_LEN,
            )?
            .text(
                "orderer name",
                &names::emboss("orderer name", &r.orderer_name)?,
                NAME_LEN,
            )?
            .end(&mut out);
    }
    Record::new("trailer", b'T')
        .number("mailer", mailer, 10)?
        .number("count", count, 6)?
        .end(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> ProductionOrder {
        ProductionOrder {
            id: 7,
            reference: "REF-1".into(),
            programme: "city-social".into(),
            orderer_name: "Gemeente Düren".into(),
            date: "20250301".into(),
            personal: true,
            cards: vec![ProductionCard {
                sequence: 1,
                account: "REF-1-00001".into(),
                expiry: "2803".into(),
                holder: Some("Zoë Ågren".into()),
                pin_request: 42,
                pin_by_mailer: true,
            }],
        }
    }

    #[test]
    fn production_records_are_fixed_width_with_fields_in_place() {
        let pan = Pan::new("4761730000000017").unwrap();
        let bytes = production_file(&order(), &[pan]).unwrap();
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == RECORD_LEN));
        let d = std::str::from_utf8(lines[1]).unwrap();
        assert_eq!(&d[..17], "D0000000007000001");
        assert_eq!(&d[17..36], "4761730000000017   ");
        assert_eq!(&d[36..40], "2803");
        assert_eq!(d[40..66].trim_end(), "GEMEENTE DUEREN");
        assert_eq!(d[66..92].trim_end(), "ZOE AAGREN");
        assert_eq!(&d[112..129], "MPIN0000000000042");
        assert_eq!(&lines[2][..17], b"T0000000007000001");
    }

    #[test]
    fn a_field_too_wide_is_an_error_naming_it() {
        let mut o = order();
        o.programme = "p".repeat(21);
        let err = production_file(&o, &[Pan::new("4761730000000017").unwrap()]).unwrap_err();
        assert!(err.to_string().contains("programme"), "{err}");
    }
}
