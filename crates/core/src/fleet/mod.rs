//! Several hub instances on one store (a fleet): who each instance is, and
//! what must run on exactly one of them.
//!
//! - Every instance has a number (`[fleet] instance`, 0-15) carried in the
//!   transaction ids it hands out (`journal::txn_id`), so ids stay unique
//!   across the fleet. [`members`] registers the number with a heartbeat and
//!   refuses a second live process with the same one.
//! - A [`lease`] makes a job (an institution's SAF replay, its health probe)
//!   run on one instance at a time, taken over within seconds when its
//!   holder dies; a fence number that grows with every change of holder
//!   lets the job's writes refuse a holder that lost the lease.
//!
//! What this module does not do: share state between instances. Each module
//! polls its own changes (cards, institution states, balance files; see
//! `app::spawn_background`), and money stays atomic in SQL.

pub mod lease;
pub mod members;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::journal::txn_id::MAX_INSTANCE;
use crate::store::StoreError;

/// The default [`FleetConfig::ttl_ms`].
pub const DEFAULT_TTL_MS: u64 = 5_000;

/// `[fleet]`: this instance's number and how quickly a dead instance's
/// number and leases are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// This instance's number, 0 to 15, unique among the live instances on
    /// one store (a lone instance keeps the default 0).
    pub instance: u8,
    /// How long a membership or lease lives without a renewal (renewed every
    /// third of it). A dead holder's leases move to another instance within
    /// about 4/3 of it.
    pub ttl_ms: u64,
}

/// One run of one instance: its number and a name no other run shares
/// (`<instance>/<host>/<pid>/<random>`), written as the holder of its
/// membership and leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    instance: u8,
    host: String,
    name: String,
}

/// Why an instance cannot join its fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A live process already runs under this instance number (its
    /// heartbeat moved while this one waited a TTL). The operator's: give
    /// each instance its own `[fleet] instance`, or stop the other first.
    #[error(
        "instance number {instance} is in use by {holder} (host {host}, pid {pid}, heartbeat {age_ms} ms ago); give this instance another [fleet] instance or stop that one"
    )]
    InstanceInUse {
        instance: u8,
        holder: String,
        host: String,
        pid: i64,
        age_ms: i64,
    },
    /// The store did not answer or refused the registration.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            instance: 0,
            ttl_ms: DEFAULT_TTL_MS,
        }
    }
}

impl FleetConfig {
    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.instance > MAX_INSTANCE {
            problems.push(format!(
                "fleet.instance {} is above {MAX_INSTANCE}",
                self.instance
            ));
        }
        if !(300..=600_000).contains(&self.ttl_ms) {
            problems.push(format!(
                "fleet.ttl_ms {} is outside 300..=600000",
                self.ttl_ms
            ));
        }
        problems
    }

    /// [`FleetConfig::ttl_ms`] as a duration.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
}

impl Holder {
    /// A new run of `instance` on this host.
    pub fn new(instance: u8) -> Holder {
        let host = host_name();
        let name = format!(
            "{instance}/{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Holder {
            instance,
            host,
            name,
        }
    }

    /// The instance number.
    pub fn instance(&self) -> u8 {
        self.instance
    }

    /// The machine it runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The name stored as holder.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// This machine's name, for operators reading `fleet_members`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Microseconds in a duration, for the store's integer times.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        assert!(FleetConfig::default().problems().is_empty());
        let bad = FleetConfig {
            instance: 16,
            ttl_ms: 10,
        };
        let problems = bad.problems().join("; ");
        assert!(problems.contains("fleet.instance 16"), "{problems}");
        assert!(problems.contains("fleet.ttl_ms 10"), "{problems}");
        let read: FleetConfig = toml::from_str("instance = 2").unwrap();
        assert_eq!((read.instance, read.ttl_ms), (2, DEFAULT_TTL_MS));
        assert!(toml::from_str::<FleetConfig>("instanse = 2").is_err());
    }

    #[test]
    fn every_run_has_its_own_holder_name() {
        let (a, b) = (Holder::new(3), Holder::new(3));
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("3/"), "{a}");
        assert_eq!(a.instance(), 3);
    }
}
