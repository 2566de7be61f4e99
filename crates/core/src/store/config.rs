//! `[store]`: where the database lives (an embedded SQLite file, or a
//! PostgreSQL server several hubs share) and how it is run.

use std::path::PathBuf;

use serde::Deserialize;

/// `[store]`: the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite database file (relative to the config file's folder);
    /// `cardhub.db` when neither it nor `url` is given.
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgresql://user:password@host:port/db`)
    /// instead of the file.
    pub url: Option<String>,
    /// Soft cap on the WAL file, in MiB (SQLite; see `store::StoreOptions`).
    pub wal_cap_mib: u64,
    /// The write connection's page cache, in MiB (SQLite; see
    /// `store::StoreOptions::cache_bytes`).
    pub cache_mib: u64,
    /// Write connections to PostgreSQL (see `store::PostgresOptions`).
    pub writers: usize,
}

/// The database file when `[store]` names none.
pub const DEFAULT_PATH: &str = "cardhub.db";

/// The largest page cache `cache_mib` may ask for (64 GiB).
pub const MAX_CACHE_MIB: u64 = 64 * 1024;

/// The most write connections `writers` may ask for.
pub const MAX_WRITERS: usize = 64;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            url: None,
            wal_cap_mib: crate::store::DEFAULT_WAL_CAP_BYTES >> 20,
            cache_mib: crate::store::DEFAULT_CACHE_BYTES >> 20,
            writers: crate::store::DEFAULT_POSTGRES_WRITERS,
        }
    }
}

impl StoreConfig {
    /// What is wrong with the section, in words.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.path.is_some() && self.url.is_some() {
            problems.push(
                "store: path (SQLite) and url (PostgreSQL) are both set; give one".to_owned(),
            );
        }
        if !(1..=MAX_CACHE_MIB).contains(&self.cache_mib) {
            problems.push(format!(
                "store: cache_mib {} must be between 1 and {MAX_CACHE_MIB}",
                self.cache_mib
            ));
        }
        if self.url.as_deref().is_some_and(str::is_empty) {
            problems.push("store: url is empty".to_owned());
        }
        if !(1..=MAX_WRITERS).contains(&self.writers) {
            problems.push(format!(
                "store: writers {} must be between 1 and {MAX_WRITERS}",
                self.writers
            ));
        }
        problems
    }
}
