//! Typed values of the common data elements, built only by validating, and
//! the [`Message`] accessors that read and write them.
//!
//! Accessors return [`FieldError::Missing`] for an absent field and
//! [`FieldError::Invalid`] (with the reason) for content that does not fit
//! the type. Fields without an accessor stay raw bytes in the message.

use std::fmt;

use super::error::FieldError;
use super::message::{Message, Mti};
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
    pub fn new(digits: &str) -> Result<Pan, String> {
        if (12..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Pan(digits.to_string()))
        } else {
            Err(format!(
                "PAN must be 12 to 19 digits, got {} characters",
                digits.len()
            ))
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
    pub fn new(minor_units: u64) -> Result<Amount, String> {
        if minor_units <= Amount::MAX {
            Ok(Amount(minor_units))
        } else {
            Err(format!("amount {minor_units} exceeds 12 digits"))
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
    pub fn new(value: u32) -> Result<Stan, String> {
        if value <= 999_999 {
            Ok(Stan(value))
        } else {
            Err(format!("STAN {value} exceeds 6 digits"))
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
    pub fn parse(text: &str) -> Result<Expiry, String> {
        let b = text.as_bytes();
        if b.len() != 4 || !b.iter().all(u8::is_ascii_digit) {
            return Err("expiry must be YYMM (4 digits)".into());
        }
        let year = (b[0] - b'0') * 10 + (b[1] - b'0');
        let month = (b[2] - b'0') * 10 + (b[3] - b'0');
        if !(1..=12).contains(&month) {
            return Err(format!("expiry month {month:02} is not 01 to 12"));
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
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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
    pub fn new(code: &str) -> Result<ResponseCode, String> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => {
                Ok(ResponseCode([*a, *b]))
            }
            _ => Err(format!(
                "response code {code:?} is not two letters or digits"
            )),
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
    pub fn parse(raw: &[u8]) -> Result<Base24Header, String> {
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
            _ => Err(format!(
                "BASE24 header {:?} is not ISO + 9 digits",
                String::from_utf8_lossy(raw)
            )),
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
fn digits(field: u16, raw: &[u8]) -> Result<u64, FieldError> {
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
fn numbers<const N: usize>(
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

fn parse_expiry(field: u16, raw: &[u8]) -> Result<Expiry, FieldError> {
    let text = std::str::from_utf8(raw).map_err(|_| FieldError::invalid(field, "not text"))?;
    Expiry::parse(text).map_err(|e| FieldError::invalid(field, e))
}

fn parse_amount(field: u16, raw: &[u8]) -> Result<Amount, FieldError> {
    Amount::new(digits(field, raw)?).map_err(|e| FieldError::invalid(field, e))
}

fn parse_track2(raw: &[u8]) -> Result<Track2, FieldError> {
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

fn parse_additional_amounts(raw: &[u8]) -> Result<Vec<AdditionalAmount>, FieldError> {
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

fn parse_original_data(raw: &[u8]) -> Result<OriginalData, FieldError> {
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
        mti: Mti::from_digits(mti).map_err(|e| FieldError::invalid(field, e))?,
        stan: Stan(digits(field, &raw[4..10])? as u32),
        transmission_time: text(&raw[10..20]),
        acquirer: text(&raw[20..31]),
        forwarding: text(&raw[31..42]),
    })
}

fn parse_replacement_amounts(raw: &[u8]) -> Result<ReplacementAmounts, FieldError> {
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

impl Message {
    fn required(&self, field: u16) -> Result<&[u8], FieldError> {
        self.get(field).ok_or(FieldError::Missing { field })
    }

    /// DE 2.
    ///
    /// # Errors
    /// Missing, or not 12–19 digits.
    pub fn pan(&self) -> Result<Pan, FieldError> {
        let raw = self.required(de::PAN)?;
        std::str::from_utf8(raw)
            .map_err(|_| FieldError::invalid(de::PAN, "not text"))
            .and_then(|s| Pan::new(s).map_err(|e| FieldError::invalid(de::PAN, e)))
    }

    /// DE 3.
    ///
    /// # Errors
    /// Missing, or not 6 digits.
    pub fn processing_code(&self) -> Result<ProcessingCode, FieldError> {
        let [transaction_type, from_account, to_account] = numbers(
            de::PROCESSING_CODE,
            self.required(de::PROCESSING_CODE)?,
            2,
            [(0, 99); 3],
        )?;
        Ok(ProcessingCode {
            transaction_type,
            from_account,
            to_account,
        })
    }

    /// DE 4 in minor units.
    ///
    /// # Errors
    /// Missing, or not a number of at most 12 digits.
    pub fn amount(&self) -> Result<Amount, FieldError> {
        parse_amount(de::AMOUNT, self.required(de::AMOUNT)?)
    }

    /// DE 7.
    ///
    /// # Errors
    /// Missing, or not a valid MMDDhhmmss.
    pub fn transmission_time(&self) -> Result<TransmissionTime, FieldError> {
        let raw = self.required(de::TRANSMISSION_TIME)?;
        let [month, day, hour, minute, second] = numbers(
            de::TRANSMISSION_TIME,
            raw,
            2,
            [(1, 12), (1, 31), (0, 23), (0, 59), (0, 59)],
        )?;
        Ok(TransmissionTime {
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// DE 11.
    ///
    /// # Errors
    /// Missing, or not a number of at most 6 digits.
    pub fn stan(&self) -> Result<Stan, FieldError> {
        let v = digits(de::STAN, self.required(de::STAN)?)?;
        Stan::new(u32::try_from(v).unwrap_or(u32::MAX))
            .map_err(|e| FieldError::invalid(de::STAN, e))
    }

    /// DE 12.
    ///
    /// # Errors
    /// Missing, or not a valid hhmmss.
    pub fn local_time(&self) -> Result<LocalTime, FieldError> {
        let raw = self.required(de::LOCAL_TIME)?;
        let [hour, minute, second] = numbers(de::LOCAL_TIME, raw, 2, [(0, 23), (0, 59), (0, 59)])?;
        Ok(LocalTime {
            hour,
            minute,
            second,
        })
    }

    /// DE 13.
    ///
    /// # Errors
    /// Missing, or not a valid MMDD.
    pub fn local_date(&self) -> Result<LocalDate, FieldError> {
        let raw = self.required(de::LOCAL_DATE)?;
        let [month, day] = numbers(de::LOCAL_DATE, raw, 2, [(1, 12), (1, 31)])?;
        Ok(LocalDate { month, day })
    }

    /// DE 14.
    ///
    /// # Errors
    /// Missing, or not a valid YYMM.
    pub fn expiry(&self) -> Result<Expiry, FieldError> {
        parse_expiry(de::EXPIRY, self.required(de::EXPIRY)?)
    }

    /// DE 18, the merchant category code.
    ///
    /// # Errors
    /// Missing, or not 4 digits.
    pub fn merchant_type(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::MERCHANT_TYPE, 4)? as u16)
    }

    /// DE 22, the point-of-service entry mode (3 digits, as sent).
    ///
    /// # Errors
    /// Missing, or not digits.
    pub fn pos_entry_mode(&self) -> Result<String, FieldError> {
        self.digit_text(de::POS_ENTRY_MODE)
    }

    /// DE 32, the acquiring institution id.
    ///
    /// # Errors
    /// Missing, or not digits.
    pub fn acquirer(&self) -> Result<String, FieldError> {
        self.digit_text(de::ACQUIRER)
    }

    /// DE 35.
    ///
    /// # Errors
    /// Missing, or without a separator, PAN or valid expiry.
    pub fn track2(&self) -> Result<Track2, FieldError> {
        parse_track2(self.required(de::TRACK2)?)
    }

    /// DE 37, the retrieval reference number.
    ///
    /// # Errors
    /// Missing.
    pub fn rrn(&self) -> Result<String, FieldError> {
        self.text(de::RRN)
    }

    /// DE 38, the authorization id.
    ///
    /// # Errors
    /// Missing.
    pub fn auth_id(&self) -> Result<String, FieldError> {
        self.text(de::AUTH_ID)
    }

    /// DE 39.
    ///
    /// # Errors
    /// Missing, or not two letters or digits.
    pub fn response_code(&self) -> Result<ResponseCode, FieldError> {
        let text = self.text(de::RESPONSE_CODE)?;
        ResponseCode::new(&text).map_err(|e| FieldError::invalid(de::RESPONSE_CODE, e))
    }

    /// DE 41, the terminal id, as sent (BASE24 pads it to 16).
    ///
    /// # Errors
    /// Missing.
    pub fn terminal_id(&self) -> Result<String, FieldError> {
        self.text(de::TERMINAL)
    }

    /// DE 42, the card acceptor (merchant) id.
    ///
    /// # Errors
    /// Missing.
    pub fn merchant_id(&self) -> Result<String, FieldError> {
        self.text(de::MERCHANT)
    }

    /// DE 43, the card acceptor name and location.
    ///
    /// # Errors
    /// Missing.
    pub fn card_acceptor_name(&self) -> Result<String, FieldError> {
        self.text(de::CARD_ACCEPTOR_NAME)
    }

    /// DE 49, the ISO 4217 numeric currency of DE 4.
    ///
    /// # Errors
    /// Missing, or not 3 digits.
    pub fn currency(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::CURRENCY, 3)? as u16)
    }

    /// DE 54, the additional amounts (balances).
    ///
    /// # Errors
    /// Missing, or an entry that is not 20 characters of the layout.
    pub fn additional_amounts(&self) -> Result<Vec<AdditionalAmount>, FieldError> {
        parse_additional_amounts(self.required(de::ADDITIONAL_AMOUNTS)?)
    }

    /// DE 70, the network management information code.
    ///
    /// # Errors
    /// Missing, or not 3 digits.
    pub fn network_management_code(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::NETWORK_MANAGEMENT_CODE, 3)? as u16)
    }

    /// DE 90.
    ///
    /// # Errors
    /// Missing, or not 42 digits.
    pub fn original_data(&self) -> Result<OriginalData, FieldError> {
        parse_original_data(self.required(de::ORIGINAL_DATA)?)
    }

    /// DE 95.
    ///
    /// # Errors
    /// Missing, or not 42 characters with numeric amounts.
    pub fn replacement_amounts(&self) -> Result<ReplacementAmounts, FieldError> {
        parse_replacement_amounts(self.required(de::REPLACEMENT_AMOUNTS)?)
    }

    /// DE 102, the "from" account.
    ///
    /// # Errors
    /// Missing.
    pub fn account_1(&self) -> Result<String, FieldError> {
        self.text(de::ACCOUNT_1)
    }

    /// DE 103, the "to" account.
    ///
    /// # Errors
    /// Missing.
    pub fn account_2(&self) -> Result<String, FieldError> {
        self.text(de::ACCOUNT_2)
    }

    /// Sets DE 2.
    pub fn set_pan(&mut self, pan: &Pan) {
        self.set(de::PAN, pan.expose());
    }

    /// Sets DE 4 as 12 zero-padded digits.
    pub fn set_amount(&mut self, amount: Amount) {
        self.set(de::AMOUNT, format!("{:012}", amount.minor_units()));
    }

    /// Sets DE 11 as 6 zero-padded digits.
    pub fn set_stan(&mut self, stan: Stan) {
        self.set(de::STAN, stan.to_string());
    }

    /// Sets DE 39.
    pub fn set_response_code(&mut self, code: ResponseCode) {
        self.set(de::RESPONSE_CODE, code.as_str());
    }

    /// Sets DE 54 from its entries.
    pub fn set_additional_amounts(&mut self, amounts: &[AdditionalAmount]) {
        let text: String = amounts
            .iter()
            .map(|a| {
                format!(
                    "{:0>2.2}{:0>2.2}{:03}{}{:012}",
                    a.account_type,
                    a.amount_type,
                    a.currency,
                    match a.sign {
                        Sign::Credit => 'C',
                        Sign::Debit => 'D',
                    },
                    a.amount.minor_units()
                )
            })
            .collect();
        self.set(de::ADDITIONAL_AMOUNTS, text);
    }

    fn fixed_number(&self, field: u16, width: usize) -> Result<u64, FieldError> {
        let raw = self.required(field)?;
        if raw.len() != width {
            return Err(FieldError::invalid(field, format!("not {width} digits")));
        }
        digits(field, raw)
    }

    fn digit_text(&self, field: u16) -> Result<String, FieldError> {
        let raw = self.required(field)?;
        if raw.iter().all(u8::is_ascii_digit) {
            Ok(String::from_utf8_lossy(raw).into_owned())
        } else {
            Err(FieldError::invalid(field, "not digits"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(fields: &[(u16, &str)]) -> Message {
        let mut m = Message::new("0100".parse().unwrap());
        for (n, v) in fields {
            m.set(*n, *v);
        }
        m
    }

    #[test]
    fn reads_common_fields() {
        let m = msg(&[
            (2, "4761739001010010"),
            (3, "013000"),
            (4, "000000012550"),
            (7, "1122030201"),
            (11, "000123"),
            (14, "2812"),
            (18, "5411"),
            (35, "4761739001010010=28121011234567"),
            (49, "978"),
            (54, "1002978C0000000500002001978D000000001000"),
            (70, "301"),
        ]);
        assert_eq!(m.pan().unwrap().last4(), "0010");
        assert!(m.pan().unwrap().luhn_ok());
        assert_eq!(
            m.processing_code().unwrap(),
            ProcessingCode {
                transaction_type: 1,
                from_account: 30,
                to_account: 0
            }
        );
        assert_eq!(m.amount().unwrap().minor_units(), 12550);
        assert_eq!(m.transmission_time().unwrap().second, 1);
        assert_eq!(m.stan().unwrap().value(), 123);
        assert_eq!(
            m.expiry().unwrap(),
            Expiry {
                year: 28,
                month: 12
            }
        );
        assert_eq!(m.merchant_type().unwrap(), 5411);
        let t2 = m.track2().unwrap();
        assert_eq!(
            t2.expiry,
            Some(Expiry {
                year: 28,
                month: 12
            })
        );
        assert_eq!(t2.service_code.as_deref(), Some("101"));
        assert_eq!(m.currency().unwrap(), 978);
        let amounts = m.additional_amounts().unwrap();
        assert_eq!(amounts.len(), 2);
        assert_eq!(amounts[0].sign, Sign::Credit);
        assert_eq!(amounts[0].amount.minor_units(), 50000);
        assert_eq!(amounts[1].amount_type, "01");
        assert_eq!(m.network_management_code().unwrap(), 301);
    }

    #[test]
    fn expiry_is_yymm() {
        let e = Expiry::parse("2812").unwrap();
        assert_eq!((e.year, e.month), (28, 12));
        assert_eq!(e.to_string(), "2812");
        assert_eq!(Expiry::parse("3001").unwrap().to_string(), "3001");
        for bad in ["", "281", "28123", "2813", "2800", "28-1", "２８１２"] {
            assert!(Expiry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base24_header() {
        let h = Base24Header::parse(b"ISO026000070").unwrap();
        assert_eq!(h.product, Base24Product::Pos);
        assert_eq!(h.release, "60");
        assert_eq!(h.status, "000");
        assert_eq!((h.originator, h.responder), ('7', '0'));
        assert_eq!(
            Base24Header::parse(b"ISO016000070").unwrap().product,
            Base24Product::Atm
        );
        assert!(Base24Header::parse(b"XSO026000070").is_err());
        assert!(Base24Header::parse(b"ISO02600007").is_err());
    }

    #[test]
    fn additional_amounts_round_trip() {
        let mut m = msg(&[]);
        let entries = vec![AdditionalAmount {
            account_type: "00".into(),
            amount_type: "02".into(),
            currency: 752,
            sign: Sign::Debit,
            amount: Amount::new(42).unwrap(),
        }];
        m.set_additional_amounts(&entries);
        assert_eq!(m.additional_amounts().unwrap(), entries);
    }

    #[test]
    fn original_data_and_replacement_amounts() {
        let m = msg(&[
            (90, "010000012311220302010000000123400000000000"),
            (95, "000000005000000000005000C00000000C00000000"),
        ]);
        let o = m.original_data().unwrap();
        assert_eq!(o.mti.as_str(), "0100");
        assert_eq!(o.stan.value(), 123);
        assert_eq!(o.transmission_time, "1122030201");
        assert_eq!(o.acquirer, "00000001234");
        let r = m.replacement_amounts().unwrap();
        assert_eq!(r.transaction.minor_units(), 5000);
        assert_eq!(r.transaction_fee, "C00000000");
    }

    #[test]
    fn errors_name_the_field() {
        let m = msg(&[(4, "00000001x550"), (14, "2813"), (3, "12")]);
        assert_eq!(m.pan(), Err(FieldError::Missing { field: 2 }));
        assert!(matches!(
            m.amount(),
            Err(FieldError::Invalid { field: 4, .. })
        ));
        assert!(matches!(
            m.expiry(),
            Err(FieldError::Invalid { field: 14, .. })
        ));
        assert!(matches!(
            m.processing_code(),
            Err(FieldError::Invalid { field: 3, .. })
        ));
        assert!(Pan::new("1234").is_err());
        assert_eq!(
            format!("{:?}", Pan::new("4761739001010010").unwrap()),
            "Pan(476173******0010)"
        );
    }
}
