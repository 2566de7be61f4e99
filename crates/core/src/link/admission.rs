//! Who gets a connection slot on a listening switch endpoint, so that
//! strangers cannot lock the real switch out.
//!
//! Decided at `accept`, never by blocking it: an address off the allow-list
//! (when one is configured) or over its per-address limit is refused at once.
//! A connection that is neither *established* (signed on, or — with
//! `before_sign_on = "accept"` — has sent a complete frame) nor from an
//! allow-listed address is a *stranger*; strangers hold at most
//! `max_connections − reserved_connections` slots. When a newcomer finds no
//! room, the oldest stranger is closed to make it (a newcomer from an
//! allow-listed address may also evict the oldest not-yet-established
//! allow-listed connection); an established connection is never evicted.
//! Time limits (sign-on, idle, frame completion) are enforced by the
//! connection itself; this module only counts them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// An IP address or a CIDR block (`10.1.2.3`, `10.1.0.0/16`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

/// Why an `allow` entry is not an address range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRangeError {
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    #[error("{entry:?}: prefix length must be 0 to {max}")]
    BadPrefix { entry: String, max: u8 },
    #[error("{entry:?} has bits set past the prefix; the block is {network}/{prefix}")]
    HostBits {
        entry: String,
        network: IpAddr,
        prefix: u8,
    },
}

impl AddressRange {
    /// Whether `ip` is in this range; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

/// `ip` with every bit past `prefix` cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(ip) & mask).into())
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(ip) & mask).into())
        }
    }
}

impl FromStr for AddressRange {
    type Err = AddressRangeError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let network = addr
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| AddressRangeError::BadAddress(entry.to_owned()))?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| AddressRangeError::BadPrefix {
                    entry: entry.to_owned(),
                    max,
                })?,
        };
        let range = AddressRange { network, prefix };
        let masked = masked(network, prefix);
        if masked != network {
            return Err(AddressRangeError::HostBits {
                entry: entry.to_owned(),
                network: masked,
                prefix,
            });
        }
        Ok(range)
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Why a connection was closed right after `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address is not on the allow-list.
    NotAllowed,
    /// Its address already holds `max_connections_per_address` connections.
    PerAddress,
    /// Every slot it may use is held by connections that cannot be evicted.
    Full,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAllowed => "address not on the allow-list",
            Refusal::PerAddress => "too many connections from this address",
            Refusal::Full => "every slot is held by signed-on or allow-listed connections",
        })
    }
}

/// What a switch endpoint refused, evicted and timed out since the link
/// started. Shared by the listener and its connections (atomics, no lock).
#[derive(Debug, Default)]
pub struct Counters {
    accepted: AtomicU64,
    refused_not_allowed: AtomicU64,
    refused_per_address: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    sign_on_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    frame_timeouts: AtomicU64,
}

/// Why a connection closed itself on a time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    SignOn,
    Idle,
    Frame,
}

impl Counters {
    pub(crate) fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::NotAllowed => &self.refused_not_allowed,
            Refusal::PerAddress => &self.refused_per_address,
            Refusal::Full => &self.refused_full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self, which: Timeout) {
        let counter = match which {
            Timeout::SignOn => &self.sign_on_timeouts,
            Timeout::Idle => &self.idle_timeouts,
            Timeout::Frame => &self.frame_timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a switch endpoint's connections and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections holding a slot now (listen only).
    pub open: usize,
    /// Of those, established (signed on, or sent a frame where sign-on is not required).
    pub established: usize,
    /// Connections admitted since start (listen only).
    pub accepted: u64,
    /// Refused at accept: address not on the allow-list.
    pub refused_not_allowed: u64,
    /// Refused at accept: the address's connection limit was reached.
    pub refused_per_address: u64,
    /// Refused at accept: no slot could be freed.
    pub refused_full: u64,
    /// Strangers closed to make room for a newcomer.
    pub evicted: u64,
    /// Closed for not signing on (or sending a first frame) in time.
    pub sign_on_timeouts: u64,
    /// Closed after `idle_timeout_ms` without a complete frame.
    pub idle_timeouts: u64,
    /// Closed because a frame did not complete within `frame_timeout_ms` of its first byte.
    pub frame_timeouts: u64,
}

/// Limits of one listening endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub reserved: usize,
    pub per_address: usize,
    /// Empty: every address may connect.
    pub allow: Vec<AddressRange>,
}

/// One admitted connection in the table.
struct Entry {
    ip: IpAddr,
    /// On the allow-list (never true without one).
    allowed: bool,
    established: Arc<AtomicBool>,
    close: CancellationToken,
}

impl Entry {
    fn is_stranger(&self) -> bool {
        !self.allowed && !self.established.load(Ordering::Relaxed)
    }
}

/// The slot table of one listening endpoint. Only the listener admits; a
/// connection's [`Slot`] leaves the table when dropped.
pub(crate) struct Slots {
    limits: Limits,
    /// Admitted connections by admission order (oldest first). Sizes stay
    /// within `max_connections`, so the scans below are short.
    table: Mutex<Table>,
    pub counters: Arc<Counters>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
}

/// A held connection slot; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Set by the connection once it is signed on (or sent a frame where
    /// sign-on is not required); read by the admission of later newcomers.
    pub established: Arc<AtomicBool>,
    /// Cancelled when this connection is evicted.
    pub close: CancellationToken,
}

/// An admitted connection, and whether a stranger was evicted for it.
pub(crate) struct Admitted {
    pub slot: Slot,
    pub evicted: bool,
}

impl Slots {
    pub fn new(limits: Limits, counters: Arc<Counters>) -> Arc<Slots> {
        Arc::new(Slots {
            limits,
            table: Mutex::default(),
            counters,
        })
    }

    /// Decides on a newly accepted connection from `ip` (see the module doc).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let result = self.decide(ip);
        match &result {
            Ok(a) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if a.evicted {
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(why) => self.counters.refused(*why),
        }
        result
    }

    fn decide(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let ip = ip.to_canonical();
        let limits = &self.limits;
        let allowed = limits.allow.iter().any(|r| r.contains(ip));
        if !limits.allow.is_empty() && !allowed {
            return Err(Refusal::NotAllowed);
        }
        let mut table = self.lock();
        let from_ip = table.entries.values().filter(|e| e.ip == ip).count();
        if from_ip >= limits.per_address {
            return Err(Refusal::PerAddress);
        }
        let strangers = table.entries.values().filter(|e| e.is_stranger()).count();
        let full = table.entries.len() >= limits.max_connections;
        let stranger_share_full = !allowed && strangers >= limits.max_connections - limits.reserved;
        let mut evicted = false;
        if full || stranger_share_full {
            let oldest_stranger = table
                .entries
                .iter()
                .find(|(_, e)| e.is_stranger())
                .map(|(&id, _)| id);
            // An allow-listed newcomer may also displace a not-yet-established
            // allow-listed connection; nobody displaces an established one.
            let victim = oldest_stranger.or_else(|| {
                allowed
                    .then(|| {
                        table
                            .entries
                            .iter()
                            .find(|(_, e)| !e.established.load(Ordering::Relaxed))
                            .map(|(&id, _)| id)
                    })
                    .flatten()
            });
            let entry = victim
                .and_then(|id| table.entries.remove(&id))
                .ok_or(Refusal::Full)?;
            entry.close.cancel();
            evicted = true;
        }
        let id = table.next_id;
        table.next_id += 1;
        let established = Arc::new(AtomicBool::new(false));
        let close = CancellationToken::new();
        table.entries.insert(
            id,
            Entry {
                ip,
                allowed,
                established: established.clone(),
                close: close.clone(),
            },
        );
        Ok(Admitted {
            slot: Slot {
                slots: self.clone(),
                id,
                established,
                close,
            },
            evicted,
        })
    }

    /// The table; a panic elsewhere while it was held leaves it consistent
    /// (every change is one insert or remove), so it is used as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Open and established connections now, and the counters.
    pub fn stats(&self) -> ConnectionStats {
        let (open, established) = {
            let t = self.lock();
            let established = t
                .entries
                .values()
                .filter(|e| e.established.load(Ordering::Relaxed))
                .count();
            (t.entries.len(), established)
        };
        ConnectionStats {
            open,
            established,
            ..self.counters.snapshot()
        }
    }
}

impl Counters {
    /// The counters alone (no slot table: a dialing endpoint).
    pub fn snapshot(&self) -> ConnectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            open: 0,
            established: 0,
            accepted: get(&self.accepted),
            refused_not_allowed: get(&self.refused_not_allowed),
            refused_per_address: get(&self.refused_per_address),
            refused_full: get(&self.refused_full),
            evicted: get(&self.evicted),
            sign_on_timeouts: get(&self.sign_on_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            frame_timeouts: get(&self.frame_timeouts),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(s: &str) -> AddressRange {
        s.parse().unwrap()
    }

    #[test]
    fn address_ranges_parse_and_match() {
        assert!(range("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!range("10.1.2.3").contains(ip("10.1.2.4")));
        let block = range("10.1.0.0/16");
        assert!(block.contains(ip("10.1.255.7")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6");
        assert!(range("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!range("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(range("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!range("2001:db8::/32").contains(ip("2001:db9::1")));
        assert_eq!(range("::ffff:127.0.0.1").to_string(), "127.0.0.1/32");

        assert_eq!(
            "10.1.2.3/8".parse::<AddressRange>(),
            Err(AddressRangeError::HostBits {
                entry: "10.1.2.3/8".into(),
                network: ip("10.0.0.0"),
                prefix: 8
            })
        );
        assert!(matches!(
            "10.0.0.0/33".parse::<AddressRange>(),
            Err(AddressRangeError::BadPrefix { max: 32, .. })
        ));
        assert!(matches!(
            "switch.example".parse::<AddressRange>(),
            Err(AddressRangeError::BadAddress(_))
        ));
    }

    fn slots(max: usize, reserved: usize, per_address: usize, allow: &[&str]) -> Arc<Slots> {
        Slots::new(
            Limits {
                max_connections: max,
                reserved,
                per_address,
                allow: allow.iter().map(|a| range(a)).collect(),
            },
            Arc::default(),
        )
    }

    #[test]
    fn per_address_limit_refuses_the_next_and_frees_on_drop() {
        let s = slots(10, 0, 2, &[]);
        let a = s.admit(ip("192.0.2.1")).unwrap();
        let _b = s.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(s.admit(ip("192.0.2.1")).err(), Some(Refusal::PerAddress));
        assert!(
            s.admit(ip("192.0.2.2")).is_ok(),
            "other addresses unaffected"
        );
        drop(a);
        assert!(
            s.admit(ip("192.0.2.1")).is_ok(),
            "a dropped slot is free again"
        );
        assert_eq!(s.stats().refused_per_address, 1);
    }

    #[test]
    fn allow_list_refuses_others() {
        let s = slots(10, 2, 10, &["192.0.2.0/24"]);
        assert!(s.admit(ip("192.0.2.77")).is_ok());
        assert_eq!(s.admit(ip("198.51.100.1")).err(), Some(Refusal::NotAllowed));
        assert_eq!(s.stats().refused_not_allowed, 1);
    }

    #[test]
    fn strangers_keep_out_of_the_reserved_slots_and_evict_the_oldest() {
        let s = slots(4, 1, 10, &[]);
        let first = s.admit(ip("192.0.2.1")).unwrap().slot;
        let others: Vec<_> = (2..=3)
            .map(|i| s.admit(ip(&format!("192.0.2.{i}"))).unwrap())
            .collect();
        assert!(others.iter().all(|a| !a.evicted));
        // The strangers' share (3) is full: the next one evicts the oldest.
        let fourth = s.admit(ip("192.0.2.4")).unwrap();
        assert!(fourth.evicted);
        assert!(first.close.is_cancelled(), "the oldest stranger was closed");
        assert_eq!(s.stats().open, 3, "the reserved slot stays free");
        // Once signed on, a connection is no stranger and is never evicted.
        fourth.slot.established.store(true, Ordering::Relaxed);
        let fifth = s.admit(ip("192.0.2.5")).unwrap();
        assert!(
            !fifth.evicted,
            "established: the strangers' share has room again"
        );
        let sixth = s.admit(ip("192.0.2.6")).unwrap();
        assert!(sixth.evicted);
        assert!(!fourth.slot.close.is_cancelled());
        assert_eq!(
            s.stats(),
            ConnectionStats {
                open: 4,
                established: 1,
                accepted: 6,
                evicted: 2,
                ..ConnectionStats::default()
            }
        );
    }

    #[test]
    fn established_connections_are_never_evicted() {
        let s = slots(2, 1, 10, &[]);
        let held: Vec<_> = (1..=2)
            .map(|i| {
                let a = s.admit(ip(&format!("192.0.2.{i}"))).unwrap();
                a.slot.established.store(true, Ordering::Relaxed);
                a
            })
            .collect();
        assert_eq!(s.admit(ip("192.0.2.9")).err(), Some(Refusal::Full));
        assert!(held.iter().all(|a| !a.slot.close.is_cancelled()));
        assert_eq!(s.stats().refused_full, 1);
    }

    #[test]
    fn an_allow_listed_newcomer_may_use_every_slot() {
        let s = slots(2, 1, 10, &["192.0.2.0/24"]);
        let a = s.admit(ip("192.0.2.1")).unwrap();
        let b = s.admit(ip("192.0.2.2")).unwrap();
        assert!(!b.evicted, "allow-listed: the reserved slot is theirs");
        let c = s.admit(ip("192.0.2.3")).unwrap();
        assert!(c.evicted, "full: the oldest not signed on makes room");
        assert!(a.slot.close.is_cancelled());
    }
}
