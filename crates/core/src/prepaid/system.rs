//! The ledger behind the account-system boundary: what the hub's
//! operations mean for prepaid cards, and the ISO 8583 code of each
//! refusal.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Booked, Ledger, Merchant, PrepaidError, Recorder};
use crate::account::{
    AccountAnswer, AccountError, AccountRequest, AccountSystem, Channel, Kind, Operation,
};
use crate::iso8583::codes;
use crate::iso8583::fields::ResponseCode;
use crate::standin::config::HoldsConfig;

/// The prepaid ledger as an institution's account system.
#[derive(Clone)]
pub struct PrepaidLedger {
    ledger: Ledger,
    /// How long a purchase hold lives, by channel.
    holds: HoldsConfig,
}

impl PrepaidLedger {
    /// The account system over `ledger`; holds expire after the `[holds]`
    /// hours of their channel.
    pub fn new(ledger: Ledger, holds: HoldsConfig) -> PrepaidLedger {
        PrepaidLedger { ledger, holds }
    }

    /// The ledger's service layer.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    async fn answer(
        &self,
        operation: Operation,
        r: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let (id, account, amount) = (r.transaction_id.as_str(), r.account.as_str(), r.amount);
        // The hub's decision row goes into the booking's own transaction.
        let recorder = r.decision_row.clone().map(|row| -> Recorder {
            Arc::new(move |conn, done| row.write(conn, &answer_of(done)))
        });
        let ledger = &self.ledger.recording(recorder);
        let merchant = Merchant {
            id: r.merchant.clone(),
            name: r.merchant_name.clone(),
        };
        let booked = match (operation, r.kind) {
            (Operation::BalanceInquiry, _) | (Operation::Authorize, Kind::BalanceInquiry) => {
                ledger.balance(account).map(|balances| Booked {
                    id: 0,
                    balances,
                    repeat: false,
                })
            }
            (Operation::Load | Operation::Authorize, Kind::Load) => {
                ledger.load(id, account, amount).await
            }
            (Operation::Load | Operation::Authorize, Kind::Refund) => {
                ledger.refund(id, account, amount).await
            }
            (Operation::Load, _) => {
                return Err(AccountError::Unsupported("load of a debit kind"));
            }
            (Operation::Authorize, Kind::Purchase | Kind::Cash) if r.financial => {
                ledger.purchase(id, account, amount, &merchant).await
            }
            (Operation::Authorize, Kind::Purchase | Kind::Cash) => {
                let hours = self.holds.hours(r.channel == Channel::Atm, None);
                let expires =
                    jiff::Timestamp::now().as_microsecond() + i64::from(hours) * 3_600 * 1_000_000;
                ledger.hold(id, account, amount, expires, &merchant).await
            }
            (Operation::Reverse, _) => match &r.original_transaction_id {
                Some(original) => {
                    let undo = i64::try_from(amount.minor).ok().filter(|m| *m > 0);
                    ledger.reverse(id, original, undo).await
                }
                None => {
                    return Ok(refused(
                        codes::ORIGINAL_NOT_FOUND,
                        "NO_ORIGINAL",
                        "reversal without its original",
                    ));
                }
            },
            (Operation::Advice, kind) => {
                let approved = r.decision.as_ref().is_none_or(|d| d.code.is_approval());
                if !approved {
                    return Ok(refused(
                        codes::APPROVED,
                        "NOT_BOOKED",
                        "declined by the switch: nothing booked",
                    ));
                }
                match kind {
                    Kind::Load => ledger.load(id, account, amount).await,
                    Kind::Refund => ledger.refund(id, account, amount).await,
                    Kind::BalanceInquiry => ledger.balance(account).map(|balances| Booked {
                        id: 0,
                        balances,
                        repeat: false,
                    }),
                    Kind::Purchase | Kind::Cash => {
                        let hold = r.original_transaction_id.as_deref();
                        ledger.capture(id, hold, account, amount, &merchant).await
                    }
                }
            }
        };
        match booked {
            Err(PrepaidError::Store(e)) if e.is_conflict() => {
                Err(AccountError::Conflict(format!("prepaid ledger store: {e}")))
            }
            Err(PrepaidError::Store(e)) => Err(AccountError::Unreachable(format!(
                "prepaid ledger store: {e}"
            ))),
            done => Ok(answer_of(done.as_ref())),
        }
    }
}

/// The answer to a booking, or to the ledger's refusal.
fn answer_of(done: Result<&Booked, &PrepaidError>) -> AccountAnswer {
    match done {
        Ok(b) => AccountAnswer {
            code: codes::APPROVED,
            raw_code: if b.repeat { "REPEAT" } else { "BOOKED" }.into(),
            auth_id: None,
            balances: Some(b.balances),
            message: None,
        },
        Err(e) => {
            let (code, raw) = code_of(e);
            refused(code, raw, &e.to_string())
        }
    }
}

fn refused(code: ResponseCode, raw: &str, message: &str) -> AccountAnswer {
    AccountAnswer {
        code,
        raw_code: raw.into(),
        auth_id: None,
        balances: None,
        message: Some(message.into()),
    }
}

/// The ISO 8583 answer to a refusal, and the ledger's own name for it.
fn code_of(e: &PrepaidError) -> (ResponseCode, &'static str) {
    match e {
        PrepaidError::OverMax { .. } => (codes::EXCEEDS_AMOUNT_LIMIT, "OVER_MAX"),
        PrepaidError::DailyLimit { what: "count", .. } => {
            (codes::EXCEEDS_COUNT_LIMIT, "DAILY_COUNT")
        }
        PrepaidError::DailyLimit { .. } => (codes::EXCEEDS_AMOUNT_LIMIT, "DAILY_AMOUNT"),
        PrepaidError::InsufficientFunds { .. } => (codes::INSUFFICIENT_FUNDS, "INSUFFICIENT"),
        PrepaidError::UnknownCard { .. } => (codes::INVALID_CARD, "UNKNOWN_CARD"),
        PrepaidError::CardReplaced { .. } => (codes::RESTRICTED, "REPLACED"),
        PrepaidError::CurrencyMismatch { .. } => (codes::NOT_PERMITTED, "CURRENCY"),
        PrepaidError::InvalidAmount { .. } | PrepaidError::CaptureExceedsHold { .. } => {
            (codes::INVALID_AMOUNT, "AMOUNT")
        }
        PrepaidError::UnknownOriginal { .. }
        | PrepaidError::NothingToReverse { .. }
        | PrepaidError::HoldNotOpen { .. } => (codes::ORIGINAL_NOT_FOUND, "NO_ORIGINAL"),
        PrepaidError::UnknownOrderer { .. }
        | PrepaidError::UnknownProgramme { .. }
        | PrepaidError::Exists { .. }
        | PrepaidError::ReferenceConflict { .. }
        | PrepaidError::NotMovable { .. }
        | PrepaidError::BadPeriod { .. }
        | PrepaidError::UnknownPurchase { .. }
        | PrepaidError::NotAttestable { .. }
        | PrepaidError::InvalidText { .. }
        | PrepaidError::InvalidDay { .. }
        | PrepaidError::Export(_)
        | PrepaidError::Cards(_)
        | PrepaidError::Store(_) => (codes::SYSTEM_ERROR, "NOT_AN_AUTHORIZATION"),
    }
}

impl AccountSystem for PrepaidLedger {
    fn name(&self) -> &str {
        "prepaid-ledger"
    }

    fn books_in_hub_store(&self) -> bool {
        true
    }

    fn call<'a>(
        &'a self,
        operation: Operation,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.answer(operation, request))
    }
}
