//! The canonical request and decision: what the hub decides on, independent
//! of ISO 8583 and of any vendor. `mapping` builds these from messages.

use std::fmt;

use tokio::time::Instant;

use crate::iso8583::Mti;
use crate::iso8583::fields::{Expiry, OriginalData, Pan, ResponseCode};
use crate::money::Money;

/// What the cardholder is doing (from DE 3's transaction type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 00, 09 (with cash back): goods and services.
    Purchase,
    /// 01: cash withdrawal.
    Cash,
    /// 30, 31: balance inquiry.
    BalanceInquiry,
    /// 21: deposit / prepaid load (a credit).
    Load,
    /// 20: refund / return (a credit).
    Refund,
}

impl Kind {
    /// The name in the journal and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Cash => "cash",
            Kind::BalanceInquiry => "balance_inquiry",
            Kind::Load => "load",
            Kind::Refund => "refund",
        }
    }

    /// The kind with this journal name.
    pub fn parse(name: &str) -> Option<Kind> {
        [
            Kind::Purchase,
            Kind::Cash,
            Kind::BalanceInquiry,
            Kind::Load,
            Kind::Refund,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// Whether it takes money from the account (and counts against limits).
    pub fn is_debit(self) -> bool {
        matches!(self, Kind::Purchase | Kind::Cash)
    }
}

/// Where the card is used: ATM and POS have separate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Atm,
    Pos,
    Other,
}

impl Channel {
    /// The channel with this journal name.
    pub fn parse(name: &str) -> Option<Channel> {
        [Channel::Atm, Channel::Pos, Channel::Other]
            .into_iter()
            .find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Atm => "atm",
            Channel::Pos => "pos",
            Channel::Other => "other",
        }
    }
}

/// The message's role (from the MTI class and function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRole {
    /// 0100 / 0200: decide now.
    Request,
    /// 0120 / 0220: the switch stood in, or a completion — record and pass on.
    Advice,
    /// 0400 / 0420: undo an earlier transaction (0420 is the advice form).
    Reversal { advice: bool },
}

/// The switch's keys of a message: DE 7, 11, 32, 41 (and 37).
///
/// Equality and hashing are the **duplicate key**: the MTI without its
/// repeat digit, DE 7, DE 11, DE 32 and DE 41 (not DE 37). It is the same
/// everywhere a repeat is recognised: the map of requests in flight, the
/// seen-keys filter (its fingerprint is this hash), the journal lookup and
/// the journal's unique index (`journal_duplicate_key`).
#[derive(Debug, Clone)]
pub struct SwitchKeys {
    /// The MTI without the repeat digit (0101 → 0100).
    pub mti: Mti,
    pub transmission_time: String,
    pub stan: String,
    pub acquirer: String,
    /// DE 41 without trailing pad.
    pub terminal: String,
    pub rrn: String,
}

impl SwitchKeys {
    /// The duplicate key's fields, in the journal index's column order.
    fn duplicate_key(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.transmission_time,
            &self.stan,
            &self.acquirer,
            &self.terminal,
            self.mti.as_str(),
        )
    }
}

impl PartialEq for SwitchKeys {
    fn eq(&self, other: &Self) -> bool {
        self.duplicate_key() == other.duplicate_key()
    }
}

impl Eq for SwitchKeys {}

impl std::hash::Hash for SwitchKeys {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.duplicate_key().hash(state);
    }
}

/// One financial request from the switch, in the hub's terms.
#[derive(Debug, Clone)]
pub struct CanonicalRequest {
    pub role: MessageRole,
    pub repeat: bool,
    pub kind: Kind,
    pub channel: Channel,
    /// DE 4 in DE 49's currency.
    pub amount: Money,
    pub pan: Pan,
    pub expiry: Option<Expiry>,
    pub merchant: Option<String>,
    pub mcc: Option<u16>,
    pub keys: SwitchKeys,
    /// DE 90 of reversals and advices.
    pub original: Option<OriginalData>,
    /// DE 95's actual amount: what remains after a partial reversal.
    pub replacement: Option<u64>,
    /// DE 39 of an advice: the decision the switch made.
    pub advice_code: Option<ResponseCode>,
    pub received: Instant,
    pub deadline: Instant,
}

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// The institution's account system answered.
    AccountSystem,
    /// cardhub decided in the account system's place.
    StandIn,
    /// A hub rule decided (card checks, limits, format, availability).
    HubRule,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::AccountSystem => "account_system",
            DecidedBy::StandIn => "stand_in",
            DecidedBy::HubRule => "hub_rule",
        }
    }
}

/// Balances after a decision, in minor units of the account's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub available: i64,
    pub ledger: i64,
}

/// The hub's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub code: ResponseCode,
    /// DE 38 on approvals.
    pub auth_id: Option<String>,
    pub balances: Option<Balances>,
    pub decided_by: DecidedBy,
    /// Why, in words, for the journal and operators.
    pub reason: String,
    /// Adapter that answered, and its own result code.
    pub adapter: Option<String>,
    pub raw_code: Option<String>,
}

impl Decision {
    /// A decision by a hub rule.
    pub fn rule(code: ResponseCode, reason: impl Into<String>) -> Decision {
        Decision {
            code,
            auth_id: None,
            balances: None,
            decided_by: DecidedBy::HubRule,
            reason: reason.into(),
            adapter: None,
            raw_code: None,
        }
    }

    pub fn approved(&self) -> bool {
        self.code.is_approval()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} ({})",
            self.code,
            self.decided_by.as_str(),
            self.reason
        )
    }
}

/// Response codes the hub itself gives (ISO 8583:1987 usage).
pub mod codes {
    use crate::iso8583::fields::ResponseCode;

    /// Builds a constant code; only valid two-character literals are used.
    const fn code(c: &[u8; 2]) -> ResponseCode {
        ResponseCode::from_bytes(*c)
    }

    pub const APPROVED: ResponseCode = ResponseCode::APPROVED;
    pub const DO_NOT_HONOR: ResponseCode = code(b"05");
    pub const INVALID_TRANSACTION: ResponseCode = ResponseCode::INVALID_TRANSACTION;
    pub const INVALID_AMOUNT: ResponseCode = code(b"13");
    pub const INVALID_CARD: ResponseCode = code(b"14");
    pub const ORIGINAL_NOT_FOUND: ResponseCode = code(b"25");
    pub const FORMAT_ERROR: ResponseCode = ResponseCode::FORMAT_ERROR;
    pub const LOST: ResponseCode = code(b"41");
    pub const STOLEN: ResponseCode = code(b"43");
    pub const INSUFFICIENT_FUNDS: ResponseCode = code(b"51");
    pub const EXPIRED: ResponseCode = code(b"54");
    pub const NOT_PERMITTED: ResponseCode = code(b"57");
    pub const EXCEEDS_AMOUNT_LIMIT: ResponseCode = code(b"61");
    pub const RESTRICTED: ResponseCode = code(b"62");
    pub const EXCEEDS_COUNT_LIMIT: ResponseCode = code(b"65");
    pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode::ISSUER_UNAVAILABLE;
    pub const DUPLICATE: ResponseCode = code(b"94");
    pub const SYSTEM_ERROR: ResponseCode = ResponseCode::SYSTEM_ERROR;
}
