//! Card limits: the business day and the per-card daily counters, ATM and POS
//! apart. A check reserves the amount at once (so two concurrent requests
//! cannot both slip under a limit); a declined request releases it.
//!
//! Counters live in memory and are rebuilt from the journal at start: each
//! journal row records its effect on them (`counted_minor`, `counted_count`).
//! In memory they see one hub's requests only: several instances on one
//! store share `journal::daily`'s totals, which decide. The memory counters
//! stay as a fast refusal: what one hub counted never exceeds what all
//! counted, so a limit they find passed is passed.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use crate::account::Channel;
use crate::cards::config::{ChannelLimits, LimitProfile};

/// Counter shards: requests for different cards rarely wait for each other.
const SHARDS: usize = 64;

/// Which limits a channel uses: ATM its own, everything else the POS limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitChannel {
    Atm,
    Pos,
}

impl LimitChannel {
    pub fn of(channel: Channel) -> LimitChannel {
        match channel {
            Channel::Atm => LimitChannel::Atm,
            Channel::Pos | Channel::Other => LimitChannel::Pos,
        }
    }

    /// The limit channel of a journal row's `channel` column.
    pub fn of_journal(channel: &str) -> LimitChannel {
        if crate::journal::daily::limit_channel(channel) == LimitChannel::Atm.as_str() {
            LimitChannel::Atm
        } else {
            LimitChannel::Pos
        }
    }

    pub fn limits(self, profile: &LimitProfile) -> &ChannelLimits {
        match self {
            LimitChannel::Atm => &profile.atm,
            LimitChannel::Pos => &profile.pos,
        }
    }

    /// Stand-in's limits for this channel: the offline ones, or the online
    /// ones when the profile has none.
    pub fn offline_limits(self, profile: &LimitProfile) -> &ChannelLimits {
        match (&profile.offline, self) {
            (Some(o), LimitChannel::Atm) => &o.atm,
            (Some(o), LimitChannel::Pos) => &o.pos,
            (None, _) => self.limits(profile),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitChannel::Atm => "atm",
            LimitChannel::Pos => "pos",
        }
    }
}

/// A `[day]` setting that cannot be used (the operator's to fix).
#[derive(Debug, thiserror::Error)]
pub enum DayError {
    /// Not a time zone of the system's database.
    #[error("day.time_zone {name:?}: {source}")]
    TimeZone {
        name: String,
        #[source]
        source: jiff::Error,
    },
    /// Not a time written `HH:MM`.
    #[error("day.cutoff {0:?} is not HH:MM")]
    Cutoff(String),
}

/// When the business day turns over.
#[derive(Debug, Clone)]
pub struct BusinessDay {
    zone: TimeZone,
    cutoff: Time,
}

impl BusinessDay {
    /// # Errors
    /// [`DayError`] when the time zone is unknown or the cut-off not `HH:MM`.
    pub fn from_config(config: &DayConfig) -> Result<BusinessDay, DayError> {
        let zone = TimeZone::get(&config.time_zone).map_err(|source| DayError::TimeZone {
            name: config.time_zone.clone(),
            source,
        })?;
        let cutoff = Time::strptime("%H:%M", &config.cutoff)
            .map_err(|_| DayError::Cutoff(config.cutoff.clone()))?;
        Ok(BusinessDay { zone, cutoff })
    }

    /// The business day a moment belongs to.
    pub fn of(&self, at: Timestamp) -> Date {
        let local = at.to_zoned(self.zone.clone());
        let date = local.date();
        if local.time() < self.cutoff {
            date.checked_sub(1.day()).unwrap_or(date)
        } else {
            date
        }
    }

    /// Today's business day.
    pub fn today(&self) -> Date {
        self.of(Timestamp::now())
    }
}

/// Which limit a request would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBreach {
    PerTransaction,
    DailyAmount,
    DailyCount,
}

#[derive(Debug, Clone, Copy, Default)]
struct DayTotal {
    day: Option<Date>,
    amount: u64,
    count: u32,
}

/// An amount held against a card's daily counters until the request ends.
#[derive(Debug)]
#[must_use = "a reservation is either kept (approved) or released (declined)"]
pub struct Reservation<K> {
    key: (K, LimitChannel),
    day: Date,
    amount: u64,
}

/// Daily amount and count per card and limit channel.
pub struct Counters<K> {
    shards: Vec<Mutex<HashMap<(K, LimitChannel), DayTotal>>>,
}

impl<K: Hash + Eq + Clone> Default for Counters<K> {
    fn default() -> Self {
        Counters {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn shard(&self, key: &(K, LimitChannel)) -> &Mutex<HashMap<(K, LimitChannel), DayTotal>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Checks `amount` against the limits and reserves it when it fits.
    ///
    /// # Errors
    /// The first limit it would break; nothing is reserved then.
    pub fn reserve(
        &self,
        card: &K,
        channel: LimitChannel,
        day: Date,
        amount: u64,
        limits: &ChannelLimits,
    ) -> Result<Reservation<K>, LimitBreach> {
        if amount > limits.per_transaction {
            return Err(LimitBreach::PerTransaction);
        }
        let key = (card.clone(), channel);
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        let total = shard.entry(key.clone()).or_default();
        if total.day != Some(day) {
            *total = DayTotal {
                day: Some(day),
                ..DayTotal::default()
            };
        }
        if total.count >= limits.daily_count {
            return Err(LimitBreach::DailyCount);
        }
        if total.amount.saturating_add(amount) > limits.daily_amount {
            return Err(LimitBreach::DailyAmount);
        }
        total.amount += amount;
        total.count += 1;
        Ok(Reservation { key, day, amount })
    }

    /// Gives a reservation back (the request was declined).
    pub fn release(&self, reservation: Reservation<K>) {
        self.apply_to(
            &reservation.key,
            reservation.day,
            -(reservation.amount as i64),
            -1,
        );
    }

    /// Keeps a reservation (the request was approved).
    pub fn keep(&self, reservation: Reservation<K>) {
        drop(reservation);
    }

    /// Adds an effect recorded elsewhere: an advice, a reversal (negative),
    /// or a journal row when rebuilding at start.
    pub fn apply(&self, card: &K, channel: LimitChannel, day: Date, amount: i64, count: i32) {
        self.apply_to(&(card.clone(), channel), day, amount, count);
    }

    fn apply_to(&self, key: &(K, LimitChannel), day: Date, amount: i64, count: i32) {
        let mut shard = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let total = shard.entry(key.clone()).or_default();
        match total.day {
            Some(d) if d > day => return, // an older day's effect: that day is over
            Some(d) if d == day => {}
            _ => {
                *total = DayTotal {
                    day: Some(day),
                    ..DayTotal::default()
                }
            }
        }
        total.amount = total.amount.saturating_add_signed(amount);
        total.count = total.count.saturating_add_signed(count);
    }

    /// Today's totals of a card on a channel (amount, count).
    pub fn totals(&self, card: &K, channel: LimitChannel, day: Date) -> (u64, u32) {
        let key = (card.clone(), channel);
        let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        match shard.get(&key) {
            Some(t) if t.day == Some(day) => (t.amount, t.count),
            _ => (0, 0),
        }
    }
}

/// `[day]`: when the business day (for daily limits) turns over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DayConfig {
    /// Local time the day starts, `HH:MM`.
    pub cutoff: String,
    /// IANA time zone of the cut-off, e.g. `Europe/Stockholm`.
    pub time_zone: String,
}

impl Default for DayConfig {
    fn default() -> Self {
        DayConfig {
            cutoff: "00:00".into(),
            time_zone: "UTC".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChannelLimits = ChannelLimits {
        per_transaction: 1000,
        daily_amount: 2500,
        daily_count: 3,
    };

    fn day(d: i8) -> Date {
        jiff::civil::date(2026, 11, d)
    }

    #[test]
    fn per_transaction_daily_amount_and_count() {
        let c = Counters::default();
        let card = 7u32;
        let atm = LimitChannel::Atm;
        assert_eq!(
            c.reserve(&card, atm, day(2), 1001, &LIMITS).unwrap_err(),
            LimitBreach::PerTransaction
        );
        c.keep(c.reserve(&card, atm, day(2), 1000, &LIMITS).unwrap());
        c.keep(c.reserve(&card, atm, day(2), 1000, &LIMITS).unwrap());
        assert_eq!(
            c.reserve(&card, atm, day(2), 600, &LIMITS).unwrap_err(),
            LimitBreach::DailyAmount
        );
        c.keep(c.reserve(&card, atm, day(2), 500, &LIMITS).unwrap());
        assert_eq!(
            c.reserve(&card, atm, day(2), 1, &LIMITS).unwrap_err(),
            LimitBreach::DailyCount
        );
        // POS is counted apart, and a new day starts from zero.
        assert!(
            c.reserve(&card, LimitChannel::Pos, day(2), 1000, &LIMITS)
                .is_ok()
        );
        assert!(c.reserve(&card, atm, day(3), 1000, &LIMITS).is_ok());
    }

    #[test]
    fn release_and_apply_undo() {
        let c = Counters::default();
        let r = c
            .reserve(&1u8, LimitChannel::Pos, day(5), 900, &LIMITS)
            .unwrap();
        assert_eq!(c.totals(&1, LimitChannel::Pos, day(5)), (900, 1));
        c.release(r);
        assert_eq!(c.totals(&1, LimitChannel::Pos, day(5)), (0, 0));
        c.apply(&1, LimitChannel::Pos, day(5), 700, 1);
        c.apply(&1, LimitChannel::Pos, day(5), -200, 0);
        assert_eq!(c.totals(&1, LimitChannel::Pos, day(5)), (500, 1));
        c.apply(&1, LimitChannel::Pos, day(4), 999, 1);
        assert_eq!(
            c.totals(&1, LimitChannel::Pos, day(5)),
            (500, 1),
            "yesterday ignored"
        );
    }

    #[test]
    fn business_day_turns_at_the_cutoff() {
        let d = BusinessDay::from_config(&DayConfig {
            cutoff: "18:00".into(),
            time_zone: "Europe/Stockholm".into(),
        })
        .unwrap();
        // 16:30 UTC = 17:30 in Stockholm (CET): still the day before's business day.
        let before: Timestamp = "2026-11-22T16:30:00Z".parse().unwrap();
        let after: Timestamp = "2026-11-22T17:30:00Z".parse().unwrap();
        assert_eq!(d.of(before), jiff::civil::date(2026, 11, 21));
        assert_eq!(d.of(after), jiff::civil::date(2026, 11, 22));
        let day = |cutoff: &str, time_zone: &str| {
            BusinessDay::from_config(&DayConfig {
                cutoff: cutoff.into(),
                time_zone: time_zone.into(),
            })
        };
        assert!(day("00:00", "UTC").is_ok());
        for bad in ["25:00", "18:00:00", "18", "noon", ""] {
            assert!(
                matches!(day(bad, "UTC"), Err(DayError::Cutoff(c)) if c == bad),
                "{bad}"
            );
        }
        let err = day("18:00", "Mars/Olympus").unwrap_err();
        assert!(matches!(&err, DayError::TimeZone { name, .. } if name == "Mars/Olympus"));
        assert!(
            err.to_string()
                .starts_with("day.time_zone \"Mars/Olympus\": "),
            "{err}"
        );
    }
}
