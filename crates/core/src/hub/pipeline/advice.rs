//! The advice step (0120 / 0220): the switch decided — its own stand-in,
//! or the completion of an earlier authorization. Recorded, counted when
//! approved, passed on to the account system (or queued for it),
//! acknowledged with 00.

use super::map::{Txn, account_request};
use super::{Hub, Outcome, stand_in};
use crate::account::{AccountRequest, AdviceDecision, Decider, Operation};
use crate::hub::limits::LimitChannel;
use crate::iso8583::codes;

impl Hub {
    /// 0120 / 0220: the switch decided (its own stand-in, or a completion
    /// of an earlier authorization). Recorded, counted when approved, passed
    /// on to the account system (or queued for it), acknowledged.
    pub(super) async fn advice(&self, t: &Txn<'_>) -> Outcome {
        let (c, txn_id) = (t.c, t.id);
        let Some(card) = self.cards.lookup(&c.pan) else {
            return Outcome::rule(codes::APPROVED, "advice for an unknown card recorded");
        };
        let day = self.day.today();
        let switch_approved = c.advice_code.is_none_or(|code| code.is_approval());
        let mut outcome = Outcome {
            card: Some(card.clone()),
            business_day: Some(day.to_string()),
            ..Outcome::rule(codes::APPROVED, "")
        };
        let completes = match (&c.original, switch_approved && c.kind.is_debit()) {
            (Some(_), true) => match self.find_original(c) {
                Ok(original) => original.filter(|o| o.approved),
                Err(e) => return self.unreadable(&e),
            },
            _ => None,
        };
        if let Some(original) = &completes {
            // A completion: the hold becomes a debit of the final amount;
            // the daily counters already hold the authorization.
            outcome.original_txn_id = Some(original.txn_id);
            let amount = c.amount.minor as i64;
            if let Ok(Some(update)) =
                self.book
                    .complete(&card.institution, &card.account, original.txn_id, amount)
            {
                outcome.effects.movement_update = Some(update);
            }
        } else if switch_approved && c.kind.is_debit() {
            let channel = LimitChannel::of(c.channel);
            self.counters
                .apply(&card.pan_hash.0, channel, day, c.amount.minor as i64, 1);
            outcome.counted = (c.amount.minor as i64, 1);
            let movement = self.movement(c, &card, txn_id, stand_in::SWITCH);
            if self.book.record(movement.clone()).is_ok() {
                outcome.effects.movement = Some(movement);
            }
        }
        let code = c.advice_code.unwrap_or(codes::APPROVED);
        let decision = AdviceDecision {
            code,
            decided_by: Decider::Switch,
            reason: "advice from the switch".into(),
        };
        let request = AccountRequest {
            decision: Some(decision),
            // A completion names its authorization (a prepaid hold's reference).
            original_transaction_id: completes.as_ref().map(|o| o.txn_id.to_string()),
            ..account_request(c, &card, txn_id)
        };
        let (reason, saf) = self
            .deliver_or_queue(Operation::Advice, &card, request, txn_id)
            .await;
        outcome.decision.reason = format!("advice recorded; {reason}");
        // The switch's own decision, for the journal and for a queued advice.
        outcome.decision.raw_code = Some(code.as_str().to_string());
        outcome.effects.saf = saf;
        outcome
    }
}
