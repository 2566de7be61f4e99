//! Configuration of the card layer: PAN protection keys and limit profiles.

use std::collections::BTreeMap;

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
}

/// All limit profiles by name.
pub type LimitProfiles = BTreeMap<String, LimitProfile>;
