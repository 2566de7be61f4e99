//! Configuration of the hub core: institutions, the business day, the store.

use std::path::PathBuf;

use serde::Deserialize;

use crate::standin::balance_file::BalanceFormat;
use crate::standin::config::{BreakerConfig, SafConfig, StandInConfig};

/// How an institution's account system is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstitutionMode {
    /// Online through its adapter; cardhub stands in only when it cannot answer.
    Online,
    /// Never online: every decision is cardhub's (from balance files).
    OfflineOnly,
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

/// `[store]`: the embedded database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Database file (relative to the config file's folder).
    pub path: PathBuf,
    /// Soft cap on the WAL file, in MiB (see `store::StoreOptions`).
    pub wal_cap_mib: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("cardhub.db"),
            wal_cap_mib: crate::store::DEFAULT_WAL_CAP_BYTES >> 20,
        }
    }
}
