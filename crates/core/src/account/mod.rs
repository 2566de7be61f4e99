//! The boundary to an institution's account system. The hub calls it; the
//! adapter engine implements it for real vendors. Every call carries the
//! request's deadline; the implementation must not run past it.

use crate::store::sql;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::time::Instant;

use crate::iso8583::fields::{Pan, ResponseCode};
use crate::money::Money;

/// What cardhub asks of an account system (the canonical WSDL's request).
#[derive(Debug, Clone)]
pub struct AccountRequest {
    /// cardhub's transaction id: the account system treats a repeat as the same request.
    pub transaction_id: String,
    pub institution: String,
    pub account: String,
    /// Masked PAN (first 6 + last 4); the clear PAN is never sent unless an adapter asks.
    pub card: String,
    pub kind: Kind,
    /// The switch's request is a financial request (0200): approved, it is
    /// posted; no completion follows. `false` for authorizations (0100),
    /// advices, reversals and cardhub's own calls.
    pub financial: bool,
    pub channel: Channel,
    pub amount: Money,
    pub terminal: String,
    /// DE 42, the card acceptor id.
    pub merchant: Option<String>,
    /// DE 43, the card acceptor name and location (trimmed).
    pub merchant_name: Option<String>,
    /// DE 7 and DE 37 of the switch.
    pub transmission_time: String,
    pub rrn: String,
    /// For reverse and advice: the transaction it refers to.
    pub original_transaction_id: Option<String>,
    /// For advice: the decision made without the account system.
    pub decision: Option<AdviceDecision>,
    /// The clear PAN, only for adapters whose file sets `send_clear_pan`
    /// (kept in memory for the call; `Pan` masks itself in logs).
    pub clear_pan: Option<Pan>,
    /// When cardhub needs the answer (what the request tells the account system).
    pub deadline: Instant,
    /// How long the transport may still wait for an answer past `deadline`
    /// (cardhub has answered the switch by then, but a late answer is still
    /// reconciled); `None`: not past the deadline.
    pub listen_until: Option<Instant>,
    /// For a system that books in the hub's own store
    /// ([`AccountSystem::books_in_hub_store`]): the hub's journal row of the
    /// decision its answer makes, written in the transaction of the
    /// booking. `None` for every other call.
    pub decision_row: Option<DecisionRow>,
}

/// The hub's journal row of the decision an account system's answer makes,
/// for a system that books in the hub's own store: written in the
/// transaction of the booking (or of the refusal), so the booking and the
/// decision the switch gets are durable together, in one commit — the
/// booking never exists without its decision, and the hub needs no call
/// intent and no store job of its own for the request.
#[derive(Clone)]
pub struct DecisionRow(Arc<RowWrite>);

/// What writes a [`DecisionRow`] on the store's write connection.
type RowWrite = dyn Fn(&sql::Connection, &AccountAnswer) -> sql::Result<()> + Send + Sync;

impl DecisionRow {
    /// The row `write` records, given the answer, on the store's write connection.
    pub fn new(
        write: impl Fn(&sql::Connection, &AccountAnswer) -> sql::Result<()> + Send + Sync + 'static,
    ) -> DecisionRow {
        DecisionRow(Arc::new(write))
    }

    /// Writes the row of `answer` inside the booking's store job.
    ///
    /// # Errors
    /// SQLite's: the job must fail with it (nothing may be booked without
    /// its decision).
    pub fn write(&self, conn: &sql::Connection, answer: &AccountAnswer) -> sql::Result<()> {
        (self.0)(conn, answer)
    }
}

impl fmt::Debug for DecisionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecisionRow")
    }
}

impl AccountRequest {
    /// When the transport stops waiting for the answer.
    pub fn transport_deadline(&self) -> Instant {
        self.listen_until
            .map_or(self.deadline, |l| l.max(self.deadline))
    }
}

/// Who made a decision an advice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// cardhub stood in for the account system.
    StandIn,
    /// The card switch stood in (0120 / 0220 advices).
    Switch,
    /// A hub rule (e.g. a late answer reconciled).
    Hub,
}

impl Decider {
    /// The name in the canonical WSDL.
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::StandIn => "STAND_IN",
            Decider::Switch => "SWITCH",
            Decider::Hub => "HUB",
        }
    }
}

/// The decision an advice reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdviceDecision {
    /// DE 39 of the decision.
    pub code: ResponseCode,
    pub decided_by: Decider,
    /// Why, in words.
    pub reason: String,
}

/// The account system's answer, mapped to ISO 8583 terms by the adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAnswer {
    /// DE 39 the vendor's result code maps to.
    pub code: ResponseCode,
    /// The vendor's own result code.
    pub raw_code: String,
    pub auth_id: Option<String>,
    pub balances: Option<Balances>,
    /// The vendor's message, for the journal.
    pub message: Option<String>,
}

/// Why an account system gave no usable answer. The stand-in layer decides
/// from these; none of them is the cardholder's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// No answer before the deadline (retrying within this request cannot help).
    #[error("no answer before the deadline")]
    Timeout,
    /// The connection was refused or broke (the system may be down).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A SOAP fault or equivalent error answer.
    #[error("fault {code}: {message}")]
    Fault { code: String, message: String },
    /// An HTTP error status.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// An answer that could not be read.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The request cannot be written in the vendor's format (e.g. a value
    /// longer than its fixed-width column); nothing was sent.
    #[error("request not sendable: {0}")]
    Unsendable(String),
    /// The adapter does not offer this operation (a configuration gap).
    #[error("the adapter has no {0} operation")]
    Unsupported(&'static str),
    /// cardhub itself failed while calling (its call task panicked): the
    /// hub's fault, not the account system's; whether the request reached
    /// the account system is unknown.
    #[error("cardhub failed during the call: {0}")]
    Internal(String),
    /// The account system could not book now: its write conflicted with
    /// another (several hub instances on one card, or a retransmission's
    /// row at another instance), and nothing was booked. It is up; the
    /// breaker does not count it.
    #[error("booking conflicted with concurrent ones: {0}")]
    Conflict(String),
}

impl AccountError {
    /// A short name of the outcome, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountError::Timeout => "timeout",
            AccountError::Unreachable(_) => "unreachable",
            AccountError::Fault { .. } => "fault",
            AccountError::HttpStatus(_) => "http_status",
            AccountError::Malformed(_) => "malformed",
            AccountError::Unsendable(_) => "unsendable",
            AccountError::Unsupported(_) => "unsupported",
            AccountError::Internal(_) => "internal",
            AccountError::Conflict(_) => "conflict",
        }
    }

    /// Whether it says the account system is unavailable (what the circuit
    /// breaker counts), rather than a request cardhub cannot send.
    pub fn is_unavailability(&self) -> bool {
        !matches!(
            self,
            AccountError::Unsendable(_)
                | AccountError::Unsupported(_)
                | AccountError::Internal(_)
                | AccountError::Conflict(_)
        )
    }
}

/// The operations cardhub calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Authorize,
    Load,
    Reverse,
    Advice,
    BalanceInquiry,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Authorize,
        Operation::Load,
        Operation::Reverse,
        Operation::Advice,
        Operation::BalanceInquiry,
    ];

    /// Its place in [`Operation::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::Load => "load",
            Operation::Reverse => "reverse",
            Operation::Advice => "advice",
            Operation::BalanceInquiry => "balance_inquiry",
        }
    }
}

/// An institution's account system. Implementors answer [`call`]; the
/// five operations are its named forms.
///
/// [`call`]: AccountSystem::call
pub trait AccountSystem: Send + Sync + 'static {
    /// Name for logs and the journal (the adapter's name).
    fn name(&self) -> &str;

    /// Whether the system books in the hub's own store and writes a
    /// request's [`AccountRequest::intent`] in the transaction of the
    /// booking (the prepaid ledger). The hub then writes no call intent of
    /// its own first. Systems behind a transport: `false`.
    fn books_in_hub_store(&self) -> bool {
        false
    }

    /// Performs one operation for a request, by its deadline.
    fn call<'a>(
        &'a self,
        operation: Operation,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>>;

    /// Hold or debit `amount` now if the balance allows.
    fn authorize<'a>(
        &'a self,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        self.call(Operation::Authorize, request)
    }

    /// Credit `amount` (deposit, prepaid load, refund).
    fn load<'a>(
        &'a self,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        self.call(Operation::Load, request)
    }

    /// Undo all or `amount` of `original_transaction_id`.
    fn reverse<'a>(
        &'a self,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        self.call(Operation::Reverse, request)
    }

    /// "This is what happened without you": idempotent by transaction id.
    fn advice<'a>(
        &'a self,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        self.call(Operation::Advice, request)
    }

    /// Current available and ledger balance.
    fn balance_inquiry<'a>(
        &'a self,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        self.call(Operation::BalanceInquiry, request)
    }
}

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

/// Balances after a decision, in minor units of the account's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub available: i64,
    pub ledger: i64,
}

#[cfg(test)]
mod tests {
    use super::AccountError;

    /// The breaker counts what says the system is down, not a booking that
    /// conflicted with concurrent ones nor a request cardhub cannot send.
    #[test]
    fn a_conflict_is_not_an_unavailability() {
        assert!(!AccountError::Conflict("serialization failure".into()).is_unavailability());
        assert!(!AccountError::Unsendable("too long".into()).is_unavailability());
        assert!(AccountError::Unreachable("refused".into()).is_unavailability());
        assert!(AccountError::Timeout.is_unavailability());
    }
}
