//! Configuration of the card layer: PAN protection keys and limit profiles.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// `[security]`: where the PAN keys come from. Each key is 32 bytes as 64
/// hex digits, read from the named environment variable, or — for demos and
/// tests only — given inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Environment variable holding the keyed-hash (HMAC-SHA256) key for PAN lookup.
    pub pan_hash_key_env: Option<String>,
    /// Inline hash key (demo/test only).
    pub pan_hash_key: Option<String>,
    /// Environment variable holding the AES-256-GCM key for stored PANs.
    pub pan_encryption_key_env: Option<String>,
    /// Inline encryption key (demo/test only).
    pub pan_encryption_key: Option<String>,
}

/// Limits of one channel, in minor units of the card's account currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelLimits {
    /// Largest single transaction.
    pub per_transaction: u64,
    /// Sum of approved amounts per business day.
    pub daily_amount: u64,
    /// Approved transactions per business day.
    pub daily_count: u32,
}

/// `[limits.<name>]`: a limits profile, ATM and POS separately. "Other"
/// channels use the POS limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitProfile {
    pub atm: ChannelLimits,
    pub pos: ChannelLimits,
    /// `[limits.<name>.offline]`: what stand-in may approve, never above
    /// the online limits (the same as them when absent).
    pub offline: Option<OfflineLimits>,
}

/// Stand-in's own limits of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineLimits {
    pub atm: ChannelLimits,
    pub pos: ChannelLimits,
}

impl LimitProfile {
    /// Offline limits above the online ones, one entry per problem.
    pub fn offline_problems(&self) -> Vec<String> {
        let Some(offline) = &self.offline else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (name, off, on) in [
            ("atm", &offline.atm, &self.atm),
            ("pos", &offline.pos, &self.pos),
        ] {
            let pairs = [
                ("per_transaction", off.per_transaction, on.per_transaction),
                ("daily_amount", off.daily_amount, on.daily_amount),
                (
                    "daily_count",
                    u64::from(off.daily_count),
                    u64::from(on.daily_count),
                ),
            ];
            for (field, off, on) in pairs {
                if off > on {
                    problems.push(format!(
                        "offline.{name}.{field} {off} is above the online {on}"
                    ));
                }
            }
        }
        problems
    }
}

/// All limit profiles by name.
pub type LimitProfiles = BTreeMap<String, LimitProfile>;

/// The names a card may refer to: configured institution ids and limits
/// profiles. Card files and profile changes are checked against it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    institutions: BTreeSet<String>,
    profiles: BTreeSet<String>,
}

impl Catalog {
    /// A catalog of these institution ids and profile names.
    pub fn new<I, P>(institutions: I, profiles: P) -> Catalog
    where
        I: IntoIterator,
        I::Item: Into<String>,
        P: IntoIterator,
        P::Item: Into<String>,
    {
        Catalog {
            institutions: institutions.into_iter().map(Into::into).collect(),
            profiles: profiles.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether an institution with this id is configured.
    pub fn has_institution(&self, id: &str) -> bool {
        self.institutions.contains(id)
    }

    /// The configured limits profiles' names, in order.
    pub fn profiles(&self) -> impl Iterator<Item = &str> {
        self.profiles.iter().map(String::as_str)
    }

    /// Whether a limits profile with this name is configured.
    pub fn has_profile(&self, name: &str) -> bool {
        self.profiles.contains(name)
    }
}
