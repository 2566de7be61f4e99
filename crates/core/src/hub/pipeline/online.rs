//! The online step: the account system asked for its decision, bounded
//! by the request's deadline less the institution's stand-in reserve. A
//! call intent is written first — except for a system that books in the
//! hub's own store (the prepaid ledger), which writes the decision's
//! journal row in the transaction of its booking instead; a failure or a
//! late answer falls back to stand-in, and a late answer is still listened
//! for (`hub::call`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::error;

use super::card::is_first_load;
use super::decide::Decided;
use super::map::{Txn, account_request};
use super::route::Routed;
use super::stand_in::Tell;
use super::{Hub, Journaling, LATE_LISTEN, Outcome};
use crate::account::{AccountError, AccountSystem, DecisionRow, Operation};
use crate::hub::call::{LateRecorder, call_with_deadline, decision_from, operation_of};
use crate::iso8583::codes;
use crate::iso8583::fields::ResponseCode;
use crate::journal;
use crate::journal::decision::Decision;
use crate::mask::redact_pans;
use crate::standin::Effects;
use crate::standin::saf::NewItem;

/// What the transaction before an online call did.
enum Intent {
    /// The call intent is durable: the call may be made.
    Recorded,
    /// The shared daily totals leave no room: the decline's code and reason.
    Refused((ResponseCode, String)),
    /// Another request holds the switch keys: no call.
    KeyHeld,
}

impl Hub {
    /// The account system's decision on a request, or stand-in's when it
    /// fails or is late. A call intent is recorded durably before the call,
    /// so a hub stopped under way reverses the call at its next start;
    /// without that record nothing is sent: 96. A debit reserves in the
    /// daily totals every instance shares in the same transaction; when
    /// they leave no room it is declined (61/65) without a call. A request
    /// whose switch keys a journaled request or another call intent holds
    /// is not sent ([`Journaling::KeyHeld`]). A prepaid ledger in the
    /// hub's store writes the decision's row with its booking instead.
    pub(super) async fn call_online(
        &self,
        t: &Txn<'_>,
        routed: &Routed,
        system: &Arc<dyn AccountSystem>,
        decided: watch::Receiver<Option<Decision>>,
    ) -> Decided {
        let (c, txn_id, institution) = (t.c, t.id, &routed.institution);
        let (card, day) = (&routed.reserved.card, routed.reserved.day);
        let mut request = account_request(c, card, txn_id);
        // A first load also activates the card after the call, which may
        // change its decision's reason: it keeps the call intent.
        let first_load = is_first_load(c, card);
        let booked_row =
            (system.books_in_hub_store() && institution.prepaid && !first_load).then(|| {
                let (row, slot) = self.row_with_booking(t, routed, system.name());
                request.decision_row = Some(row);
                slot
            });
        if booked_row.is_none() {
            let shared = self.reserve_shared(c, &routed.reserved);
            let unknown = Outcome {
                decision: Decision {
                    adapter: Some(system.name().to_string()),
                    ..Decision::rule(
                        codes::SYSTEM_ERROR,
                        "the hub stopped during the account-system call: outcome unknown; reversal queued",
                    )
                },
                card: Some(card.clone()),
                business_day: Some(day.to_string()),
                // The intent carries the shared daily totals' reservation.
                counted: shared
                    .as_ref()
                    .map_or((0, 0), |_| routed.reserved.counts(c)),
                ..Outcome::rule(codes::SYSTEM_ERROR, "")
            };
            let intent = self.entry(t.m, txn_id, &unknown, Some(c));
            let recorded = self
                .store
                .write(move |w| {
                    // One key, one call: a retransmission another instance
                    // answered or is asking about is not sent again.
                    if journal::key_holder(w, &intent.keys)?.is_some() {
                        return Ok(Intent::KeyHeld);
                    }
                    if let Some(shared) = &shared
                        && let Some(refused) = shared.take(w)?
                    {
                        return Ok(Intent::Refused(refused));
                    }
                    journal::record_intent(w, &intent).map(|()| Intent::Recorded)
                })
                .await;
            match recorded {
                Ok(Intent::Recorded) => {}
                Ok(Intent::KeyHeld) => {
                    let decision =
                        Decision::rule(codes::SYSTEM_ERROR, "switch keys held by another request");
                    return Decided::new(decision, Effects::default(), Journaling::KeyHeld);
                }
                Ok(Intent::Refused((code, reason))) => {
                    let decision = Decision::rule(code, reason);
                    return Decided::new(decision, Effects::default(), Journaling::Hub);
                }
                Err(e) => {
                    error!(error = %e, "call intent not recorded; answering 96");
                    let decision = Decision::rule(codes::SYSTEM_ERROR, "call intent not recorded");
                    return Decided::new(decision, Effects::default(), Journaling::Hub);
                }
            }
        }
        let (decision, effects, answered) = self.ask(t, routed, system, request, decided).await;
        match booked_row {
            None => Decided::new(decision, effects, Journaling::AfterIntent),
            Some(slot) => {
                // Answered, the booking's job committed: the decision it
                // journaled is the answer.
                let booked = answered
                    .then(|| slot.lock().ok().and_then(|mut s| s.take()))
                    .flatten();
                match booked {
                    Some(booked) => Decided::new(booked, Effects::default(), Journaling::Booked),
                    None => Decided::new(decision, effects, Journaling::MaybeBooked),
                }
            }
        }
    }

    /// The row a system in the hub's store writes with its booking: the
    /// request's journal row with the decision its answer makes and what an
    /// approval counts, and where that decision is put for the answer.
    fn row_with_booking(
        &self,
        t: &Txn<'_>,
        routed: &Routed,
        adapter: &str,
    ) -> (DecisionRow, Arc<Mutex<Option<Decision>>>) {
        let reserved = &routed.reserved;
        let base = Outcome {
            card: Some(reserved.card.clone()),
            business_day: Some(reserved.day.to_string()),
            ..Outcome::rule(codes::SYSTEM_ERROR, "")
        };
        let template = self.entry(t.m, t.id, &base, Some(t.c));
        let counts = reserved.counts(t.c);
        let received = t.m.request.received;
        let adapter = adapter.to_string();
        let slot = Arc::new(Mutex::new(None));
        let put = slot.clone();
        let row = DecisionRow::new(move |conn, answer| {
            let decision = decision_from(Ok(answer.clone()), &adapter);
            let mut entry = template.clone();
            entry.counted_minor = if decision.approved() { counts.0 } else { 0 };
            entry.counted_count = if decision.approved() { counts.1 } else { 0 };
            entry.latency_us = received.elapsed().as_micros() as i64;
            entry.decision = decision.clone();
            // A call that outlived its deadline books after the hub's own
            // row: that row stands, and the late answer is reconciled.
            if journal::insert_unless_journaled(conn, &entry)?
                && let Ok(mut s) = put.lock()
            {
                *s = Some(decision);
            }
            Ok(())
        });
        (row, slot)
    }

    /// The call itself, bounded by the deadline: what its answer or failure
    /// decides, and whether the account system answered.
    async fn ask(
        &self,
        t: &Txn<'_>,
        routed: &Routed,
        system: &Arc<dyn AccountSystem>,
        mut request: crate::account::AccountRequest,
        decided: watch::Receiver<Option<Decision>>,
    ) -> (Decision, Effects, bool) {
        let (c, txn_id, institution) = (t.c, t.id, &routed.institution);
        let card = &routed.reserved.card;
        let reserve = Duration::from_millis(institution.stand_in.reserve_ms);
        request.deadline = c.deadline.checked_sub(reserve).unwrap_or(c.deadline);
        let listen_until = c.deadline + LATE_LISTEN;
        request.listen_until = Some(listen_until);
        // When the call can no longer reach the account system, as wall time
        // (for a SAF item held until then).
        let call_over_us = || {
            let left = listen_until.saturating_duration_since(Instant::now());
            Timestamp::now().as_microsecond() + left.as_micros() as i64
        };
        let late = LateRecorder {
            store: self.store.clone(),
            ids: self.ids.clone(),
            original: txn_id,
            decided,
            wake: institution.clone(),
            tasks: self.late_answers.clone(),
        };
        let started = std::time::Instant::now();
        let answer = call_with_deadline(system.clone(), request, c.kind, late).await;
        let outcome = match &answer {
            Ok(_) => "answered",
            Err(e) => e.kind(),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.adapter_call(&institution.id, outcome, seconds);
        match answer {
            Ok(answer) => {
                self.institutions
                    .record_success(&institution.id, operation_of(c.kind));
                let decision = decision_from(Ok(answer), system.name());
                // Shadow balances serve stand-in, which prepaid never gets.
                let effects = if institution.prepaid {
                    Effects::default()
                } else {
                    self.online_effects(c, card, txn_id, &decision)
                };
                (decision, effects, true)
            }
            Err(AccountError::Internal(why)) => {
                // The hub's own failure: 96, not stand-in; the request may
                // have reached the account system, so it is reversed there.
                let decision = Decision {
                    adapter: Some(system.name().to_string()),
                    ..Decision::rule(
                        codes::SYSTEM_ERROR,
                        format!(
                            "hub error during the account-system call ({why}); reversal queued"
                        ),
                    )
                };
                let effects = Effects {
                    saf: Some(NewItem::after_call(
                        Operation::Reverse,
                        txn_id,
                        self.ids.next(),
                        card.institution.clone(),
                        card.account.clone(),
                        Some(call_over_us()),
                    )),
                    ..Effects::default()
                };
                (decision, effects, false)
            }
            Err(e) => {
                if e.is_unavailability() {
                    self.institutions
                        .record_failure(&institution.id, operation_of(c.kind), &e.to_string())
                        .await;
                }
                let why = format!("account system: {}", redact_pans(&e.to_string()));
                if institution.prepaid {
                    // The prepaid ledger is the only one that may decide
                    // for its cards: no shadow balance, no SAF.
                    let decision = Decision {
                        adapter: Some(system.name().to_string()),
                        ..Decision::rule(
                            codes::ISSUER_UNAVAILABLE,
                            format!("{why}; prepaid is never stood in for"),
                        )
                    };
                    return (decision, Effects::default(), false);
                }
                // A request that timed out may still reach the account
                // system: its advice waits until the call has ended.
                let not_before_us = (e == AccountError::Timeout).then(call_over_us);
                let tell = Tell::AfterCall { not_before_us };
                let (mut decision, effects) =
                    self.stand_in(c, card, txn_id, institution, tell, &why);
                decision.adapter = Some(system.name().to_string());
                (decision, effects, false)
            }
        }
    }
}
