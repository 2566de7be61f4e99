//! The reversal step (0400 / 0420): the original found by DE 90 (or the
//! reversal's own keys), what it approved undone — wholly, or with DE 95
//! partly, never twice —, its limit counters and shadow balance given back,
//! the account system told (or the reverse queued for it).

use super::map::{Txn, account_request};
use super::{CardKey, Hub, Outcome};
use crate::account::{AccountRequest, Operation};
use crate::hub::limits::LimitChannel;
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;
use crate::journal::decision::DecidedBy;
use crate::journal::{self, Entry};

impl Hub {
    /// 0400 / 0420: undo an earlier transaction, fully or (DE 95) partly.
    pub(super) async fn reverse(&self, t: &Txn<'_>, advice: bool) -> Outcome {
        let (c, txn_id) = (t.c, t.id);
        let card = self.cards.lookup(&c.pan);
        let original = match self.find_original(c) {
            Ok(original) => original,
            Err(e) => return self.unreadable(&e),
        };
        let Some(original) = original else {
            return match advice {
                false => Outcome::rule(codes::ORIGINAL_NOT_FOUND, "original not found"),
                true => Outcome {
                    entry: Entry::OrphanReversal,
                    card,
                    ..Outcome::rule(codes::APPROVED, "original not found; recorded as orphan")
                },
            };
        };
        let mut outcome = Outcome {
            card: card.clone(),
            business_day: Some(original.business_day.clone()),
            original_txn_id: Some(original.txn_id),
            ..Outcome::rule(
                codes::APPROVED,
                "reversal of a declined original: nothing to undo",
            )
        };
        if !original.approved {
            return outcome;
        }
        let done = match journal::reversed_so_far(&self.store, original.txn_id) {
            Ok(done) => done,
            Err(e) => return self.unreadable(&e),
        };
        let remaining = (original.amount_minor - done).max(0);
        let wanted = match c.replacement {
            Some(actual) => original.amount_minor - actual as i64,
            None => original.amount_minor,
        };
        let undo = wanted.min(remaining).max(0);
        if undo == 0 {
            outcome.decision.reason = "already reversed".into();
            return outcome;
        }
        let fully = done + undo >= original.amount_minor;
        let count = if fully { -original.counted_count } else { 0 };
        if let (Some(hash), Ok(day)) = (
            original
                .pan_hash
                .as_deref()
                .and_then(|h| CardKey::try_from(h).ok()),
            original.business_day.parse(),
        ) && original.kind != "load"
            && original.kind != "refund"
        {
            let channel = LimitChannel::of_journal(&original.channel);
            self.counters.apply(&hash, channel, day, -undo, count);
            if original.decided_by == DecidedBy::StandIn.as_str() {
                self.offline.apply(&hash, channel, day, -undo, count);
            }
            outcome.counted = (-undo, count);
        }
        if let (Some(institution), Some(account)) = (&original.institution, &original.account)
            && let Ok(Some(update)) = self
                .book
                .reverse(institution, account, original.txn_id, undo)
        {
            outcome.effects.movement_update = Some(update);
        }
        outcome.decision.reason = match &card {
            Some(card) => {
                let mut request = AccountRequest {
                    original_transaction_id: Some(original.txn_id.to_string()),
                    ..account_request(c, card, txn_id)
                };
                request.amount.minor = undo as u64;
                let (told, saf) = self
                    .deliver_or_queue(Operation::Reverse, card, request, txn_id)
                    .await;
                outcome.effects.saf = saf;
                format!("reversed {undo}; {told}")
            }
            None => format!("reversed {undo}; card no longer known, account system not told"),
        };
        // A reversal row's amount is what it undid.
        outcome.reversal = Some(undo);
        outcome
    }

    /// The journaled original a reversal or completion refers to.
    pub(super) fn find_original(
        &self,
        c: &CanonicalRequest,
    ) -> Result<Option<journal::Original>, crate::store::StoreError> {
        if let Some(o) = &c.original {
            return journal::original(
                &self.store,
                o.mti.without_repeat().as_str(),
                &o.transmission_time,
                &o.stan.to_string(),
                &o.acquirer,
            );
        }
        // Without DE 90 the reversal carries the original's own keys.
        for mti in ["0100", "0200"] {
            let found = journal::original(
                &self.store,
                mti,
                &c.keys.transmission_time,
                &c.keys.stan,
                &c.keys.acquirer,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}
