//! The online step: the account system asked for its decision, bounded
//! by the request's deadline less the institution's stand-in reserve. A
//! call intent is written first (by a system that books in the hub's own
//! store, the prepaid ledger, in the transaction of its booking); a
//! failure or a late answer falls back to stand-in, and a late answer is
//! still listened for (`hub::call`).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::error;

use super::map::{Txn, account_request};
use super::route::Routed;
use super::stand_in::Tell;
use super::{Hub, LATE_LISTEN, Outcome};
use crate::account::{AccountError, AccountSystem, Intent, Operation};
use crate::hub::call::{LateRecorder, call_with_deadline, decision_from, operation_of};
use crate::iso8583::codes;
use crate::journal;
use crate::journal::decision::Decision;
use crate::mask::redact_pans;
use crate::standin::Effects;
use crate::standin::saf::NewItem;

impl Hub {
    /// The account system's decision on a request, or stand-in's when it
    /// fails or is late. A call intent is recorded durably before the call
    /// (or with the booking of a system in the hub's store), so a hub
    /// stopped under way reverses the call at its next start; without that
    /// record nothing is sent: 96.
    pub(super) async fn call_online(
        &self,
        t: &Txn<'_>,
        routed: &Routed,
        system: &Arc<dyn AccountSystem>,
        decided: watch::Receiver<Option<Decision>>,
    ) -> (Decision, Effects) {
        let (c, txn_id, institution) = (t.c, t.id, &routed.institution);
        let (card, day) = (&routed.reserved.card, routed.reserved.day);
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
            ..Outcome::rule(codes::SYSTEM_ERROR, "")
        };
        let intent = self.entry(t.m, txn_id, &unknown, Some(c));
        let mut request = account_request(c, card, txn_id);
        if system.books_in_hub_store() {
            // One transaction with the booking: never one without the other.
            request.intent = Some(Intent::new(move |w| {
                journal::record_intent_unless_journaled(w, &intent)
            }));
        } else if let Err(e) = self
            .store
            .write(move |w| journal::record_intent(w, &intent))
            .await
        {
            error!(error = %e, "call intent not recorded; answering 96");
            let decision = Decision::rule(codes::SYSTEM_ERROR, "call intent not recorded");
            return (decision, Effects::default());
        }
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
                let effects = self.online_effects(c, card, txn_id, &decision);
                (decision, effects)
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
                (decision, effects)
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
                    return (decision, Effects::default());
                }
                // A request that timed out may still reach the account
                // system: its advice waits until the call has ended.
                let not_before_us = (e == AccountError::Timeout).then(call_over_us);
                let tell = Tell::AfterCall { not_before_us };
                let (mut decision, effects) =
                    self.stand_in(c, card, txn_id, institution, tell, &why);
                decision.adapter = Some(system.name().to_string());
                (decision, effects)
            }
        }
    }
}
