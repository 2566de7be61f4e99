//! The limits step: a debit reserves its amount and one count against the
//! card's daily limits for its channel before it is decided; the decision
//! keeps or gives back the reservation. (The arithmetic is
//! `hub::limits::Counters`.)
//!
//! Those counters are this hub's; the totals every instance on the store
//! shares (`journal::daily`) decide: an online request reserves there in
//! the transaction of its call intent ([`Hub::reserve_shared`]), a stand-in
//! approval is checked there in the transaction of its journal row
//! ([`DailyCheck`]). The memory counters refuse first, and cheaply: one
//! hub's counts never exceed every hub's.

use std::sync::Arc;

use super::decide::Decided;
use super::{CardKey, Hub, Outcome, Refusal, stand_in};
use crate::cards::card::Card;
use crate::hub::limits::{LimitBreach, LimitChannel, Reservation};
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;
use crate::iso8583::fields::ResponseCode;
use crate::journal::JournalEntry;
use crate::journal::daily::{self, DayLimits, Over};
use crate::journal::decision::DecidedBy;
use crate::store::sql;

/// A checked card with its request's reservation (debits only) on the
/// business day it counts on.
pub(super) struct Reserved {
    pub(super) card: Arc<Card>,
    pub(super) day: jiff::civil::Date,
    reservation: Option<Reservation<CardKey>>,
}

/// A stand-in approval's check against the shared daily totals, in the
/// transaction of its journal row (which then adds it): the card's online
/// limits and stand-in's own, for the request's channel and day.
#[derive(Clone)]
pub(super) struct DailyCheck {
    key: CardKey,
    day: jiff::civil::Date,
    channel: LimitChannel,
    amount: u64,
    limits: DayLimits,
    stand_in: DayLimits,
}

/// What a journal row counts, as this hub's memory counters kept it: given
/// back when the row is not written after all.
pub(super) struct Counted {
    key: CardKey,
    channel: LimitChannel,
    day: jiff::civil::Date,
    amount: i64,
    count: i32,
    stand_in: bool,
}

/// What `entry` counts, if anything.
pub(super) fn counted_of(entry: &JournalEntry) -> Option<Counted> {
    if (entry.counted_minor, entry.counted_count) == (0, 0) {
        return None;
    }
    Some(Counted {
        key: CardKey::try_from(entry.pan_hash.as_deref()?).ok()?,
        channel: LimitChannel::of_journal(entry.channel),
        day: entry.business_day.parse().ok()?,
        amount: entry.counted_minor,
        count: entry.counted_count,
        stand_in: entry.decision.decided_by == DecidedBy::StandIn,
    })
}

/// A debit's reservation in the shared daily totals, taken with its call
/// intent.
pub(super) struct SharedReservation {
    key: CardKey,
    day: String,
    channel: LimitChannel,
    amount: u64,
    limits: DayLimits,
}

impl SharedReservation {
    /// Reserves in the shared totals (on the store's write connection).
    ///
    /// # Errors
    /// The database's error; `Ok(Some(answer))` when another instance's
    /// approvals leave no room: the decline's code and reason.
    pub(super) fn take(&self, c: &sql::Connection) -> sql::Result<Option<(ResponseCode, String)>> {
        let key = daily::Key {
            pan_hash: &self.key,
            business_day: &self.day,
            channel: self.channel.as_str(),
        };
        Ok(daily::reserve(c, key, self.amount, self.limits)?
            .err()
            .map(|over| across(over, self.channel)))
    }
}

impl DailyCheck {
    /// Checks the approval (on the store's write connection).
    ///
    /// # Errors
    /// The database's error; `Ok(Some(answer))` when it would pass a limit
    /// with every instance's approvals: the decline's code and reason.
    pub(super) fn run(&self, c: &sql::Connection) -> sql::Result<Option<(ResponseCode, String)>> {
        let day = self.day.to_string();
        let key = daily::Key {
            pan_hash: &self.key,
            business_day: &day,
            channel: self.channel.as_str(),
        };
        Ok(
            daily::check(c, key, self.amount, self.limits, self.stand_in)?
                .err()
                .map(|over| across(over, self.channel)),
        )
    }
}

/// The decline for a limit the shared totals found passed.
fn across(over: Over, channel: LimitChannel) -> (ResponseCode, String) {
    let (breach, whose) = match over {
        Over::Amount => (LimitBreach::DailyAmount, ""),
        Over::Count => (LimitBreach::DailyCount, ""),
        Over::StandInAmount => (LimitBreach::DailyAmount, "stand-in "),
        Over::StandInCount => (LimitBreach::DailyCount, "stand-in "),
    };
    let (code, reason) = stand_in::breach(breach, channel, whose);
    (code, format!("{reason} with every instance's approvals"))
}

/// A channel's daily limits as the shared totals take them.
fn day_limits(limits: &crate::cards::config::ChannelLimits) -> DayLimits {
    DayLimits {
        amount: limits.daily_amount,
        count: limits.daily_count,
    }
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

    /// The reservation an online debit takes in the shared totals with its
    /// call intent (`None` for other kinds, and for a hub alone on its
    /// store: its memory counters are every instance's).
    pub(super) fn reserve_shared(
        &self,
        c: &CanonicalRequest,
        reserved: &Reserved,
    ) -> Option<SharedReservation> {
        if !self.shared() {
            return None;
        }
        reserved.reservation.as_ref()?;
        let profile = self.profiles.get(&reserved.card.profile)?;
        let channel = LimitChannel::of(c.channel);
        Some(SharedReservation {
            key: reserved.card.pan_hash.0,
            day: reserved.day.to_string(),
            channel,
            amount: c.amount.minor,
            limits: day_limits(channel.limits(profile)),
        })
    }

    /// Gives back in memory what a refused stand-in approval counted: the
    /// card's and stand-in's own counters.
    pub(super) fn uncount(&self, check: &DailyCheck) {
        let amount = -(check.amount as i64);
        self.counters
            .apply(&check.key, check.channel, check.day, amount, -1);
        self.offline
            .apply(&check.key, check.channel, check.day, amount, -1);
    }

    /// Gives back in memory what a row that was not written counted: the
    /// card's counters, and stand-in's own for a stand-in decision.
    pub(super) fn uncount_row(&self, counted: &Counted) {
        let (amount, count) = (-counted.amount, -counted.count);
        let (key, channel, day) = (&counted.key, counted.channel, counted.day);
        self.counters.apply(key, channel, day, amount, count);
        if counted.stand_in {
            self.offline.apply(key, channel, day, amount, count);
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
        let stand_in = decided.decision.decided_by == DecidedBy::StandIn;
        let daily_check = match (
            &reserved.reservation,
            self.profiles.get(&reserved.card.profile),
        ) {
            (Some(_), Some(profile)) if stand_in && decided.decision.approved() => {
                let channel = LimitChannel::of(c.channel);
                Some(DailyCheck {
                    key: reserved.card.pan_hash.0,
                    day: reserved.day,
                    channel,
                    amount: c.amount.minor,
                    limits: day_limits(channel.limits(profile)),
                    stand_in: day_limits(channel.offline_limits(profile)),
                })
            }
            _ => None,
        };
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
            daily_check,
            ..Outcome::rule(codes::APPROVED, "")
        }
    }
}
