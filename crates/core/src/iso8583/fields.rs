//! Typed values of the common data elements, built only by validating, and
//! the [`Message`] accessors that read and write them.
//!
//! Accessors return [`FieldError::Missing`] for an absent field and
//! [`FieldError::Invalid`] (with the reason) for content that does not fit
//! the type. Fields without an accessor stay raw bytes in the message.

use std::fmt;

use super::error::{FieldError, ValueError};
use super::message::Mti;
use crate::mask;

/// Field numbers of the data elements cardhub reads by name.
pub mod de {
    pub const PAN: u16 = 2;
    pub const PROCESSING_CODE: u16 = 3;
    pub const AMOUNT: u16 = 4;
    pub const TRANSMISSION_TIME: u16 = 7;
    pub const STAN: u16 = 11;
    pub const LOCAL_TIME: u16 = 12;
    pub const LOCAL_DATE: u16 = 13;
    pub const EXPIRY: u16 = 14;
    pub const MERCHANT_TYPE: u16 = 18;
    pub const POS_ENTRY_MODE: u16 = 22;
    pub const ACQUIRER: u16 = 32;
    pub const TRACK2: u16 = 35;
    pub const RRN: u16 = 37;
    pub const AUTH_ID: u16 = 38;
    pub const RESPONSE_CODE: u16 = 39;
    pub const TERMINAL: u16 = 41;
    pub const MERCHANT: u16 = 42;
    pub const CARD_ACCEPTOR_NAME: u16 = 43;
    pub const CURRENCY: u16 = 49;
    pub const ADDITIONAL_AMOUNTS: u16 = 54;
    pub const NETWORK_MANAGEMENT_CODE: u16 = 70;
    pub const ORIGINAL_DATA: u16 = 90;
    pub const REPLACEMENT_AMOUNTS: u16 = 95;
    pub const ACCOUNT_1: u16 = 102;
    pub const ACCOUNT_2: u16 = 103;
}

/// A primary account number: 12–19 digits. `Debug` and `Display` mask it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pan(String);

impl Pan {
    /// Validates a card number.
    ///
    /// # Errors
    /// The reason, when it is not 12 to 19 digits.
    pub fn new(digits: &str) -> Result<Pan, ValueError> {
        if (12..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Pan(digits.to_string()))
        } else {
            Err(ValueError::Pan {
                length: digits.len(),
            })
        }
    }

    /// The clear digits. Only for hashing, encryption or sending on; never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four digits, for display.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// First 6 + last 4, the rest `*`.
    pub fn masked(&self) -> String {
        mask::pan(&self.0)
    }

    /// Whether the Luhn check digit is right.
    pub fn luhn_ok(&self) -> bool {
        let sum: u32 = self
            .0
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// DE 3: transaction type and the from / to account types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingCode {
    /// 00 purchase, 01 cash, 20 refund, 21 deposit / load, 31 balance inquiry, …
    pub transaction_type: u8,
    pub from_account: u8,
    pub to_account: u8,
}

/// An amount in minor units of its currency, at most 12 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    /// Largest amount a 12-digit field holds.
    pub const MAX: u64 = 999_999_999_999;

    /// # Errors
    /// The reason, when the amount needs more than 12 digits.
    pub fn new(minor_units: u64) -> Result<Amount, ValueError> {
        if minor_units <= Amount::MAX {
            Ok(Amount(minor_units))
        } else {
            Err(ValueError::Amount { minor_units })
        }
    }

    pub fn minor_units(self) -> u64 {
        self.0
    }
}

/// DE 11: system trace audit number, 0–999999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stan(u32);

impl Stan {
    /// # Errors
    /// The reason, when it needs more than 6 digits.
    pub fn new(value: u32) -> Result<Stan, ValueError> {
        if value <= 999_999 {
            Ok(Stan(value))
        } else {
            Err(ValueError::Stan { value })
        }
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// DE 7: transmission date and time, MMDDhhmmss (UTC by convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransmissionTime {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// DE 12: local time hhmmss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// DE 13: local date MMDD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDate {
    pub month: u8,
    pub day: u8,
}

/// DE 14 (and track 2): card expiry YYMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry {
    pub year: u8,
    pub month: u8,
}

impl Expiry {
    /// Reads `YYMM`.
    ///
    /// # Errors
    /// The reason, when it is not 4 digits with a month from 01 to 12.
    pub fn parse(text: &str) -> Result<Expiry, ValueError> {
        let b = text.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return Err(ValueError::ExpiryShape);
        }
        let year = (b[0] - b'0') * 10 + (b[1] - b'0');
        let month = (b[2] - b'0') * 10 + (b[3] - b'0');
        if !(1..=12).contains(&month) {
            return Err(ValueError::ExpiryMonth { month });
        }
        Ok(Expiry { year, month })
    }
}

/// `YYMM`.
impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}{:02}", self.year, self.month)
    }
}

/// DE 35: track 2 equivalent data. `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct Track2 {
    pub pan: Pan,
    pub expiry: Option<Expiry>,
    /// Three-digit service code, when present.
    pub service_code: Option<String>,
}

impl fmt::Debug for Track2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Track2")
            .field("pan", &self.pan)
            .field("expiry", &self.expiry)
            .field("service_code", &self.service_code)
            .finish()
    }
}

/// DE 39: two-character response code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[0-9A-Za-z]{2}$")]
pub struct ResponseCode([u8; 2]);

impl ResponseCode {
    pub const APPROVED: ResponseCode = ResponseCode(*b"00");
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode(*b"12");
    pub const FORMAT_ERROR: ResponseCode = ResponseCode(*b"30");
    pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode(*b"91");
    pub const SYSTEM_ERROR: ResponseCode = ResponseCode(*b"96");

    /// A code from two bytes known to be letters or digits (constants only).
    pub(crate) const fn from_bytes(code: [u8; 2]) -> ResponseCode {
        ResponseCode(code)
    }

    /// # Errors
    /// The reason, when it is not two letters or digits.
    pub fn new(code: &str) -> Result<ResponseCode, ValueError> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => {
                Ok(ResponseCode([*a, *b]))
            }
            _ => Err(ValueError::ResponseCode {
                code: code.to_owned(),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    pub fn is_approval(&self) -> bool {
        self.0 == *b"00"
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseCode({})", self.as_str())
    }
}

/// Debit or credit, as DE 54 and DE 95 write it (`D` / `C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Credit,
    Debit,
}

/// One 20-character entry of DE 54.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdditionalAmount {
    /// Account type, 2 digits (00 default, 10 savings, 20 checking, 30 credit).
    pub account_type: String,
    /// Amount type, 2 digits (01 ledger balance, 02 available balance, …).
    pub amount_type: String,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    pub sign: Sign,
    pub amount: Amount,
}

/// DE 90: the original transaction's keys, for reversals and advices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalData {
    pub mti: Mti,
    pub stan: Stan,
    /// Original DE 7, MMDDhhmmss.
    pub transmission_time: String,
    /// Original DE 32, right-justified and zero-padded to 11.
    pub acquirer: String,
    /// Original DE 33, right-justified and zero-padded to 11.
    pub forwarding: String,
}

/// DE 95: replacement amounts of a partial reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacementAmounts {
    /// The amount that really happened (what remains after the reversal).
    pub transaction: Amount,
    pub settlement: Amount,
    /// Transaction fee, `C`/`D` + 8 digits, as sent.
    pub transaction_fee: String,
    pub settlement_fee: String,
}

/// The product a BASE24 header's indicator names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base24Product {
    /// `00`: network management.
    Network,
    /// `01`: ATM.
    Atm,
    /// `02`: POS.
    Pos,
    /// Any other two-digit indicator.
    Other([u8; 2]),
}

/// The 12-byte BASE24 header: `ISO` + product indicator (2) + release (2) +
/// status (3) + originator (1) + responder (1), e.g. `ISO026000070`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base24Header {
    pub product: Base24Product,
    pub release: String,
    pub status: String,
    pub originator: char,
    pub responder: char,
}

impl Base24Header {
    /// Reads a header's logical bytes.
    ///
    /// # Errors
    /// The reason, when it is not `ISO` followed by 9 digits.
    pub fn parse(raw: &[u8]) -> Result<Base24Header, ValueError> {
        match raw {
            [b'I', b'S', b'O', rest @ ..]
                if rest.len() == 9 && rest.iter().all(u8::is_ascii_digit) =>
            {
                let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
                Ok(Base24Header {
                    product: match [rest[0], rest[1]] {
                        [b'0', b'0'] => Base24Product::Network,
                        [b'0', b'1'] => Base24Product::Atm,
                        [b'0', b'2'] => Base24Product::Pos,
                        other => Base24Product::Other(other),
                    },
                    release: text(&rest[2..4]),
                    status: text(&rest[4..7]),
                    originator: char::from(rest[7]),
                    responder: char::from(rest[8]),
                })
            }
            _ => Err(ValueError::Base24Header {
                header: String::from_utf8_lossy(raw).into_owned(),
            }),
        }
    }
}

impl fmt::Display for Base24Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let product = match self.product {
            Base24Product::Network => "00 network".to_string(),
            Base24Product::Atm => "01 ATM".to_string(),
            Base24Product::Pos => "02 POS".to_string(),
            Base24Product::Other(p) => String::from_utf8_lossy(&p).into_owned(),
        };
        write!(
            f,
            "BASE24 product {product}, release {}, status {}, originator {}, responder {}",
            self.release, self.status, self.originator, self.responder
        )
    }
}

/// Parses an all-digit slice of known width into a number.
pub(super) fn digits(field: u16, raw: &[u8]) -> Result<u64, FieldError> {
    if raw.is_empty() || raw.len() > 18 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(FieldError::invalid(
            field,
            format!("{:?} is not a number", String::from_utf8_lossy(raw)),
        ));
    }
    Ok(raw
        .iter()
        .fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0')))
}

/// Reads `width`-digit groups of a fixed field and checks each is within `max`.
pub(super) fn numbers<const N: usize>(
    field: u16,
    raw: &[u8],
    width: usize,
    ranges: [(u8, u8); N],
) -> Result<[u8; N], FieldError> {
    if raw.len() != width * N {
        return Err(FieldError::invalid(
            field,
            format!("length {} is not {}", raw.len(), width * N),
        ));
    }
    let mut out = [0u8; N];
    for (i, (lo, hi)) in ranges.into_iter().enumerate() {
        let v = digits(field, &raw[i * width..(i + 1) * width])?;
        if v < u64::from(lo) || v > u64::from(hi) {
            return Err(FieldError::invalid(
                field,
                format!("part {} is {v}, outside {lo}..={hi}", i + 1),
            ));
        }
        out[i] = v as u8;
    }
    Ok(out)
}

pub(super) fn parse_expiry(field: u16, raw: &[u8]) -> Result<Expiry, FieldError> {
    let text = std::str::from_utf8(raw).map_err(|_| FieldError::invalid(field, "not text"))?;
    Expiry::parse(text).map_err(|source| FieldError::Value { field, source })
}

pub(super) fn parse_amount(field: u16, raw: &[u8]) -> Result<Amount, FieldError> {
    Amount::new(digits(field, raw)?).map_err(|source| FieldError::Value { field, source })
}

pub(super) fn parse_track2(raw: &[u8]) -> Result<Track2, FieldError> {
    let field = de::TRACK2;
    let body = raw.strip_prefix(b";").unwrap_or(raw);
    let body = body.strip_suffix(b"?").unwrap_or(body);
    let sep = body
        .iter()
        .position(|&b| b == b'=' || b == b'D')
        .ok_or_else(|| FieldError::invalid(field, "no field separator"))?;
    let pan = std::str::from_utf8(&body[..sep])
        .ok()
        .and_then(|s| Pan::new(s).ok())
        .ok_or_else(|| FieldError::invalid(field, "PAN part is not 12 to 19 digits"))?;
    let rest = &body[sep + 1..];
    let expiry = match rest.get(..4) {
        Some(e) => Some(parse_expiry(field, e)?),
        None => None,
    };
    let service_code = rest
        .get(4..7)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    Ok(Track2 {
        pan,
        expiry,
        service_code,
    })
}

pub(super) fn parse_additional_amounts(raw: &[u8]) -> Result<Vec<AdditionalAmount>, FieldError> {
    let field = de::ADDITIONAL_AMOUNTS;
    if !raw.len().is_multiple_of(20) {
        return Err(FieldError::invalid(
            field,
            format!("length {} is not a multiple of 20", raw.len()),
        ));
    }
    raw.chunks(20)
        .map(|e| {
            let sign = match e[7] {
                b'C' => Sign::Credit,
                b'D' => Sign::Debit,
                other => {
                    return Err(FieldError::invalid(
                        field,
                        format!("sign {:?} is not C or D", other as char),
                    ));
                }
            };
            digits(field, &e[..4])?;
            Ok(AdditionalAmount {
                account_type: String::from_utf8_lossy(&e[..2]).into_owned(),
                amount_type: String::from_utf8_lossy(&e[2..4]).into_owned(),
                currency: digits(field, &e[4..7])? as u16,
                sign,
                amount: parse_amount(field, &e[8..20])?,
            })
        })
        .collect()
}

pub(super) fn parse_original_data(raw: &[u8]) -> Result<OriginalData, FieldError> {
    let field = de::ORIGINAL_DATA;
    if raw.len() != 42 {
        return Err(FieldError::invalid(
            field,
            format!("length {} is not 42", raw.len()),
        ));
    }
    let mut mti = [0u8; 4];
    mti.copy_from_slice(&raw[..4]);
    let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    if let Some(at) = raw.iter().position(|b| !b.is_ascii_digit()) {
        return Err(FieldError::invalid(
            field,
            format!("non-digit at position {at}"),
        ));
    }
    Ok(OriginalData {
        mti: Mti::from_digits(mti).map_err(|source| FieldError::Value { field, source })?,
        stan: Stan(digits(field, &raw[4..10])? as u32),
        transmission_time: text(&raw[10..20]),
        acquirer: text(&raw[20..31]),
        forwarding: text(&raw[31..42]),
    })
}

pub(super) fn parse_replacement_amounts(raw: &[u8]) -> Result<ReplacementAmounts, FieldError> {
    let field = de::REPLACEMENT_AMOUNTS;
    if raw.len() != 42 {
        return Err(FieldError::invalid(
            field,
            format!("length {} is not 42", raw.len()),
        ));
    }
    let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    Ok(ReplacementAmounts {
        transaction: parse_amount(field, &raw[..12])?,
        settlement: parse_amount(field, &raw[12..24])?,
        transaction_fee: text(&raw[24..33]),
        settlement_fee: text(&raw[33..42]),
    })
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
