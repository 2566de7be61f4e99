//! The prepaid ledger: cardhub as the account system of prepaid cards.
//!
//! Orderers (the tenants that own the money: a municipal office, a school)
//! run programmes (`social-client`, `small-purchase`); each prepaid card has
//! one card account in a programme. Money moves only as double-entry
//! postings in the store (migration `0008_prepaid.sql`): every operation —
//! load, refund, hold, capture, reversal, move, replacement — is one store
//! job, so one durable transaction that either books all its postings or
//! nothing. Purchase and cash authorizations are holds (money set aside,
//! with an expiry), posted when captured.
//!
//! [`PrepaidLedger`] puts the ledger behind the [`AccountSystem`] boundary
//! so the hub pipeline, journal, limits and back office treat it like any
//! bank's system. This module knows nothing of the hub: it depends on the
//! account boundary, the store and money only.
//!
//! Card orders, their production and PIN mailer files are in [`orders`];
//! load files ([`load_file`]: many loads, all or nothing), the daily
//! accounting export per orderer ([`export`]) and the attestation of
//! small-purchase purchases ([`attestation`]) each in a separate
//! `impl Ledger` block of its module. The JSON API and the CLI call this
//! service layer.
//!
//! [`AccountSystem`]: crate::account::AccountSystem

pub mod attestation;
pub mod config;
mod db;
pub mod export;
mod holds;
pub mod limits;
pub mod load_file;
pub mod orders;
mod postings;
mod repeats;
mod replace;
mod report;
mod scope;
mod system;
mod teller;

pub use holds::Merchant;
pub use limits::DailyLimits;
pub use replace::Replacement;
pub use report::{CardAccount, Orderer, Programme, period};
pub use system::PrepaidLedger;
pub use teller::{LostCard, Teller};

use crate::store::sql;
use std::collections::HashSet;
use std::sync::Arc;

use crate::account::Balances;
use crate::cards::card::Card;
use crate::cards::{CardError, CardRegistry};
use crate::money::{Currency, Money};
use crate::store::{Store, StoreError};

use config::PrepaidConfig;
use db::Op;

/// What a prepaid programme is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgrammeKind {
    /// Cards for people without a bank account.
    SocialClient,
    /// Cards for caretakers, schools, institutions.
    SmallPurchase,
}

impl ProgrammeKind {
    /// The name in the store and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgrammeKind::SocialClient => "social-client",
            ProgrammeKind::SmallPurchase => "small-purchase",
        }
    }

    /// The kind named `name` (as [`ProgrammeKind::as_str`] spells it).
    ///
    /// # Errors
    /// [`PrepaidError::InvalidText`] for field `kind`.
    pub fn parse(name: &str) -> Result<ProgrammeKind, PrepaidError> {
        [ProgrammeKind::SocialClient, ProgrammeKind::SmallPurchase]
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| PrepaidError::InvalidText {
                field: "kind",
                reason: "is neither social-client nor small-purchase".into(),
            })
    }
}

/// How a programme's PINs reach the cardholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinDelivery {
    /// In the card's letter.
    WithCard,
    /// In a PIN mailer of its own.
    Separately,
}

impl PinDelivery {
    /// The name in the store and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            PinDelivery::WithCard => "with-card",
            PinDelivery::Separately => "separately",
        }
    }

    /// The delivery named `name` (as [`PinDelivery::as_str`] spells it).
    ///
    /// # Errors
    /// [`PrepaidError::InvalidText`] for field `pin_delivery`.
    pub fn parse(name: &str) -> Result<PinDelivery, PrepaidError> {
        [PinDelivery::WithCard, PinDelivery::Separately]
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| PrepaidError::InvalidText {
                field: "pin_delivery",
                reason: "is neither with-card nor separately".into(),
            })
    }
}

/// A new orderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderer {
    pub id: String,
    /// Printed on every card of the orderer.
    pub name: String,
    /// The bank account the orderer funds its cards from.
    pub funding_account: String,
}

/// A new programme of an orderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProgramme {
    pub id: String,
    pub orderer: String,
    pub kind: ProgrammeKind,
    pub currency: Currency,
    /// Maximum balance per card in minor units; `None`:
    /// `[prepaid] default_max_balance`.
    pub max_balance: Option<u64>,
    pub pin_delivery: PinDelivery,
    /// Optional per-card daily limits on purchases and cash.
    pub daily: DailyLimits,
}

/// The kinds of ledger accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountKind {
    /// One per card: what its holder may spend.
    Card,
    /// One per orderer: its pooled funding liability (credit-normal).
    Pooled,
    /// One per currency: the clearing side of loads and purchases.
    Settlement,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            AccountKind::Card => "card",
            AccountKind::Pooled => "pooled",
            AccountKind::Settlement => "settlement",
        }
    }
}

/// A booked operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booked {
    /// The entry's id (the hold's, for a hold).
    pub id: i64,
    /// The card's balances after it.
    pub balances: Balances,
    /// The reference was booked before: nothing was booked again.
    pub repeat: bool,
}

/// A balance move booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// The paying card's balances now.
    pub from: Balances,
    /// The receiving card's balances now.
    pub to: Balances,
    /// The reference was booked before: nothing was booked again.
    pub repeat: bool,
}

/// Whose postings a statement lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One card account.
    Card(String),
    /// Every card account of an orderer and its pooled account.
    Orderer(String),
}

/// One posting of a statement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StatementLine {
    pub entry: i64,
    /// `load`, `refund`, `capture`, `reversal`, `move`, `replace`.
    pub kind: String,
    /// The operation's reference (cardhub's transaction id for ISO 8583).
    pub reference: String,
    pub booked_at_us: i64,
    /// `card` or `pooled`.
    pub account_kind: String,
    pub account: String,
    /// Signed minor units.
    pub amount: i64,
}

/// Why a ledger operation was refused or failed. All but
/// [`PrepaidError::Store`] are refusals: nothing was booked.
#[derive(Debug, thiserror::Error)]
pub enum PrepaidError {
    /// No card account with this name (the request's or the caller's fault).
    #[error("no prepaid card account {account:?}")]
    UnknownCard { account: String },
    #[error("no orderer {orderer:?}")]
    UnknownOrderer { orderer: String },
    #[error("no programme {programme:?}")]
    UnknownProgramme { programme: String },
    /// The id is taken.
    #[error("{what} {id:?} exists already")]
    Exists { what: &'static str, id: String },
    /// The card was replaced: its money and holds are on its replacement.
    #[error("card account {account:?} was replaced")]
    CardReplaced { account: String },
    /// The amount is not in the card's currency.
    #[error("card account {account:?} keeps currency {account_currency}, not {amount_currency}")]
    CurrencyMismatch {
        account: String,
        account_currency: u16,
        amount_currency: u16,
    },
    /// Zero, or too large for the ledger.
    #[error("invalid amount {minor}")]
    InvalidAmount { minor: u64 },
    /// The credit would take the balance past the programme's maximum.
    #[error("card account {account:?}: balance {balance} + {amount} exceeds the maximum {max}")]
    OverMax {
        account: String,
        balance: i64,
        amount: i64,
        max: i64,
    },
    /// Not enough available (balance less open holds).
    #[error("card account {account:?}: available {available} is less than {amount}")]
    InsufficientFunds {
        account: String,
        available: i64,
        amount: i64,
    },
    /// No hold, load or refund with this reference.
    #[error("no hold, load or refund with reference {reference:?}")]
    UnknownOriginal { reference: String },
    /// The original has been undone (or captured) in full already.
    #[error("nothing left to reverse of {reference:?}")]
    NothingToReverse { reference: String },
    /// The hold was captured, released or reversed.
    #[error("hold {reference:?} is {state}, not open")]
    HoldNotOpen { reference: String, state: String },
    /// A completion for more than its authorization held.
    #[error("capture of {amount} exceeds hold {reference:?} of {held}")]
    CaptureExceedsHold {
        reference: String,
        held: i64,
        amount: i64,
    },
    /// The reference was booked before for another operation, or for this
    /// one with other details: a load of another card account, amount or
    /// currency; a move between other cards or of another amount or
    /// currency; a replacement of another lost card, new card or card
    /// account. Nothing was booked.
    #[error("reference {reference:?} was booked for another operation or with other details")]
    ReferenceConflict { reference: String },
    /// A move between cards of different orderers, or to the same card.
    #[error("cannot move balance from {from:?} to {to:?}: not two cards of one orderer")]
    NotMovable { from: String, to: String },
    /// A statement's period bound is malformed.
    #[error("{field}: {reason}")]
    BadPeriod { field: &'static str, reason: String },
    /// A hold would pass the programme's daily `what` (`amount` or
    /// `count`) limit of the card.
    #[error("card account {account:?}: daily {what} limit {limit} reached ({used} used)")]
    DailyLimit {
        account: String,
        what: &'static str,
        limit: i64,
        used: i64,
    },
    /// The card registry refused or failed (a replacement); nothing was
    /// changed.
    #[error("cards: {0}")]
    Cards(#[from] CardError),
    /// No capture with this reference on the orderer's cards.
    #[error("orderer {orderer:?} has no purchase {reference:?}")]
    UnknownPurchase { orderer: String, reference: String },
    /// Only purchases (captures) on small-purchase cards are attested.
    #[error("{reference:?} is not a purchase on a small-purchase card")]
    NotAttestable { reference: String },
    /// An id, name, reference, user, purpose or reason that cannot be
    /// recorded.
    #[error("{field} {reason}")]
    InvalidText { field: &'static str, reason: String },
    /// A day whose end is past the calendar's.
    #[error("cannot export day {day}")]
    InvalidDay { day: String },
    /// The CSV writer failed (writing to memory: not expected).
    #[error("accounting export: {0}")]
    Export(#[source] csv::Error),
    /// The store failed: the operation's outcome is as the store error
    /// says (usually not booked; after a commit I/O error unknown, and a
    /// repeat with the same reference is safe).
    #[error("prepaid ledger store: {0}")]
    Store(#[from] StoreError),
}

/// The ledger's service layer: every operation one durable store job.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
    default_max_balance: u64,
    /// Written in the store job of each booking or refusal, with its
    /// outcome: the hub's decision row ([`PrepaidLedger`] sets it per call).
    recorder: Option<Recorder>,
}

/// What a booking's store job also writes, given its outcome.
pub(crate) type Recorder =
    Arc<dyn Fn(&sql::Connection, Result<&Booked, &PrepaidError>) -> sql::Result<()> + Send + Sync>;

impl Ledger {
    /// The ledger kept in `store`.
    pub fn new(store: Store, config: &PrepaidConfig) -> Ledger {
        Ledger {
            store,
            default_max_balance: config.default_max_balance,
            recorder: None,
        }
    }

    /// This ledger writing `recorder`'s row in the store job of each
    /// booking, with the booking or the refusal.
    fn recording(&self, recorder: Option<Recorder>) -> Ledger {
        Ledger {
            recorder,
            ..self.clone()
        }
    }

    async fn run<T, F>(&self, mut f: F) -> Result<T, PrepaidError>
    where
        F: FnMut(&sql::Connection, i64) -> Op<T> + Send + 'static,
        T: Send + 'static,
    {
        let now = now_us();
        self.store.write(move |conn| f(conn, now)).await?
    }

    /// [`Ledger::run`] for an operation that books money, with the
    /// recorder's row of its outcome in the same job.
    async fn book<F>(&self, mut f: F) -> Result<Booked, PrepaidError>
    where
        F: FnMut(&sql::Connection, i64) -> Op<Booked> + Send + 'static,
    {
        let recorder = self.recorder.clone();
        self.run(move |conn, now| {
            let done = f(conn, now)?;
            if let Some(record) = &recorder {
                record(conn, done.as_ref())?;
            }
            Ok(done)
        })
        .await
    }

    /// Registers an orderer and its pooled funding account.
    ///
    /// # Errors
    /// [`PrepaidError::InvalidText`] (id, name, funding account),
    /// [`PrepaidError::Exists`], [`PrepaidError::Store`].
    pub async fn create_orderer(&self, orderer: NewOrderer) -> Result<(), PrepaidError> {
        checked_id("id", &orderer.id)?;
        checked_text("name", &orderer.name, MAX_TEXT_LEN)?;
        checked_text("funding_account", &orderer.funding_account, MAX_TEXT_LEN)?;
        self.run(move |c, now| db::create_orderer(c, &orderer, now))
            .await
    }

    /// Registers a programme of an existing orderer.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`], [`PrepaidError::Exists`],
    /// [`PrepaidError::InvalidAmount`] for a maximum or daily amount of 0
    /// or past `i64` (or a daily count of 0), [`PrepaidError::InvalidText`]
    /// (id), [`PrepaidError::Store`].
    pub async fn create_programme(&self, programme: NewProgramme) -> Result<(), PrepaidError> {
        checked_id("id", &programme.id)?;
        let positive = |minor: u64| {
            i64::try_from(minor)
                .ok()
                .filter(|m| *m > 0)
                .ok_or(PrepaidError::InvalidAmount { minor })
        };
        let max = positive(programme.max_balance.unwrap_or(self.default_max_balance))?;
        programme.daily.amount.map(positive).transpose()?;
        if programme.daily.count == Some(0) {
            return Err(PrepaidError::InvalidAmount { minor: 0 });
        }
        self.run(move |c, now| db::create_programme(c, &programme, max, now))
            .await
    }

    /// Opens the (empty) card account `account` — the card registry's
    /// `account` of the card — in `programme`.
    ///
    /// # Errors
    /// [`PrepaidError::InvalidText`] (account),
    /// [`PrepaidError::UnknownProgramme`], [`PrepaidError::Exists`],
    /// [`PrepaidError::Store`].
    pub async fn open_card(&self, account: &str, programme: &str) -> Result<(), PrepaidError> {
        checked_text("account", account, MAX_TEXT_LEN)?;
        let (account, programme) = (account.to_string(), programme.to_string());
        self.run(move |c, now| db::open_card_account(c, &account, &programme, now))
            .await
    }

    /// Loads `amount` onto a card; refused past the programme's maximum.
    /// `reference` is the idempotency key: sent again with the same card
    /// account and amount (its currency too), the load is a repeat
    /// (`repeat: true`, the card's balances now, nothing booked again).
    ///
    /// # Errors
    /// [`PrepaidError::OverMax`], [`PrepaidError::UnknownCard`],
    /// [`PrepaidError::CardReplaced`], [`PrepaidError::CurrencyMismatch`],
    /// [`PrepaidError::InvalidAmount`], [`PrepaidError::ReferenceConflict`]
    /// (the reference booked with another card account, amount or
    /// currency, or by another operation), [`PrepaidError::Store`].
    pub async fn load(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
    ) -> Result<Booked, PrepaidError> {
        self.credit("load", reference, account, amount).await
    }

    /// Loads `amount` onto a card as [`Ledger::load`] does and, in the same
    /// store transaction, activates the card registry's `inactive` prepaid
    /// cards of the account: the first load activates a card, through the
    /// API and load files as through the switch. Returns the booking and
    /// the cards activated (none on a repeat or a later load).
    ///
    /// # Errors
    /// As [`Ledger::load`]; [`PrepaidError::InvalidText`] (reference);
    /// [`PrepaidError::Cards`] when the store failed
    /// (nothing booked).
    pub async fn load_activating(
        &self,
        cards: &CardRegistry,
        reference: &str,
        account: &str,
        amount: Money,
    ) -> Result<(Booked, Vec<Card>), PrepaidError> {
        checked_text("reference", reference, MAX_TEXT_LEN)?;
        let (reference, name) = (reference.to_string(), account.to_string());
        let now = now_us();
        cards
            .activate_loaded(move |c| {
                let booked = db::credit(c, "load", &reference, &name, &amount, now)?;
                Ok(booked.map(|b| (b, HashSet::from([name.clone()]))))
            })
            .await?
    }

    /// Credits a merchant's refund to a card; refused past the maximum.
    ///
    /// # Errors
    /// As [`Ledger::load`].
    pub async fn refund(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
    ) -> Result<Booked, PrepaidError> {
        self.credit("refund", reference, account, amount).await
    }

    async fn credit(
        &self,
        kind: &'static str,
        reference: &str,
        account: &str,
        amount: Money,
    ) -> Result<Booked, PrepaidError> {
        let (reference, account) = (reference.to_string(), account.to_string());
        self.book(move |c, now| db::credit(c, kind, &reference, &account, &amount, now))
            .await
    }

    /// Authorizes a purchase or cash withdrawal: sets `amount` aside until
    /// `expires_at_us` (Unix microseconds). `merchant` is the card acceptor
    /// (DE 42 and DE 43), kept for the accounting export.
    ///
    /// # Errors
    /// [`PrepaidError::InsufficientFunds`], [`PrepaidError::DailyLimit`],
    /// [`PrepaidError::UnknownCard`], [`PrepaidError::CardReplaced`],
    /// [`PrepaidError::CurrencyMismatch`], [`PrepaidError::InvalidAmount`],
    /// [`PrepaidError::Store`].
    pub async fn hold(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
        expires_at_us: i64,
        merchant: &Merchant,
    ) -> Result<Booked, PrepaidError> {
        self.debit(reference, account, amount, expires_at_us, merchant, false)
            .await
    }

    /// Posts a financial purchase or cash withdrawal (0200: approved means
    /// final, no completion follows): a hold as [`Ledger::hold`] sets aside
    /// — the same refusals and daily limits — captured in full in the same
    /// transaction (the capture's reference is `<reference>-posted`). A
    /// reversal of `reference` credits it back.
    ///
    /// # Errors
    /// As [`Ledger::hold`].
    pub async fn purchase(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
        merchant: &Merchant,
    ) -> Result<Booked, PrepaidError> {
        let now = now_us();
        self.debit(reference, account, amount, now, merchant, true)
            .await
    }

    async fn debit(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
        expires_at_us: i64,
        merchant: &Merchant,
        post: bool,
    ) -> Result<Booked, PrepaidError> {
        let (reference, account) = (reference.to_string(), account.to_string());
        let merchant = merchant.clone();
        self.book(move |c, now| {
            let merchant = &merchant;
            let held = db::hold(
                c,
                &reference,
                &account,
                &amount,
                expires_at_us,
                merchant,
                now,
            )?;
            match held {
                Ok(booked) if post && !booked.repeat => {
                    let posted = format!("{reference}-posted");
                    db::capture(
                        c,
                        &posted,
                        Some(&reference),
                        &account,
                        &amount,
                        merchant,
                        now,
                    )
                }
                held => Ok(held),
            }
        })
        .await
    }

    /// Posts a purchase: the completion of hold `hold_reference` (for at
    /// most what it holds; the rest is released) or, with `None`, a debit
    /// of `account` the switch decided alone. `merchant` (DE 42, DE 43) is
    /// kept on the entry; each part it lacks, the hold's.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOriginal`], [`PrepaidError::HoldNotOpen`],
    /// [`PrepaidError::CaptureExceedsHold`],
    /// [`PrepaidError::InsufficientFunds`], the card errors of
    /// [`Ledger::hold`], [`PrepaidError::Store`].
    pub async fn capture(
        &self,
        reference: &str,
        hold_reference: Option<&str>,
        account: &str,
        amount: Money,
        merchant: &Merchant,
    ) -> Result<Booked, PrepaidError> {
        let (reference, account) = (reference.to_string(), account.to_string());
        let hold = hold_reference.map(str::to_string);
        let merchant = merchant.clone();
        self.book(move |c, now| {
            db::capture(
                c,
                &reference,
                hold.as_deref(),
                &account,
                &amount,
                &merchant,
                now,
            )
        })
        .await
    }

    /// Undoes all (`None`) or `amount` minor units of the hold, purchase,
    /// load or refund booked as `original`.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOriginal`], [`PrepaidError::NothingToReverse`],
    /// [`PrepaidError::InsufficientFunds`] (a load already spent),
    /// [`PrepaidError::OverMax`] (a purchase credited back past the
    /// maximum), [`PrepaidError::Store`].
    pub async fn reverse(
        &self,
        reference: &str,
        original: &str,
        amount: Option<i64>,
    ) -> Result<Booked, PrepaidError> {
        let (reference, original) = (reference.to_string(), original.to_string());
        self.book(move |c, now| db::reverse(c, &reference, &original, amount, now))
            .await
    }

    /// Moves `amount` from card `from` to card `to` of the same orderer;
    /// returns both cards' balances (and, for the same move booked before
    /// under `reference`, `repeat`: nothing booked again).
    ///
    /// # Errors
    /// [`PrepaidError::NotMovable`], [`PrepaidError::InsufficientFunds`],
    /// [`PrepaidError::OverMax`], the card errors of [`Ledger::hold`],
    /// [`PrepaidError::InvalidText`] (reference),
    /// [`PrepaidError::ReferenceConflict`] (the reference booked with other
    /// cards, amount or currency, or by another operation),
    /// [`PrepaidError::Store`].
    pub async fn move_balance(
        &self,
        reference: &str,
        from: &str,
        to: &str,
        amount: Money,
    ) -> Result<Moved, PrepaidError> {
        checked_text("reference", reference, MAX_TEXT_LEN)?;
        let (reference, from, to) = (reference.to_string(), from.to_string(), to.to_string());
        self.run(move |c, now| db::move_balance(c, &reference, &from, &to, &amount, now))
            .await
    }

    /// Marks holds past their expiry as expired (they stopped counting
    /// against the available balance at their expiry already); returns how
    /// many.
    ///
    /// # Errors
    /// [`PrepaidError::Store`].
    pub async fn expire_holds(&self, now_us: i64) -> Result<usize, PrepaidError> {
        Ok(self.store.write(move |c| holds::expire(c, now_us)).await?)
    }

    /// A card's balances now (its replacement's, once replaced).
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`], [`PrepaidError::Store`].
    pub fn balance(&self, account: &str) -> Result<Balances, PrepaidError> {
        let now = now_us();
        self.store.read(|c| db::balance(c, account, now))?
    }

    /// The postings of a card or orderer booked in `[from_us, to_us)`.
    ///
    /// # Errors
    /// [`PrepaidError::Store`].
    pub fn statement(
        &self,
        subject: &Subject,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<StatementLine>, PrepaidError> {
        Ok(self
            .store
            .read(|c| report::statement(c, subject, from_us, to_us))?)
    }

    /// Checks every invariant of the ledger against the postings and holds:
    /// entries balance, balance columns equal the sums of postings, each
    /// orderer's card balances equal its pooled liability, no card is
    /// negative, over its maximum or has holds past its balance, and each
    /// card's hold totals equal the sums of its holds. Returns each breach in
    /// words (empty: the ledger is sound).
    ///
    /// # Errors
    /// [`PrepaidError::Store`].
    pub fn audit(&self) -> Result<Vec<String>, PrepaidError> {
        let now = now_us();
        Ok(self.store.read(|c| report::audit(c, now))?)
    }
}

/// The longest id, name, account or reference the ledger records.
const MAX_TEXT_LEN: usize = 64;

/// A text the ledger records as given: not empty, at most `max`
/// characters, no control characters.
fn checked_text(field: &'static str, value: &str, max: usize) -> Result<(), PrepaidError> {
    let reason = if value.is_empty() {
        "is empty".to_string()
    } else if value.chars().count() > max {
        format!("is longer than {max} characters")
    } else if value.chars().any(char::is_control) {
        "contains control characters".to_string()
    } else {
        return Ok(());
    };
    Err(PrepaidError::InvalidText { field, reason })
}

/// An orderer's or programme's id: 1 to 64 letters, digits, `-` or `_`.
fn checked_id(field: &'static str, id: &str) -> Result<(), PrepaidError> {
    let ok = (1..=MAX_TEXT_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(PrepaidError::InvalidText {
        field,
        reason: format!("must be 1 to {MAX_TEXT_LEN} letters, digits, - or _"),
    })
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
