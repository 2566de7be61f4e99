//! The limits step: a debit reserves its amount and one count against the
//! card's daily limits for its channel before it is decided; the decision
//! keeps or gives back the reservation. (The arithmetic is
//! `hub::limits::Counters`.)

use std::sync::Arc;

use super::decide::Decided;
use super::{CardKey, Hub, Outcome, Refusal, stand_in};
use crate::cards::card::Card;
use crate::hub::limits::{LimitChannel, Reservation};
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;

/// A checked card with its request's reservation (debits only) on the
/// business day it counts on.
pub(super) struct Reserved {
    pub(super) card: Arc<Card>,
    pub(super) day: jiff::civil::Date,
    reservation: Option<Reservation<CardKey>>,
}

impl Reserved {
    /// What the request counts when approved: its amount and one, for a
    /// reserved debit.
    pub(super) fn counts(&self, c: &CanonicalRequest) -> (i64, i32) {
        match self.reservation {
            Some(_) => (c.amount.minor as i64, 1),
            None => (0, 0),
        }
    }
}

impl Hub {
    /// Reserves a debit against the card's limits for its channel; other
    /// kinds pass unreserved.
    pub(super) fn reserve(
        &self,
        c: &CanonicalRequest,
        card: Arc<Card>,
    ) -> Result<Reserved, Refusal> {
        let day = self.day.today();
        if !c.kind.is_debit() {
            return Ok(Reserved {
                card,
                day,
                reservation: None,
            });
        }
        let Some(profile) = self.profiles.get(&card.profile) else {
            let reason = format!("limits profile {:?} not configured", card.profile);
            return Err(Refusal::new(codes::SYSTEM_ERROR, reason, Some(&card)));
        };
        let channel = LimitChannel::of(c.channel);
        let limits = channel.limits(profile);
        match self
            .counters
            .reserve(&card.pan_hash.0, channel, day, c.amount.minor, limits)
        {
            Ok(r) => Ok(Reserved {
                card,
                day,
                reservation: Some(r),
            }),
            Err(b) => {
                let (code, reason) = stand_in::breach(b, channel, "");
                Err(Refusal::new(code, reason, Some(&card)))
            }
        }
    }

    /// Gives a reservation back: the request is not decided after all.
    pub(super) fn unreserve(&self, reserved: Reserved) -> Arc<Card> {
        if let Some(r) = reserved.reservation {
            self.counters.release(r);
        }
        reserved.card
    }

    /// Keeps the reservation of an approval, gives back a decline's: the
    /// request's outcome with what it counted.
    pub(super) fn count(
        &self,
        c: &CanonicalRequest,
        reserved: Reserved,
        decided: Decided,
    ) -> Outcome {
        let counts = reserved.counts(c);
        let counted = match (reserved.reservation, decided.decision.approved()) {
            (Some(r), true) => {
                self.counters.keep(r);
                counts
            }
            (Some(r), false) => {
                self.counters.release(r);
                (0, 0)
            }
            (None, _) => (0, 0),
        };
        Outcome {
            decision: decided.decision,
            card: Some(reserved.card),
            counted,
            business_day: Some(reserved.day.to_string()),
            effects: decided.effects,
            journaling: decided.journaling,
            ..Outcome::rule(codes::APPROVED, "")
        }
    }
}
