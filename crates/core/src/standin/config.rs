//! Configuration of stand-in, the circuit breaker, store-and-forward replay
//! and hold expiry. Each institution has its own `stand_in`, `breaker` and
//! `saf` sections; `[holds]` is hub-wide. Amounts are minor units of the
//! account's currency.

use std::path::PathBuf;

use serde::Deserialize;

use crate::account::Channel;
use crate::iso8583::fields::ResponseCode;
use crate::standin::balance_file::BalanceFormat;

/// `[institution.stand_in]`: what cardhub may approve in the account system's place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandInConfig {
    /// Largest single amount stand-in approves; above it the unavailable code.
    pub floor_limit: u64,
    /// A balance older than this many hours is stale.
    pub max_balance_age_hours: u32,
    /// With a stale balance, stand-in still approves up to this amount
    /// (within the shadow balance); 0 declines every debit.
    pub stale_limit: u64,
    /// DE 39 when stand-in may not decide (unavailable, stale, over the floor).
    pub unavailable_code: String,
    /// Milliseconds kept before the switch's deadline for stand-in and the
    /// journal: the account-system call ends this much earlier.
    pub reserve_ms: u64,
}

impl Default for StandInConfig {
    fn default() -> Self {
        StandInConfig {
            floor_limit: 50_000,
            max_balance_age_hours: 36,
            stale_limit: 0,
            unavailable_code: "91".into(),
            reserve_ms: 150,
        }
    }
}

impl StandInConfig {
    /// The configured unavailable code (checked when the config is loaded).
    pub fn unavailable(&self) -> ResponseCode {
        ResponseCode::new(&self.unavailable_code).unwrap_or(ResponseCode::ISSUER_UNAVAILABLE)
    }

    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        match ResponseCode::new(&self.unavailable_code) {
            Ok(c) if !c.is_approval() => Vec::new(),
            _ => vec![format!(
                "stand_in.unavailable_code {:?} is not a decline code",
                self.unavailable_code
            )],
        }
    }
}

/// `[institution.breaker]`: when an online institution is taken for
/// unreachable, and how it is found again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures (timeouts, refused connections, faults, HTTP
    /// errors, malformed answers) that open the breaker ...
    pub failures: u32,
    /// ... when they all fall within this many seconds.
    pub window_secs: u64,
    /// How often an unreachable institution is probed.
    pub probe_interval_ms: u64,
    /// The account a probe asks the balance of (any answer proves the
    /// system is back, even "unknown account").
    pub probe_account: String,
    /// Currency code of the probe's zero amount.
    pub probe_currency: String,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            window_secs: 30,
            probe_interval_ms: 2_000,
            probe_account: "PROBE".into(),
            probe_currency: "EUR".into(),
        }
    }
}

/// `[institution.saf]`: how the store-and-forward queue is replayed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafConfig {
    /// Items delivered at once (always of different accounts).
    pub concurrency: usize,
    /// Attempts before an item becomes a dead letter (the first counts).
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt up to `backoff_max_ms`, jittered.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Time one delivery attempt may take.
    pub attempt_timeout_ms: u64,
}

impl Default for SafConfig {
    fn default() -> Self {
        SafConfig {
            concurrency: 4,
            max_attempts: 8,
            backoff_initial_ms: 500,
            backoff_max_ms: 60_000,
            attempt_timeout_ms: 5_000,
        }
    }
}

impl SafConfig {
    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.concurrency == 0 {
            problems.push("saf.concurrency must be at least 1".into());
        }
        if self.max_attempts == 0 {
            problems.push("saf.max_attempts must be at least 1".into());
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            problems.push("saf.backoff_initial_ms is above saf.backoff_max_ms".into());
        }
        problems
    }
}

/// `[holds]`: how long an authorization's hold counts against the shadow
/// balance before it expires, by channel and MCC group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoldsConfig {
    pub atm_hours: u32,
    pub pos_hours: u32,
    /// `[[holds.group]]`: merchant categories with their own expiry (hotels, car rental, fuel).
    #[serde(rename = "group")]
    pub groups: Vec<MccGroup>,
}

impl Default for HoldsConfig {
    fn default() -> Self {
        HoldsConfig {
            atm_hours: 24,
            pos_hours: 7 * 24,
            groups: Vec::new(),
        }
    }
}

/// Merchant category codes with their own hold expiry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MccGroup {
    pub name: String,
    /// Codes and inclusive ranges: `["7011", "3501-3999"]`.
    pub mcc: Vec<String>,
    pub hours: u32,
}

impl HoldsConfig {
    /// Hours a hold lives for a channel (`atm` or anything else) and MCC.
    pub fn hours(&self, atm: bool, mcc: Option<u16>) -> u32 {
        let group = mcc.and_then(|m| {
            self.groups.iter().find(|g| {
                g.mcc
                    .iter()
                    .any(|r| mcc_range(r).is_some_and(|(a, b)| (a..=b).contains(&m)))
            })
        });
        match (group, atm) {
            (Some(g), _) => g.hours,
            (None, true) => self.atm_hours,
            (None, false) => self.pos_hours,
        }
    }

    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|g| {
                g.mcc
                    .iter()
                    .filter(|r| mcc_range(r).is_none())
                    .map(move |r| {
                        format!("holds.group {:?}: {r:?} is not an MCC or MCC range", g.name)
                    })
            })
            .collect()
    }
}

/// `"7011"` → (7011, 7011); `"3501-3999"` → (3501, 3999).
fn mcc_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b && b <= 9999).then_some((a, b))
}

/// How an institution's account system is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstitutionMode {
    /// Online through its adapter; cardhub stands in only when it cannot answer.
    Online,
    /// Never online: every decision is cardhub's (from balance files).
    OfflineOnly,
    /// cardhub's own prepaid ledger is the account system (no adapter, no
    /// stand-in: see `docs/prepaid.md`).
    Prepaid,
}

/// `[[institution]]`: a bank whose accounts cardhub authorizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstitutionConfig {
    /// Identifier used in card files and logs.
    pub id: String,
    pub name: String,
    /// Adapter file name (in `adapters/`) of its account system.
    pub adapter: Option<String>,
    pub mode: InstitutionMode,
    #[serde(default)]
    pub stand_in: StandInConfig,
    #[serde(default)]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub saf: SafConfig,
    /// `[institution.balances]`: the format of its balance files.
    pub balances: Option<BalanceFormat>,
    /// Folder watched for its balance files (relative to the config file).
    pub drop_folder: Option<PathBuf>,
    /// The card-number prefix a load must carry per channel.
    #[serde(default)]
    pub load_prefixes: LoadPrefixes,
}

/// `load_prefixes = { atm = "…", pos = "…" }` of an institution: a load
/// (processing code 21) from the switch through that channel's load
/// terminals is taken only for a card number starting with the prefix
/// (the programme's card range), otherwise declined 57. A channel without
/// a prefix loads any card of the institution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPrefixes {
    pub atm: Option<String>,
    pub pos: Option<String>,
}

impl LoadPrefixes {
    /// The prefix loads through `channel` must carry, if one is set.
    pub fn of(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Atm => self.atm.as_deref(),
            Channel::Pos => self.pos.as_deref(),
            Channel::Other => None,
        }
    }

    /// Problems with the values, for the config check: each prefix 1 to 11
    /// digits (at most a BIN and a range within it).
    pub fn problems(&self) -> Vec<String> {
        [("atm", &self.atm), ("pos", &self.pos)]
            .into_iter()
            .filter_map(|(name, prefix)| {
                let p = prefix.as_deref()?;
                let ok = (1..=11).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
                (!ok).then(|| format!("load_prefixes.{name} {p:?} must be 1 to 11 digits"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_prefixes_are_per_channel_and_digits() {
        let prefixes: LoadPrefixes = toml::from_str("atm = \"476173\"\n").unwrap();
        assert_eq!(prefixes.of(Channel::Atm), Some("476173"));
        assert_eq!(prefixes.of(Channel::Pos), None);
        assert!(prefixes.problems().is_empty());
        let bad: LoadPrefixes = toml::from_str("pos = \"4761x\"\natm = \"\"\n").unwrap();
        assert_eq!(bad.problems().len(), 2);
        assert!(toml::from_str::<LoadPrefixes>("other = \"4\"\n").is_err());
    }

    #[test]
    fn hold_hours_follow_mcc_groups_then_channel() {
        let holds: HoldsConfig = toml::from_str(
            "atm_hours = 12\npos_hours = 100\n[[group]]\nname = \"hotels\"\nmcc = [\"7011\", \"3501-3999\"]\nhours = 720\n",
        )
        .unwrap();
        assert_eq!(holds.hours(false, Some(7011)), 720);
        assert_eq!(holds.hours(false, Some(3600)), 720);
        assert_eq!(holds.hours(false, Some(5411)), 100);
        assert_eq!(holds.hours(true, None), 12);
        assert!(holds.problems().is_empty());
        let bad: HoldsConfig =
            toml::from_str("[[group]]\nname = \"x\"\nmcc = [\"99-1\"]\nhours = 1\n").unwrap();
        assert_eq!(bad.problems().len(), 1);
    }
}
