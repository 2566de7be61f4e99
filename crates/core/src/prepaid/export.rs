//! The accounting export: one orderer's card postings of one UTC day, for
//! its finance system, as CSV or fixed-width records.
//!
//! A record per posting on a card account of the orderer booked that day
//! (UTC calendar day of `booked_at`): loads, refunds, purchases
//! (captures), reversals, moves and replacements, so the records of a card
//! sum to its balance change. Each carries the card account, kind,
//! reference, merchant (the card acceptor of the authorization, DE 42, for
//! purchases and their reversals) and its name and location (DE 43),
//! signed amount in minor units, currency,
//! an empty VAT field (the ledger does not know VAT) and, for purchases on
//! small-purchase cards, the attestation state with its user and comment.
//!
//! Regeneration is idempotent: an export is a function of the store as of
//! `as_of_us` — entries booked and attestations recorded after it are left
//! out — in entry order, with no generation time in the body. The same
//! day, orderer, format and `as_of_us` give the same bytes, and a past day
//! exported again later gives the same bytes unless one of its purchases
//! was attested or disputed in between. Byte layout: `docs/prepaid.md`
//! ("Accounting export").

use crate::store::sql;
use crate::store::sql::{Connection, params};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::attestation::{AttestationState, LATEST_ATTESTATION};
use super::{Ledger, PrepaidError, ProgrammeKind};
use crate::money::Currency;

/// The two layouts of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header line, CRLF line ends.
    Csv,
    /// Fixed-width records of [`FIXED_RECORD_BYTES`] bytes and a LF each:
    /// a header, one detail record a posting, a trailer.
    FixedWidth,
}

/// The CSV header line's columns, in order.
pub const EXPORT_COLUMNS: [&str; 14] = [
    "date",
    "booked_at",
    "entry",
    "card_account",
    "kind",
    "reference",
    "merchant",
    "merchant_name",
    "amount",
    "currency",
    "vat",
    "attestation",
    "attestation_user",
    "comment",
];

/// The fixed-width detail record: each field's width in bytes, after the
/// record type byte `D`, in the order of [`EXPORT_COLUMNS`] but for
/// `merchant_name`, which is last: added after the layout shipped, at the
/// end, so every earlier field keeps its offset.
pub const FIXED_WIDTHS: [usize; 14] = [8, 20, 12, 64, 8, 64, 40, 20, 3, 20, 8, 64, 200, 40];

/// Bytes of every fixed-width record, without its LF.
pub const FIXED_RECORD_BYTES: usize =
    1 + 8 + 20 + 12 + 64 + 8 + 64 + 40 + 20 + 3 + 20 + 8 + 64 + 200 + 40;

/// One exported posting.
struct Row {
    entry: i64,
    booked_at_us: i64,
    kind: String,
    reference: String,
    card_account: String,
    currency: String,
    amount: i64,
    merchant: Option<String>,
    merchant_name: Option<String>,
    /// `None`: not a small-purchase purchase, nothing to attest.
    attestation: Option<AttestationState>,
    user: Option<String>,
    comment: Option<String>,
}

fn rows(
    conn: &Connection,
    orderer: &str,
    from_us: i64,
    to_us: i64,
    as_of_us: i64,
) -> sql::Result<Vec<Row>> {
    let sql = format!(
        "SELECT e.id, e.booked_at_us, e.kind, e.reference, a.name, a.currency, p.amount,
                e.merchant, e.merchant_name,
                CAST(CASE WHEN e.kind = 'capture' AND g.kind = ?2 THEN 1 ELSE 0 END AS BIGINT),
                t.action, t.\"user\", t.comment
         FROM prepaid_entries e
         JOIN prepaid_postings p ON p.entry = e.id
         JOIN prepaid_accounts a ON a.id = p.account
         JOIN prepaid_programmes g ON g.id = a.programme
         {LATEST_ATTESTATION}
         WHERE a.kind = 'card' AND a.orderer = ?3
           AND e.booked_at_us >= ?4 AND e.booked_at_us < ?5 AND e.booked_at_us <= ?1
         ORDER BY e.id, a.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            as_of_us,
            ProgrammeKind::SmallPurchase.as_str(),
            orderer,
            from_us,
            to_us
        ],
        |r| {
            let numeric: u16 = r.get(5)?;
            let attestable: bool = r.get(9)?;
            let action: Option<String> = r.get(10)?;
            Ok(Row {
                entry: r.get(0)?,
                booked_at_us: r.get(1)?,
                kind: r.get(2)?,
                reference: r.get(3)?,
                card_account: r.get(4)?,
                currency: Currency::from_numeric(numeric)
                    .map_or_else(|_| numeric.to_string(), |c| c.code.to_string()),
                amount: r.get(6)?,
                merchant: r.get(7)?,
                merchant_name: r.get(8)?,
                attestation: attestable.then(|| AttestationState::from_action(action.as_deref())),
                user: r.get(11)?,
                comment: r.get(12)?,
            })
        },
    )?;
    rows.collect()
}

/// `booked_at` as RFC 3339 in UTC with microseconds, and as the fixed
/// layout's `YYYYMMDDHHMMSSffffff`.
fn times(us: i64) -> (String, String) {
    let seconds = Timestamp::from_second(us.div_euclid(1_000_000)).unwrap_or_default();
    let micros = us.rem_euclid(1_000_000);
    let utc = seconds.to_zoned(TimeZone::UTC);
    (
        format!("{}.{micros:06}Z", utc.strftime("%Y-%m-%dT%H:%M:%S")),
        format!("{}{micros:06}", utc.strftime("%Y%m%d%H%M%S")),
    )
}

/// The text values of a row, in [`EXPORT_COLUMNS`] order, for CSV.
fn csv_values(day: &str, row: &Row) -> [String; 14] {
    [
        day.to_string(),
        times(row.booked_at_us).0,
        row.entry.to_string(),
        row.card_account.clone(),
        row.kind.clone(),
        row.reference.clone(),
        row.merchant.clone().unwrap_or_default(),
        row.merchant_name.clone().unwrap_or_default(),
        row.amount.to_string(),
        row.currency.clone(),
        String::new(),
        row.attestation
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        row.user.clone().unwrap_or_default(),
        row.comment.clone().unwrap_or_default(),
    ]
}

fn csv(day: Date, rows: &[Row]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(EXPORT_COLUMNS)?;
    let day = day.to_string();
    for row in rows {
        out.write_record(csv_values(&day, row))?;
    }
    out.into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// `text` in exactly `width` bytes: control characters as spaces, cut
/// before the character that would not fit, padded with spaces.
fn field(out: &mut Vec<u8>, text: &str, width: usize) {
    let start = out.len();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        let bytes = c.encode_utf8(&mut buf).as_bytes();
        if out.len() - start + bytes.len() > width {
            break;
        }
        out.extend_from_slice(bytes);
    }
    out.resize(start + width, b' ');
}

/// A signed amount as `+` or `-` and zero-padded digits, `width` bytes.
fn signed(out: &mut Vec<u8>, amount: i64, width: usize) {
    let sign = if amount < 0 { '-' } else { '+' };
    let digits = width - 1;
    field(
        out,
        &format!("{sign}{:0digits$}", amount.unsigned_abs()),
        width,
    );
}

fn fixed(orderer: &str, day: Date, rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity((rows.len() + 2) * (FIXED_RECORD_BYTES + 1));
    let compact = day.strftime("%Y%m%d").to_string();
    let record = |out: &mut Vec<u8>, fill: &dyn Fn(&mut Vec<u8>)| {
        let start = out.len();
        fill(out);
        out.resize(start + FIXED_RECORD_BYTES, b' ');
        out.push(b'\n');
    };
    record(&mut out, &|out| {
        out.push(b'H');
        field(out, orderer, 64);
        field(out, &compact, 8);
    });
    for row in rows {
        record(&mut out, &|out| {
            let w = FIXED_WIDTHS;
            out.push(b'D');
            field(out, &compact, w[0]);
            field(out, &times(row.booked_at_us).1, w[1]);
            field(out, &format!("{:012}", row.entry), w[2]);
            field(out, &row.card_account, w[3]);
            field(out, &row.kind, w[4]);
            field(out, &row.reference, w[5]);
            field(out, row.merchant.as_deref().unwrap_or(""), w[6]);
            signed(out, row.amount, w[7]);
            field(out, &row.currency, w[8]);
            field(out, "", w[9]);
            field(
                out,
                row.attestation.map_or("", AttestationState::as_str),
                w[10],
            );
            field(out, row.user.as_deref().unwrap_or(""), w[11]);
            field(out, row.comment.as_deref().unwrap_or(""), w[12]);
            field(out, row.merchant_name.as_deref().unwrap_or(""), w[13]);
        });
    }
    record(&mut out, &|out| {
        out.push(b'T');
        field(out, &format!("{:012}", rows.len()), 12);
    });
    out
}

impl Ledger {
    /// The accounting export of `orderer`'s card postings booked on the UTC
    /// calendar day `day`, as of `as_of_us` (Unix microseconds: entries
    /// booked and attestations recorded later are left out; pass the
    /// current time for the latest state). Deterministic: the same
    /// arguments give the same bytes.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`], [`PrepaidError::InvalidDay`] for a
    /// day at the end of the calendar, [`PrepaidError::Store`].
    pub fn export_day(
        &self,
        orderer: &str,
        day: Date,
        format: ExportFormat,
        as_of_us: i64,
    ) -> Result<Vec<u8>, PrepaidError> {
        self.known_orderer(orderer)?;
        let invalid = |_| PrepaidError::InvalidDay {
            day: day.to_string(),
        };
        let start = day.to_zoned(TimeZone::UTC).map_err(invalid)?;
        let end = day
            .tomorrow()
            .and_then(|d| d.to_zoned(TimeZone::UTC))
            .map_err(invalid)?;
        let (from, to) = (
            start.timestamp().as_microsecond(),
            end.timestamp().as_microsecond(),
        );
        let rows = self.store.read(|c| rows(c, orderer, from, to, as_of_us))?;
        Ok(match format {
            ExportFormat::Csv => csv(day, &rows).map_err(PrepaidError::Export)?,
            ExportFormat::FixedWidth => fixed(orderer, day, &rows),
        })
    }
}
