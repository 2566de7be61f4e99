//! cardhub's transaction ids: 64-bit, unique, time-ordered — milliseconds
//! since the Unix epoch in the high bits, then the instance number (4 bits),
//! then a counter (16 bits). The id is the journal's primary key, so
//! "everything since time T" is a range of ids and no separate unique index
//! is needed.
//!
//! Ids stay unique across the instances of a fleet (each hands out only ids
//! carrying its own number, and no two live instances share a number: see
//! `fleet::members`), within one process and across restarts (the generator
//! starts above the journal's highest id, even if the clock went back). A
//! lone instance is number 0, so its ids read as before: `ms << 20 | counter`.
//! See `docs/hub.md`.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// Bits below the milliseconds: the instance number and the counter.
const COUNTER_BITS: u32 = 20;

/// Bits for the per-millisecond counter of one instance (65,536 ids per
/// millisecond; past that the generator borrows the next millisecond).
const SEQUENCE_BITS: u32 = 16;

/// Bits for the instance number, between the milliseconds and the counter.
const INSTANCE_BITS: u32 = COUNTER_BITS - SEQUENCE_BITS;

/// The highest instance number an id can carry.
pub const MAX_INSTANCE: u8 = (1 << INSTANCE_BITS) - 1;

const SEQUENCE_MASK: i64 = (1 << SEQUENCE_BITS) - 1;

/// A transaction id (in JSON its display form: sixteen uppercase hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[0-9A-F]{16}$")]
pub struct TxnId(pub i64);

impl TxnId {
    /// When the id was handed out, in microseconds since the Unix epoch.
    pub fn micros(self) -> i64 {
        (self.0 >> COUNTER_BITS) * 1_000
    }

    /// The first id at or after a moment.
    pub fn at(time: Timestamp) -> TxnId {
        TxnId(time.as_millisecond() << COUNTER_BITS)
    }

    /// The number of the instance that handed the id out.
    pub fn instance(self) -> u8 {
        ((self.0 >> SEQUENCE_BITS) & i64::from(MAX_INSTANCE)) as u8
    }

    /// The first id whose [`TxnId::micros`] is after `us` (ids count
    /// milliseconds: the next millisecond's first).
    pub fn after_micros(us: i64) -> TxnId {
        TxnId((us.div_euclid(1_000) + 1) << COUNTER_BITS)
    }
}

/// Sixteen uppercase hex digits: how the id appears to account systems and operators.
impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// Parses the sixteen hex digits of [`TxnId`]'s display form.
impl std::str::FromStr for TxnId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<TxnId, Self::Err> {
        u64::from_str_radix(s, 16).map(|v| TxnId(v as i64))
    }
}

/// Hands out increasing ids carrying one instance number.
///
/// Internally it counts in "slots", `ms << 16 | counter`: one instance's ids
/// in order with the instance bits left out, so a counter that runs past
/// 16 bits moves on to the next millisecond instead of into another
/// instance's ids.
#[derive(Debug)]
pub struct TxnIds {
    instance: i64,
    last_slot: AtomicI64,
}

impl TxnIds {
    /// A generator for `instance` whose ids are all in milliseconds after
    /// `highest_used`'s: the journal's highest id of any instance, so above
    /// every id this instance number handed out before too (whatever their
    /// counters within that millisecond).
    ///
    /// # Panics
    /// When `instance` is above [`MAX_INSTANCE`] (the config refuses it).
    pub fn new(instance: u8, highest_used: i64) -> TxnIds {
        assert!(
            instance <= MAX_INSTANCE,
            "instance {instance} has no id bits"
        );
        TxnIds {
            instance: i64::from(instance),
            last_slot: AtomicI64::new(
                (highest_used >> COUNTER_BITS) << SEQUENCE_BITS | SEQUENCE_MASK,
            ),
        }
    }

    /// The instance number every id carries.
    pub fn instance(&self) -> u8 {
        self.instance as u8
    }

    /// The next id: the current millisecond's first, or one past the last.
    pub fn next(&self) -> TxnId {
        let now = Timestamp::now().as_millisecond() << SEQUENCE_BITS;
        let mut last = self.last_slot.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_slot.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let ms = next >> SEQUENCE_BITS;
                    return TxnId(
                        ms << COUNTER_BITS
                            | self.instance << SEQUENCE_BITS
                            | (next & SEQUENCE_MASK),
                    );
                }
                Err(seen) => last = seen,
            }
        }
    }
}

/// SQL true for ids in `column` handed out by `instance` (portable: the
/// shift and mask are SQLite's and PostgreSQL's both).
pub fn of_instance_sql(column: &str, instance: u8) -> String {
    format!("(({column} >> {SEQUENCE_BITS}) & {MAX_INSTANCE}) = {instance}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_unique_and_above_the_past() {
        let ids = TxnIds::new(0, 0);
        let a = ids.next();
        let b = ids.next();
        assert!(b > a);
        assert!(a >= TxnId::at(Timestamp::now()) || a.0 > 0);
        // A journal from the future (clock went back): still above it.
        let future = TxnId::at(Timestamp::now()).0 + (1 << 40);
        let ids = TxnIds::new(0, future);
        assert!(ids.next().0 > future);
        assert_eq!(TxnId(255).to_string(), "00000000000000FF");
    }

    #[test]
    fn unique_across_threads() {
        let ids = std::sync::Arc::new(TxnIds::new(0, 0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || (0..10_000).map(|_| ids.next().0).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<i64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    /// Two instances on one journal: every id unique, each carries its
    /// instance, and a lone instance 0 hands out `ms << 20 | counter`.
    #[test]
    fn instances_never_collide() {
        let ids = std::sync::Arc::new([TxnIds::new(0, 0), TxnIds::new(1, 0)]);
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..100_000).map(|_| ids[t % 2].next()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for (t, h) in handles.into_iter().enumerate() {
            let got = h.join().unwrap();
            assert!(got.iter().all(|id| usize::from(id.instance()) == t % 2));
            assert!(got.windows(2).all(|w| w[0] < w[1]));
            all.extend(got.into_iter().map(|id| id.0));
        }
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        let lone = TxnIds::new(0, 0).next();
        assert_eq!(lone.0 >> COUNTER_BITS, lone.micros() / 1_000);
        assert_eq!(lone.0 & ((1 << COUNTER_BITS) - 1) & !SEQUENCE_MASK, 0);
    }

    /// A counter past 16 bits borrows the next millisecond, never another
    /// instance's bits; a restart above another instance's ids stays above.
    #[test]
    fn the_counter_overflows_into_time_not_into_other_instances() {
        let ms = TxnId::at(Timestamp::now()).0 >> COUNTER_BITS;
        let full = (ms + 1_000) << COUNTER_BITS | SEQUENCE_MASK;
        let ids = TxnIds::new(3, full);
        let next = ids.next();
        assert_eq!(next.instance(), 3);
        assert_eq!(next.0 >> COUNTER_BITS, ms + 1_001);
        assert_eq!(next.0 & SEQUENCE_MASK, 0);
        // Instance 3 handed out counter 100 in the millisecond where
        // instance 7's id is the journal's highest: a restart of 3 starts
        // after that millisecond, not at instance 7's counter.
        let other = (ms + 2_000) << COUNTER_BITS | 7 << SEQUENCE_BITS | 5;
        let own = (ms + 2_000) << COUNTER_BITS | 3 << SEQUENCE_BITS | 100;
        let after = TxnIds::new(3, other).next();
        assert!(after.0 > other && after.0 > own);
        assert_eq!(after.instance(), 3);
    }
}
