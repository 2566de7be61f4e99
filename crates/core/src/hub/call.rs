//! Calling an institution's account system for a request: the call bounded
//! by the request's deadline, a late answer recorded in the journal when it comes,
//! and the decision an answer or failure leads to.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::account::Kind;
use crate::account::{AccountAnswer, AccountError, AccountRequest, AccountSystem, Operation};
use crate::iso8583::codes;
use crate::journal::decision::{DecidedBy, Decision};
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::{TxnId, TxnIds};
use crate::journal::{self, Entry, JournalEntry};
use crate::mask::redact_pans;
use crate::standin::saf::{self, NewItem};
use crate::standin::state::Institution;
use crate::store::Store;

/// The operation that asks the account system to decide a request of `kind`.
pub(super) fn operation_of(kind: Kind) -> Operation {
    match kind {
        Kind::Purchase | Kind::Cash => Operation::Authorize,
        Kind::Load | Kind::Refund => Operation::Load,
        Kind::BalanceInquiry => Operation::BalanceInquiry,
    }
}

/// Runs an account-system call until the deadline.
pub(super) async fn call_until<F>(deadline: Instant, call: F) -> Result<AccountAnswer, AccountError>
where
    F: std::future::Future<Output = Result<AccountAnswer, AccountError>>,
{
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or(Err(AccountError::Timeout))
}

/// Where an account system's late answer is recorded: the journal, under a
/// new id that refers to the original transaction.
pub(super) struct LateRecorder {
    pub(super) store: Store,
    pub(super) ids: Arc<TxnIds>,
    pub(super) original: TxnId,
    /// The decision cardhub answered the switch with, once made.
    pub(super) decided: watch::Receiver<Option<Decision>>,
    /// Told when a reconciling reversal is queued.
    pub(super) wake: Arc<Institution>,
    /// Where the task waiting for the late answer runs (drained at shutdown).
    pub(super) tasks: TaskTracker,
}

/// How long a late answer waits for cardhub's own decision to reconcile with.
const FINAL_DECISION_WAIT: Duration = Duration::from_secs(30);

/// Calls the account system for a request; an answer after the deadline is
/// not waited for but recorded in the journal when it comes.
pub(super) async fn call_with_deadline(
    system: Arc<dyn AccountSystem>,
    request: AccountRequest,
    kind: Kind,
    late: LateRecorder,
) -> Result<AccountAnswer, AccountError> {
    let deadline = request.deadline;
    let mut call = tokio::spawn(async move {
        let answer = system.call(operation_of(kind), &request).await;
        (answer, system.name().to_string(), request)
    });
    match tokio::time::timeout_at(deadline, &mut call).await {
        Ok(Ok((answer, _, _))) => answer,
        Ok(Err(e)) => {
            error!(error = %e, "account-system call task failed");
            Err(AccountError::Internal(e.to_string()))
        }
        Err(_) => {
            // Tracked: shutdown waits for late answers to be recorded.
            let tasks = late.tasks.clone();
            tasks.spawn(async move {
                if let Ok((answer, adapter, request)) = call.await {
                    late.record(answer, adapter, &request).await;
                }
            });
            Err(AccountError::Timeout)
        }
    }
}

impl LateRecorder {
    /// Journals an account system's answer that came after the deadline and
    /// reconciles it with what cardhub decided: an approval cardhub did not
    /// honour is reversed at the account system (queued for replay, behind
    /// the advice of cardhub's own decision).
    async fn record(
        mut self,
        answer: Result<AccountAnswer, AccountError>,
        adapter: String,
        request: &AccountRequest,
    ) {
        // Sent but never answered: the account system may have approved.
        let unanswered = matches!(answer, Err(AccountError::Timeout));
        let mut decision = decision_from(answer, &adapter);
        let final_decision =
            tokio::time::timeout(FINAL_DECISION_WAIT, self.decided.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|r| r.ok().and_then(|d| d.clone()));
        let txn_id = self.ids.next();
        let reverse = match &final_decision {
            Some(f) if (decision.approved() || unanswered) && !f.approved() => {
                let mut reversal = request.clone();
                reversal.transaction_id = txn_id.to_string();
                reversal.original_transaction_id = Some(self.original.to_string());
                reversal.decision = None;
                Some(NewItem::new(Operation::Reverse, txn_id, &reversal))
            }
            _ => None,
        };
        decision.reason = match (&final_decision, &reverse) {
            (_, Some(_)) => format!(
                "late answer after the deadline: {}; cardhub declined, reversal queued for anything it approved",
                decision.reason
            ),
            (Some(f), None) => format!(
                "late answer after the deadline: {}; cardhub answered {}",
                decision.reason, f.code
            ),
            (None, None) => format!("late answer after the deadline: {}", decision.reason),
        };
        let entry = JournalEntry {
            txn_id,
            entry: Entry::LateResult,
            received_at_us: Timestamp::now().as_microsecond(),
            business_day: String::new(),
            switch: String::new(),
            mti: String::new(),
            is_repeat: false,
            kind: request.kind.as_str(),
            channel: request.channel.as_str(),
            pan_hash: None,
            pan_masked: Some(request.card.clone()),
            account: Some(request.account.clone()),
            institution: Some(request.institution.clone()),
            amount_minor: request.amount.minor as i64,
            currency: request.amount.currency.numeric,
            keys: SwitchKeys {
                mti: crate::iso8583::Mti::NETWORK_REQUEST,
                transmission_time: request.transmission_time.clone(),
                stan: String::new(),
                acquirer: String::new(),
                terminal: request.terminal.clone(),
                rrn: request.rrn.clone(),
            },
            merchant: request.merchant.clone(),
            merchant_name: request.merchant_name.clone(),
            mcc: None,
            decision,
            counted_minor: 0,
            counted_count: 0,
            original_txn_id: Some(self.original),
            latency_us: 0,
        };
        let original = self.original;
        let written = self
            .store
            .write(move |c| {
                journal::insert(c, &entry)?;
                // The call has ended: the advice of cardhub's decision may go.
                saf::release(c, original)?;
                reverse
                    .as_ref()
                    .map_or(Ok(()), |item| saf::enqueue(c, item))
            })
            .await;
        match written {
            Ok(()) => self.wake.saf_wake.notify_one(),
            Err(e) => {
                error!(error = %e, txn_id = %self.original, "late account-system answer not journaled")
            }
        }
    }
}

/// The decision an account system's answer (or failure) leads to.
pub(super) fn decision_from(
    answer: Result<AccountAnswer, AccountError>,
    adapter: &str,
) -> Decision {
    match answer {
        Ok(a) => Decision {
            auth_id: a.auth_id.or_else(|| a.code.is_approval().then(auth_id)),
            code: a.code,
            balances: a.balances,
            decided_by: DecidedBy::AccountSystem,
            // Vendor text: a card number in it must not reach the journal.
            reason: match a.message {
                Some(m) => format!("account system answered: {}", redact_pans(&m)),
                None => "account system answered".into(),
            },
            adapter: Some(adapter.to_string()),
            raw_code: Some(a.raw_code),
        },
        Err(e) => Decision {
            adapter: Some(adapter.to_string()),
            ..Decision::rule(
                codes::ISSUER_UNAVAILABLE,
                format!("account system: {}", redact_pans(&e.to_string())),
            )
        },
    }
}

/// A six-digit authorization id for approvals the account system gave none for.
pub(super) fn auth_id() -> String {
    format!("{:06}", rand::random::<u32>() % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso8583::fields::ResponseCode;

    #[test]
    fn vendor_text_with_a_card_number_is_masked_in_the_reason() {
        let answer = AccountAnswer {
            code: ResponseCode::new("14").unwrap(),
            raw_code: "UNKNOWN_CARD".into(),
            auth_id: None,
            balances: None,
            message: Some("card 4761739001010010 is not ours".into()),
        };
        let d = decision_from(Ok(answer), "vendor");
        assert!(!d.reason.contains("4761739001010010"), "{}", d.reason);
        assert!(d.reason.contains("476173******0010"), "{}", d.reason);

        let fault = AccountError::Fault {
            code: "E1".into(),
            message: "no account for 4761739001010010".into(),
        };
        let d = decision_from(Err(fault), "vendor");
        assert!(!d.reason.contains("4761739001010010"), "{}", d.reason);
        assert_eq!(d.code, codes::ISSUER_UNAVAILABLE);
    }
}
