//! Recently seen switch keys, in memory: the fast path of duplicate
//! detection. A request whose keys are not in the filter is new and needs no
//! journal read; only a hit (a real retransmission, or a rare fingerprint
//! collision) reads the journal for the original decision.
//!
//! The filter holds two generations of 64-bit fingerprints. When the current
//! one is full or older than [`MAX_AGE`], it becomes the previous one and the
//! old previous one is dropped. So retransmissions are recognised for at
//! least [`GENERATION`] requests or [`MAX_AGE`], whichever ends first — the
//! switch retransmits within seconds. At start it is refilled from the
//! journal's last [`MAX_AGE`].

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::journal::keys::SwitchKeys;

/// Fingerprints per generation (two generations: about 40 MB at most).
pub const GENERATION: usize = 2_000_000;

/// Age at which a generation is retired.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

struct Generations {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    started: Instant,
}

/// The seen-keys filter.
pub struct SeenKeys {
    inner: Mutex<Generations>,
}

impl Default for SeenKeys {
    fn default() -> Self {
        SeenKeys {
            inner: Mutex::new(Generations {
                current: HashSet::new(),
                previous: HashSet::new(),
                started: Instant::now(),
            }),
        }
    }
}

impl SeenKeys {
    /// Records a request's keys (after its journal row is durable).
    pub fn insert(&self, keys: &SwitchKeys) {
        let print = fingerprint(keys);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.current.len() >= GENERATION || g.started.elapsed() >= MAX_AGE {
            g.previous = std::mem::take(&mut g.current);
            g.started = Instant::now();
        }
        g.current.insert(print);
    }

    /// Whether a request with these keys may have been seen.
    pub fn may_contain(&self, keys: &SwitchKeys) -> bool {
        let print = fingerprint(keys);
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.current.contains(&print) || g.previous.contains(&print)
    }
}

/// A 64-bit fingerprint of the duplicate key (`SwitchKeys`' own hash).
fn fingerprint(keys: &SwitchKeys) -> u64 {
    let mut h = DefaultHasher::new();
    keys.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(stan: &str) -> SwitchKeys {
        SwitchKeys {
            mti: "0100".parse().unwrap(),
            transmission_time: "1122030201".into(),
            stan: stan.into(),
            acquirer: "4761739".into(),
            terminal: "T1".into(),
            rrn: "x".into(),
        }
    }

    #[test]
    fn remembers_what_it_saw() {
        let seen = SeenKeys::default();
        assert!(!seen.may_contain(&keys("000001")));
        seen.insert(&keys("000001"));
        assert!(seen.may_contain(&keys("000001")));
        assert!(!seen.may_contain(&keys("000002")));
        // DE 37 is not part of the comparison.
        let mut other_rrn = keys("000001");
        other_rrn.rrn = "y".into();
        assert!(seen.may_contain(&other_rrn));
        // The same key as the in-flight map's: equal, and equal hashes.
        assert_eq!(other_rrn, keys("000001"));
        assert_eq!(fingerprint(&other_rrn), fingerprint(&keys("000001")));
        let mut other_mti = keys("000001");
        other_mti.mti = "0200".parse().unwrap();
        assert_ne!(other_mti, keys("000001"));
        assert!(!seen.may_contain(&other_mti));
    }
}
