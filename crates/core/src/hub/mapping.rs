//! ISO 8583 ⇄ canonical, in one place: a decoded message becomes a
//! [`CanonicalRequest`]; a [`Decision`] becomes the answer message.

use tokio::time::Instant;

use crate::account::{Balances, Channel, Kind};
use crate::hub::model::{CanonicalRequest, MessageRole};
use crate::iso8583::codes;
use crate::iso8583::fields::{
    AdditionalAmount, Amount, Base24Header, Base24Product, ResponseCode, Sign, de,
};
use crate::iso8583::{FieldError, Message};
use crate::journal::decision::Decision;
use crate::journal::keys::SwitchKeys;
use crate::link::handler::answer;
use crate::money::{Currency, Money};

/// Merchant category of ATM cash.
const MCC_ATM: u16 = 6011;

/// Why a message cannot be a canonical request; each maps to a DE 39.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A required field is missing or malformed (DE 39 = 30).
    #[error("format: {0}")]
    Format(String),
    /// A message type or processing code the hub does not handle (12).
    #[error("invalid transaction: {0}")]
    InvalidTransaction(String),
    /// An amount that cannot be used (13).
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
}

impl MappingError {
    /// The response code this error is answered with.
    pub fn code(&self) -> ResponseCode {
        match self {
            MappingError::Format(_) => codes::FORMAT_ERROR,
            MappingError::InvalidTransaction(_) => codes::INVALID_TRANSACTION,
            MappingError::InvalidAmount(_) => codes::INVALID_AMOUNT,
        }
    }
}

impl From<FieldError> for MappingError {
    fn from(e: FieldError) -> Self {
        MappingError::Format(e.to_string())
    }
}

/// The switch keys of any message (empty strings for missing fields).
pub fn switch_keys(msg: &Message) -> SwitchKeys {
    let text = |n: u16| msg.text(n).unwrap_or_default();
    SwitchKeys {
        mti: msg.mti().without_repeat(),
        transmission_time: text(de::TRANSMISSION_TIME),
        stan: text(de::STAN),
        acquirer: text(de::ACQUIRER),
        terminal: text(de::TERMINAL).trim_end().to_string(),
        rrn: text(de::RRN),
    }
}

/// The role a message type plays.
///
/// # Errors
/// [`MappingError::InvalidTransaction`] for types the hub does not handle.
pub fn role(msg: &Message) -> Result<MessageRole, MappingError> {
    let mti = msg.mti();
    match (mti.class(), mti.function()) {
        (1 | 2, 0) => Ok(MessageRole::Request),
        (1 | 2, 2) => Ok(MessageRole::Advice),
        (4, 0) => Ok(MessageRole::Reversal { advice: false }),
        (4, 2) => Ok(MessageRole::Reversal { advice: true }),
        _ => Err(MappingError::InvalidTransaction(format!(
            "message type {mti}"
        ))),
    }
}

/// Builds the canonical request of a financial message.
///
/// # Errors
/// A [`MappingError`] naming the field and why.
pub fn to_canonical(
    msg: &Message,
    received: Instant,
    deadline: Instant,
) -> Result<CanonicalRequest, MappingError> {
    let role = role(msg)?;
    let code = msg.processing_code()?;
    let kind = match code.transaction_type {
        0 | 9 => Kind::Purchase,
        1 => Kind::Cash,
        20 => Kind::Refund,
        21 => Kind::Load,
        30 | 31 => Kind::BalanceInquiry,
        other => {
            return Err(MappingError::InvalidTransaction(format!(
                "processing code {other:02}"
            )));
        }
    };
    let track = msg.track2().ok();
    let pan = match (msg.pan(), &track) {
        (Ok(pan), _) => pan,
        (Err(FieldError::Missing { .. }), Some(t)) => t.pan.clone(),
        (Err(e), _) => return Err(e.into()),
    };
    let expiry = match msg.expiry() {
        Ok(e) => Some(e),
        Err(FieldError::Missing { .. }) => track.as_ref().and_then(|t| t.expiry),
        Err(e) => return Err(e.into()),
    };
    let amount = amount(msg, kind)?;
    let mcc = optional(msg.merchant_type())?;
    Ok(CanonicalRequest {
        role,
        repeat: msg.mti().is_repeat(),
        kind,
        channel: channel(msg, kind, mcc),
        amount,
        pan,
        expiry,
        merchant: optional(msg.merchant_id())?.map(|m| m.trim_end().to_string()),
        merchant_name: optional(msg.card_acceptor_name())?
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
        mcc,
        keys: switch_keys(msg),
        original: optional(msg.original_data())?,
        replacement: optional(msg.replacement_amounts())?.map(|r| r.transaction.minor_units()),
        advice_code: match role {
            MessageRole::Advice => optional(msg.response_code())?,
            _ => None,
        },
        received,
        deadline,
    })
}

/// `Ok(None)` for a missing field, the error for a malformed one.
fn optional<T>(r: Result<T, FieldError>) -> Result<Option<T>, MappingError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(FieldError::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn amount(msg: &Message, kind: Kind) -> Result<Money, MappingError> {
    let minor = match msg.amount() {
        Ok(a) => a.minor_units(),
        Err(FieldError::Missing { .. }) if kind == Kind::BalanceInquiry => 0,
        Err(FieldError::Missing { field }) => {
            return Err(MappingError::Format(format!("field {field}: missing")));
        }
        Err(e) => return Err(MappingError::InvalidAmount(e.to_string())),
    };
    if minor == 0 && kind != Kind::BalanceInquiry {
        return Err(MappingError::InvalidAmount("zero amount".into()));
    }
    let numeric = msg.currency()?;
    let currency = Currency::from_numeric(numeric)
        .map_err(|e| MappingError::Format(format!("field 49: {e}")))?;
    Ok(Money::new(minor, currency))
}

/// ATM or POS: the BASE24 product indicator first, then the MCC, then the kind.
fn channel(msg: &Message, kind: Kind, mcc: Option<u16>) -> Channel {
    if let Some(h) = msg.header().and_then(|h| Base24Header::parse(h).ok()) {
        match h.product {
            Base24Product::Atm => return Channel::Atm,
            Base24Product::Pos => return Channel::Pos,
            _ => {}
        }
    }
    match mcc {
        Some(MCC_ATM) => Channel::Atm,
        Some(_) => Channel::Pos,
        None if kind == Kind::Cash => Channel::Atm,
        None => Channel::Other,
    }
}

/// The answer to a request message for a decision: response MTI, echoed
/// keys, DE 39, DE 38 on approval, DE 54 balances when known.
pub fn to_answer(request: &Message, decision: &Decision, currency: Option<Currency>) -> Message {
    let mut reply = answer(request, decision.code);
    if let (true, Some(id)) = (decision.approved(), &decision.auth_id) {
        reply.set(de::AUTH_ID, id);
    }
    if let (Some(b), Some(c)) = (decision.balances, currency) {
        reply.set_additional_amounts(&balance_entries(request, b, c));
    }
    reply
}

fn balance_entries(request: &Message, b: Balances, currency: Currency) -> Vec<AdditionalAmount> {
    let account_type = request
        .processing_code()
        .map(|p| format!("{:02}", p.from_account))
        .unwrap_or_else(|_| "00".into());
    [("01", b.ledger), ("02", b.available)]
        .into_iter()
        .filter_map(|(amount_type, value)| {
            Some(AdditionalAmount {
                account_type: account_type.clone(),
                amount_type: amount_type.into(),
                currency: currency.numeric,
                sign: if value < 0 { Sign::Debit } else { Sign::Credit },
                amount: Amount::new(value.unsigned_abs()).ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(mti: &str) -> Message {
        let mut m = Message::new(mti.parse().unwrap());
        m.set_header(Some(b"ISO016000070".to_vec()));
        m.set(2, "4761739001010010");
        m.set(3, "013000");
        m.set(4, "000000002000");
        m.set(7, "1122030201");
        m.set(11, "000077");
        m.set(32, "4761739");
        m.set(41, "ATM00001        ");
        m.set(49, "978");
        m
    }

    fn canonical(m: &Message) -> Result<CanonicalRequest, MappingError> {
        let now = Instant::now();
        to_canonical(m, now, now)
    }

    #[test]
    fn atm_cash_withdrawal() {
        let c = canonical(&base("0200")).unwrap();
        assert_eq!(
            (c.kind, c.channel, c.role),
            (Kind::Cash, Channel::Atm, MessageRole::Request)
        );
        assert_eq!(c.amount.minor, 2000);
        assert_eq!(c.amount.currency.code, "EUR");
        assert_eq!(c.keys.terminal, "ATM00001");
        assert_eq!(c.keys.mti.as_str(), "0200");
    }

    #[test]
    fn the_card_acceptor_name_is_trimmed_and_a_blank_one_is_none() {
        assert_eq!(canonical(&base("0200")).unwrap().merchant_name, None);
        let mut m = base("0200");
        // Name 25, city 13, country 2; leading and trailing blanks go.
        m.set(
            43,
            format!("{:<25}{:<13}{:<2}", " CORNER SHOP", "AMSTERDAM", ""),
        );
        assert_eq!(
            canonical(&m).unwrap().merchant_name,
            Some(format!("CORNER SHOP{}AMSTERDAM", " ".repeat(13)))
        );
        m.set(43, " ".repeat(40));
        assert_eq!(canonical(&m).unwrap().merchant_name, None);
    }

    #[test]
    fn roles_channels_and_repeats() {
        let mut m = base("0101");
        m.set_header(None);
        m.set(3, "000000");
        m.set(18, "5411");
        let c = canonical(&m).unwrap();
        assert_eq!(
            (c.kind, c.channel, c.repeat),
            (Kind::Purchase, Channel::Pos, true)
        );
        assert_eq!(c.keys.mti.as_str(), "0100");
        assert_eq!(
            role(&base("0420")).unwrap(),
            MessageRole::Reversal { advice: true }
        );
        assert_eq!(role(&base("0120")).unwrap(), MessageRole::Advice);
        assert!(role(&base("0300")).is_err());
    }

    #[test]
    fn errors_map_to_response_codes() {
        let mut m = base("0100");
        m.set(3, "990000");
        assert_eq!(
            canonical(&m).unwrap_err().code(),
            codes::INVALID_TRANSACTION
        );
        let mut m = base("0100");
        m.set(4, "000000000000");
        assert_eq!(canonical(&m).unwrap_err().code(), codes::INVALID_AMOUNT);
        let mut m = base("0100");
        m.remove(2);
        assert_eq!(canonical(&m).unwrap_err().code(), codes::FORMAT_ERROR);
        let mut m = base("0100");
        m.set(49, "999");
        assert_eq!(canonical(&m).unwrap_err().code(), codes::FORMAT_ERROR);
    }

    #[test]
    fn pan_and_expiry_from_track_2() {
        let mut m = base("0100");
        m.remove(2);
        m.set(35, "4761739001010010=28121011234567");
        let c = canonical(&m).unwrap();
        assert_eq!(c.pan.last4(), "0010");
        assert_eq!(c.expiry.unwrap().year, 28);
    }

    #[test]
    fn answer_carries_auth_id_and_balances() {
        let req = base("0200");
        let mut d = Decision::rule(codes::APPROVED, "test");
        d.auth_id = Some("A1B2C3".into());
        d.balances = Some(Balances {
            available: -150,
            ledger: 10_000,
        });
        let reply = to_answer(&req, &d, Currency::from_numeric(978).ok());
        assert_eq!(reply.mti().as_str(), "0210");
        assert_eq!(reply.auth_id().unwrap(), "A1B2C3");
        let amounts = reply.additional_amounts().unwrap();
        assert_eq!(amounts.len(), 2);
        assert_eq!(amounts[0].account_type, "30");
        assert_eq!(amounts[1].sign, Sign::Debit);
        assert_eq!(amounts[1].amount.minor_units(), 150);
    }
}
