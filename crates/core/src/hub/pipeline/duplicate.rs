//! The duplicate step: a retransmission gets its original's decision again
//! (waiting for it while the original is still being decided), the same
//! switch keys with another amount or card get 94, and anything else is
//! claimed for deciding. Most requests skip the journal read: the
//! seen-keys filter says "never seen".

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::warn;

use super::journal::Journaled;
use super::map::Mapped;
use super::{Hub, InFlight, Outcome};
use crate::hub::mapping;
use crate::iso8583::Message;
use crate::iso8583::codes;
use crate::journal::decision::Decision;
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::TxnId;
use crate::journal::{self, Entry, JournalEntry};

/// How often a request whose original's call is under way at another
/// instance looks for the original's journal row.
const ORIGINAL_POLL: Duration = Duration::from_millis(20);

/// A request this hub decides: registered as in flight until it is
/// published (or dropped, however its handling ends).
pub(super) struct Claimed<'a> {
    sender: watch::Sender<Option<Decision>>,
    _done: Done<'a>,
    /// Set when the journal could not say whether the request repeats an
    /// answered one: it is answered 96, nothing decided without knowing.
    pub(super) unreadable: Option<Outcome>,
}

impl Claimed<'_> {
    /// Where cardhub's decision will appear (for a late answer to reconcile with).
    pub(super) fn decided(&self) -> watch::Receiver<Option<Decision>> {
        self.sender.subscribe()
    }

    /// Gives the decision to retransmissions waiting for it, and ends the claim.
    pub(super) fn publish(self, decision: &Decision) {
        let _ = self.sender.send(Some(decision.clone()));
    }
}

enum Claim {
    /// This request decides; the sender publishes its decision.
    Mine(watch::Sender<Option<Decision>>),
    /// Another request with the same keys is being decided.
    InFlight(watch::Receiver<Option<Decision>>),
}

/// Removes a request's in-flight entry when it is done, however it ends.
struct Done<'a> {
    keys: &'a SwitchKeys,
    in_flight: &'a InFlight,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(self.keys);
    }
}

impl Hub {
    /// The duplicate check: the claim of a request to decide, or the answer
    /// to a retransmission or a reuse of its keys (already journaled).
    pub(super) async fn duplicate<'a>(
        &'a self,
        m: &'a Mapped<'_>,
        txn_id: TxnId,
    ) -> Result<Claimed<'a>, Message> {
        let sender = match self.claim(&m.keys) {
            Claim::Mine(sender) => sender,
            Claim::InFlight(mut rx) => {
                let decision = rx
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|d| d.clone());
                return Err(self.repeat_answer(m, txn_id, decision).await);
            }
        };
        let done = Done {
            keys: &m.keys,
            in_flight: &self.in_flight,
        };
        let answered = if self.seen.may_contain(&m.keys) {
            journal::answered(&self.store, &m.keys)
        } else {
            Ok(None)
        };
        match answered {
            Ok(None) => Ok(Claimed {
                sender,
                _done: done,
                unreadable: None,
            }),
            Err(e) => Ok(Claimed {
                sender,
                _done: done,
                unreadable: Some(self.unreadable(&e)),
            }),
            Ok(Some(first)) if same_content(m, &first) => {
                let _ = sender.send(Some(first.decision.clone()));
                drop(done);
                let answer = self
                    .record_repeat(m, txn_id, Some(first.txn_id), first.decision)
                    .await;
                Err(answer)
            }
            // Same keys, other amount or card: not a retransmission.
            Ok(Some(first)) => {
                let (answer, decision) = self.refuse_duplicate(m, txn_id, first.txn_id).await;
                let _ = sender.send(Some(decision));
                Err(answer)
            }
        }
    }

    /// Answers a request whose switch keys another request turned out to
    /// hold though this hub had not seen them — a retransmission that
    /// reached another instance than its original, or one after the
    /// seen-keys filter forgot its key — as a repeat is answered: the
    /// original's decision, or 94 for other content. While the original's
    /// call is still under way (its intent only), its row is awaited until
    /// this request's deadline; then 96. Nothing of this request's own
    /// decision is kept; its row gets a new transaction id (its own may
    /// name a call reversed under it).
    pub(super) async fn repeat_of_held(&self, m: &Mapped<'_>, claimed: Claimed<'_>) -> Message {
        let txn_id = self.ids.next();
        let (answer, decision) = match self.journaled_original(m).await {
            Ok(Some(first)) if same_content(m, &first) => {
                let decision = first.decision.clone();
                let answer = self
                    .record_repeat(m, txn_id, Some(first.txn_id), first.decision)
                    .await;
                (answer, decision)
            }
            Ok(Some(first)) => self.refuse_duplicate(m, txn_id, first.txn_id).await,
            Ok(None) => {
                let decision = Decision::rule(
                    codes::SYSTEM_ERROR,
                    "original still under way at the account system by the deadline",
                );
                let answer = self.record_repeat(m, txn_id, None, decision.clone()).await;
                (answer, decision)
            }
            Err(unreadable) => {
                let decision = unreadable.decision;
                let answer = self.record_repeat(m, txn_id, None, decision.clone()).await;
                (answer, decision)
            }
        };
        // Later repeats at this instance read the journal at once.
        self.seen.insert(&m.keys);
        claimed.publish(&decision);
        answer
    }

    /// The journaled request with this request's switch keys, polled for
    /// until its deadline (its call may be under way at another instance).
    async fn journaled_original(
        &self,
        m: &Mapped<'_>,
    ) -> Result<Option<journal::Answered>, Outcome> {
        loop {
            match journal::answered(&self.store, &m.keys) {
                Ok(Some(first)) => return Ok(Some(first)),
                Ok(None) if Instant::now() < m.request.deadline => {
                    tokio::time::sleep(ORIGINAL_POLL).await;
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.unreadable(&e)),
            }
        }
    }

    /// Registers a request as in flight, or finds the one it repeats.
    fn claim(&self, keys: &SwitchKeys) -> Claim {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(keys) {
            return Claim::InFlight(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(keys.clone(), rx);
        Claim::Mine(tx)
    }

    /// Answers a retransmission of a request decided while it waited.
    async fn repeat_answer(
        &self,
        m: &Mapped<'_>,
        txn_id: TxnId,
        decision: Option<Decision>,
    ) -> Message {
        let decision = decision
            .unwrap_or_else(|| Decision::rule(codes::SYSTEM_ERROR, "original decision lost"));
        let original = journal::answered(&self.store, &m.keys)
            .ok()
            .flatten()
            .map(|first| first.txn_id);
        self.record_repeat(m, txn_id, original, decision).await
    }

    /// Declines (94) a request that reuses another's switch keys with other
    /// content: the answer and the decision journaled.
    async fn refuse_duplicate(
        &self,
        m: &Mapped<'_>,
        txn_id: TxnId,
        first: TxnId,
    ) -> (Message, Decision) {
        let canonical = m.canonical.as_ref().ok();
        let outcome = Outcome {
            card: canonical.and_then(|c| self.cards.lookup(&c.pan)),
            original_txn_id: Some(first),
            ..Outcome::rule(
                codes::DUPLICATE,
                "duplicate transmission: switch keys of another request, other amount or card",
            )
        };
        let entry = JournalEntry {
            entry: Entry::Retransmission,
            ..self.entry(m, txn_id, &outcome, canonical)
        };
        // A retransmission row holds no key: it is written, or it is a 96.
        let decision = match self.durably(entry, outcome).await {
            Journaled::Answer(decision, _) => decision,
            Journaled::KeyHeld => Decision::rule(codes::SYSTEM_ERROR, "journal write failed"),
        };
        (
            mapping::to_answer(&m.request.message, &decision, None),
            decision,
        )
    }

    /// Journals a retransmission and answers it with the original decision.
    async fn record_repeat(
        &self,
        m: &Mapped<'_>,
        txn_id: TxnId,
        original_txn_id: Option<TxnId>,
        decision: Decision,
    ) -> Message {
        let card = m
            .canonical
            .as_ref()
            .ok()
            .and_then(|c| self.cards.lookup(&c.pan));
        let outcome = Outcome {
            decision: decision.clone(),
            card,
            original_txn_id,
            entry: Entry::Retransmission,
            ..Outcome::rule(codes::APPROVED, "")
        };
        let entry = self.entry(m, txn_id, &outcome, None);
        self.observe(
            &entry.mti,
            entry.institution.as_deref(),
            entry.latency_us,
            &decision,
        );
        if let Err(e) = journal::append(&self.store, entry).await {
            warn!(error = %e, "retransmission not journaled");
        }
        let currency = outcome.card.as_ref().map(|c| c.currency);
        mapping::to_answer(&m.request.message, &decision, currency)
    }
}

/// Whether a request has the amount and card of the journaled one with its keys.
fn same_content(m: &Mapped<'_>, first: &journal::Answered) -> bool {
    m.amount_minor == first.amount_minor
        && (m.pan_masked.is_none() || m.pan_masked == first.pan_masked)
}
