//! cardhub's transaction ids: 64-bit, unique, time-ordered — milliseconds
//! since the Unix epoch in the high bits, a counter in the low 20 bits. The
//! id is the journal's primary key, so "everything since time T" is a range
//! of ids and no separate unique index is needed.
//!
//! Ids stay unique within one hub process and across restarts (the
//! generator starts above the journal's highest id, even if the clock went
//! back). Several hub instances writing one journal would need instance bits
//! — see `docs/hub.md`.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// Bits for the per-millisecond counter (about a million ids per millisecond).
const COUNTER_BITS: u32 = 20;

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

/// Hands out increasing ids.
#[derive(Debug)]
pub struct TxnIds {
    last: AtomicI64,
}

impl TxnIds {
    /// A generator whose ids are all above `highest_used`.
    pub fn after(highest_used: i64) -> TxnIds {
        TxnIds {
            last: AtomicI64::new(highest_used),
        }
    }

    /// The next id: the current millisecond's first id, or one past the last.
    pub fn next(&self) -> TxnId {
        let now = TxnId::at(Timestamp::now()).0;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return TxnId(id),
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_unique_and_above_the_past() {
        let ids = TxnIds::after(0);
        let a = ids.next();
        let b = ids.next();
        assert!(b > a);
        assert!(a >= TxnId::at(Timestamp::now()) || a.0 > 0);
        // A journal from the future (clock went back): still above it.
        let future = TxnId::at(Timestamp::now()).0 + (1 << 40);
        let ids = TxnIds::after(future);
        assert!(ids.next().0 > future);
        assert_eq!(TxnId(255).to_string(), "00000000000000FF");
    }

    #[test]
    fn unique_across_threads() {
        let ids = std::sync::Arc::new(TxnIds::after(0));
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
}
