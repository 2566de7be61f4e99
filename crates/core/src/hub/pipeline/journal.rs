//! The journal step: the request's journal row, written durably (with its
//! shadow-balance and SAF effects, the call intent cleared, and a stand-in
//! approval checked again against every instance's writes) before the
//! answer leaves — unless the prepaid ledger wrote it with its booking; a
//! journal read that fails while deciding; what the hub counts for
//! `/metrics`.

use jiff::Timestamp;
use tracing::{error, warn};

use super::limits::{DailyCheck, counted_of};
use super::map::Mapped;
use super::start::queue_reversals;
use super::{Hub, Journaling, Outcome, recheck};
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;
use crate::journal::decision::Decision;
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::TxnId;
use crate::journal::{self, JournalEntry};
use crate::standin::Effects;
use crate::store::StoreError;

/// What the journal step made of a decided request.
pub(super) enum Journaled {
    /// The decision to answer, and whether its row is durable.
    Answer(Decision, bool),
    /// Another request holds the switch keys: nothing of this one's
    /// decision is kept, it is answered as that request's repeat.
    KeyHeld,
}

/// What the journal step writes besides the row.
struct Written {
    decision: Decision,
    effects: Effects,
    journaling: Journaling,
    daily_check: Option<DailyCheck>,
}

impl Hub {
    /// Journals a decided request: the decision to answer once its row is
    /// durable, and whether it is — or that another request holds its
    /// switch keys.
    pub(super) async fn journal(
        &self,
        m: &Mapped<'_>,
        txn_id: TxnId,
        outcome: Outcome,
    ) -> Journaled {
        let entry = self.entry(m, txn_id, &outcome, m.canonical.as_ref().ok());
        self.durably(entry, outcome).await
    }

    /// The decision to answer once its journal row is durable, and whether
    /// it is: when the row cannot be written the answer is 96, never an
    /// approval that is not on disk. A row the account system wrote with
    /// its booking in the hub's store is durable already; and when it may
    /// have written one the hub did not see come back, that row's decision
    /// is the answer. A row refused because another request holds its
    /// switch keys (`journal_duplicate_key`) is [`Journaled::KeyHeld`].
    pub(super) async fn durably(&self, entry: JournalEntry, outcome: Outcome) -> Journaled {
        let Outcome {
            decision,
            effects,
            journaling,
            daily_check,
            ..
        } = outcome;
        let labels = (
            entry.mti.clone(),
            entry.institution.clone(),
            entry.latency_us,
        );
        let answered = if journaling == Journaling::KeyHeld {
            return Journaled::KeyHeld;
        } else if journaling == Journaling::Booked {
            Journaled::Answer(decision, true)
        } else {
            let written = Written {
                decision,
                effects,
                journaling,
                daily_check,
            };
            self.write_row(entry, written).await
        };
        if let Journaled::Answer(decision, _) = &answered {
            let (mti, institution, latency_us) = labels;
            self.observe(&mti, institution.as_deref(), latency_us, decision);
        }
        answered
    }

    /// Writes a decision's journal row with its effects (see
    /// [`Hub::durably`]): a stand-in approval is checked again first
    /// (`recheck.rs`), and what the transaction wrote is the answer.
    async fn write_row(&self, entry: JournalEntry, outcome: Written) -> Journaled {
        let Written {
            decision,
            effects,
            journaling,
            daily_check,
        } = outcome;
        let movement = effects
            .movement
            .as_ref()
            .map(|m| (m.institution.clone(), m.account.clone(), m.txn_id));
        let wake = effects.saf.as_ref().map(|i| i.institution.clone());
        let checked = self.shared() && (daily_check.is_some() || effects.recheck.is_some());
        let held = (
            entry.keys.clone(),
            entry.txn_id,
            journaling,
            counted_of(&entry),
        );
        let written = self
            .store
            .write(move |c| {
                // A run again (PostgreSQL) starts from the request's row.
                let (mut entry, mut effects) = (entry.clone(), effects.clone());
                if journaling == Journaling::MaybeBooked
                    && let Some(booked) = journal::journaled_decision(c, entry.txn_id)?
                {
                    return Ok((Some(booked), None));
                }
                // The call's reservation goes back before the check, and
                // the row adds what it counts.
                if journaling == Journaling::AfterIntent {
                    journal::clear_intent(c, entry.txn_id)?;
                }
                let refused =
                    checked && recheck::recheck(c, &mut entry, &mut effects, daily_check.as_ref())?;
                journal::insert(c, &entry)?;
                effects.write(c)?;
                // A refused approval gives back what it counted in memory.
                Ok((
                    refused.then_some(entry.decision),
                    daily_check.as_ref().filter(|_| refused).cloned(),
                ))
            })
            .await;
        match written {
            Ok((changed, refused_check)) => {
                // Either a booked row's decision or a refused approval's.
                let refused = changed.is_some() && journaling != Journaling::MaybeBooked;
                if refused {
                    if let Some((institution, account, _)) = &movement {
                        self.book.evict(institution, account);
                    }
                    if let Some(check) = &refused_check {
                        self.uncount(check);
                    }
                }
                // (A refusal may have dropped the item: a wake finds nothing.)
                if let Some(inst) = wake.and_then(|id| self.institutions.get(&id)) {
                    inst.saf_wake.notify_one();
                }
                Journaled::Answer(changed.unwrap_or(decision), true)
            }
            Err(e) if self.key_held(&e, &held.0) => {
                if let Some((institution, account, txn_id)) = movement {
                    self.book.forget(&institution, &account, txn_id);
                }
                let (_, txn_id, journaling, counted) = held;
                if let Some(counted) = counted {
                    self.uncount_row(&counted);
                }
                if journaling == Journaling::AfterIntent {
                    self.reverse_call(txn_id).await;
                }
                Journaled::KeyHeld
            }
            Err(e) => {
                if let Some((institution, account, txn_id)) = movement {
                    self.book.forget(&institution, &account, txn_id);
                }
                error!(error = %e, "journal write failed; answering 96");
                Journaled::Answer(
                    Decision::rule(codes::SYSTEM_ERROR, "journal write failed"),
                    false,
                )
            }
        }
    }

    /// Whether a write failed because another request holds the row's
    /// switch keys: a unique violation, and a journaled request with them.
    fn key_held(&self, e: &StoreError, keys: &SwitchKeys) -> bool {
        matches!(e, StoreError::Query(q) if q.is_unique_violation())
            && matches!(journal::answered(&self.store, keys), Ok(Some(_)))
    }

    /// A call whose decision cannot be journaled (another request took its
    /// switch keys meanwhile): its intent moves to the journal and a
    /// Reverse is queued for it, as for a call a stop interrupted.
    async fn reverse_call(&self, txn_id: TxnId) {
        let ids = self.ids.clone();
        let moved = self
            .store
            .write(move |c| {
                let calls: Vec<_> = journal::journal_interrupted_call(c, txn_id)?
                    .into_iter()
                    .collect();
                queue_reversals(c, &ids, &calls)?;
                Ok(calls)
            })
            .await;
        match moved {
            Ok(calls) => {
                for call in calls {
                    warn!(
                        txn_id = %call.txn_id,
                        institution = call.institution,
                        "switch keys taken by another request during the account-system call: reversal queued"
                    );
                    if let Some(inst) = self.institutions.get(&call.institution) {
                        inst.saf_wake.notify_one();
                    }
                }
            }
            Err(e) => error!(
                %txn_id, error = %e,
                "call whose switch keys another request took: intent kept, reversed at the next start"
            ),
        }
    }

    /// Counts an answered request for `/metrics`.
    pub(super) fn observe(
        &self,
        mti: &str,
        institution: Option<&str>,
        latency_us: i64,
        decision: &Decision,
    ) {
        self.metrics.request(
            mti,
            decision.code.as_str(),
            decision.decided_by.as_str(),
            institution.unwrap_or("none"),
            latency_us as f64 / 1e6,
        );
    }

    /// A journal read failed: the request is answered 96 (the hub's
    /// error, counted), never decided as if the read had found nothing.
    pub(super) fn unreadable(&self, e: &crate::store::StoreError) -> Outcome {
        error!(error = %e, "journal not readable; answering 96");
        self.metrics.store_read_error();
        Outcome::rule(codes::SYSTEM_ERROR, format!("journal not readable: {e}"))
    }

    /// The journal row of a request; `c` is its canonical form when the row
    /// carries it (a retransmission's row does not).
    pub(super) fn entry(
        &self,
        m: &Mapped<'_>,
        txn_id: TxnId,
        outcome: &Outcome,
        c: Option<&CanonicalRequest>,
    ) -> JournalEntry {
        let request = m.request;
        let card = outcome.card.as_deref();
        let amount_minor = outcome
            .reversal
            .unwrap_or_else(|| c.map_or(0, |c| c.amount.minor as i64));
        JournalEntry {
            txn_id,
            entry: outcome.entry,
            received_at_us: Timestamp::now().as_microsecond()
                - request.received.elapsed().as_micros() as i64,
            business_day: outcome
                .business_day
                .clone()
                .unwrap_or_else(|| self.day.today().to_string()),
            switch: request.origin.switch.clone(),
            mti: m.keys.mti.to_string(),
            is_repeat: m.repeat,
            kind: c.map_or("unknown", |c| c.kind.as_str()),
            channel: c.map_or("other", |c| c.channel.as_str()),
            pan_hash: card.map(|k| k.pan_hash.0.to_vec()),
            pan_masked: card
                .map(|k| k.pan_masked.clone())
                .or_else(|| m.pan_masked.clone()),
            account: card.map(|k| k.account.clone()),
            institution: card.map(|k| k.institution.clone()),
            amount_minor,
            currency: c.map_or(0, |c| c.amount.currency.numeric),
            keys: m.keys.clone(),
            merchant: c.and_then(|c| c.merchant.clone()),
            merchant_name: c.and_then(|c| c.merchant_name.clone()),
            mcc: c.and_then(|c| c.mcc),
            decision: outcome.decision.clone(),
            counted_minor: outcome.counted.0,
            counted_count: outcome.counted.1,
            original_txn_id: outcome.original_txn_id,
            latency_us: request.received.elapsed().as_micros() as i64,
        }
    }
}
