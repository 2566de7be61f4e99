//! `[store]`: where the embedded database lives and how its WAL is held.

use std::path::PathBuf;

use serde::Deserialize;

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
