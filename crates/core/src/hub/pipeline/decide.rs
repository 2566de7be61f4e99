//! The decide step: each role its own sequence. A request (0100 / 0200)
//! goes card → limits → route → the account system when its institution is
//! open, stand-in otherwise (or when the call fails or is late); an advice
//! and a reversal have their own steps (`advice.rs`, `reverse.rs`).

use tokio::sync::watch;

use super::map::Txn;
use super::route::Routed;
use super::stand_in::Tell;
use super::{Hub, Journaling, Outcome};
use crate::hub::model::MessageRole;
use crate::iso8583::codes;
use crate::journal::decision::Decision;
use crate::standin::Effects;

/// A request's decision, with what it changes and who writes its row.
pub(super) struct Decided {
    pub(super) decision: Decision,
    /// Shadow-balance and SAF changes, written with the journal row.
    pub(super) effects: Effects,
    pub(super) journaling: Journaling,
}

impl Decided {
    pub(super) fn new(decision: Decision, effects: Effects, journaling: Journaling) -> Decided {
        Decided {
            decision,
            effects,
            journaling,
        }
    }
}

impl Hub {
    /// Decides a canonical request by its role. `decided` is where
    /// cardhub's final decision appears, for a late answer to reconcile with.
    pub(super) async fn decide_by_role(
        &self,
        t: &Txn<'_>,
        decided: watch::Receiver<Option<Decision>>,
    ) -> Outcome {
        match t.c.role {
            MessageRole::Request => self.authorize(t, decided).await,
            MessageRole::Advice => self.advice(t).await,
            MessageRole::Reversal { advice } => self.reverse(t, advice).await,
        }
    }

    /// 0100 / 0200: card checks, limits, route, then the account system —
    /// or stand-in when the institution is not open or its system fails.
    async fn authorize(&self, t: &Txn<'_>, decided: watch::Receiver<Option<Decision>>) -> Outcome {
        let routed = match self
            .check_card(t.c)
            .and_then(|card| self.reserve(t.c, card))
            .and_then(|reserved| self.route(reserved))
        {
            Ok(routed) => routed,
            Err(refusal) => return refusal.into(),
        };
        let mut decision = self.online_or_stand_in(t, &routed, decided).await;
        self.activate_on_first_load(t.c, &routed.reserved.card, &mut decision.decision)
            .await;
        self.count(t.c, routed.reserved, decision)
    }

    /// The account system's decision when the institution is open and has
    /// one, stand-in's otherwise — except for an institution served by the
    /// prepaid ledger: the ledger is the only one that may decide, so
    /// without it its cards are declined (91).
    async fn online_or_stand_in(
        &self,
        t: &Txn<'_>,
        routed: &Routed,
        decided: watch::Receiver<Option<Decision>>,
    ) -> Decided {
        match (&routed.system, routed.institution.state()) {
            (Some(system), state) if state.is_online() => {
                self.call_online(t, routed, system, decided).await
            }
            (_, state) if routed.institution.prepaid => Decided::new(
                Decision::rule(
                    codes::ISSUER_UNAVAILABLE,
                    format!("prepaid card, institution {state}: prepaid is never stood in for"),
                ),
                Effects::default(),
                Journaling::Hub,
            ),
            (system, state) => {
                let (why, tell) = match system {
                    None => (
                        format!("institution {state}, no account system"),
                        Tell::Nothing,
                    ),
                    Some(_) => (format!("institution {state}"), Tell::MoneyMoves),
                };
                let card = &routed.reserved.card;
                let (decision, effects) =
                    self.stand_in(t.c, card, t.id, &routed.institution, tell, &why);
                Decided::new(decision, effects, Journaling::Hub)
            }
        }
    }
}
