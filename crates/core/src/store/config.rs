//! `[store]`: where the database lives (an embedded SQLite file, or a
//! PostgreSQL server several hubs share) and how it is run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::store::PostgresOptions;

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
    /// The longest wait for one answer from PostgreSQL, in milliseconds
    /// (see `store::PostgresOptions::timeout`).
    pub timeout_ms: u64,
    /// The longest wait for a new PostgreSQL connection, in milliseconds.
    pub connect_timeout_ms: u64,
}

/// The database file when `[store]` names none.
pub const DEFAULT_PATH: &str = "cardhub.db";

/// The largest page cache `cache_mib` may ask for (64 GiB).
pub const MAX_CACHE_MIB: u64 = 64 * 1024;

/// The most write connections `writers` may ask for.
pub const MAX_WRITERS: usize = 64;

/// The longest `timeout_ms` and `connect_timeout_ms` (a minute: past it
/// every request would have been answered long before).
pub const MAX_TIMEOUT_MS: u64 = 60_000;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            url: None,
            wal_cap_mib: crate::store::DEFAULT_WAL_CAP_BYTES >> 20,
            cache_mib: crate::store::DEFAULT_CACHE_BYTES >> 20,
            writers: crate::store::DEFAULT_POSTGRES_WRITERS,
            timeout_ms: millis(crate::store::DEFAULT_POSTGRES_TIMEOUT),
            connect_timeout_ms: millis(crate::store::DEFAULT_POSTGRES_CONNECT_TIMEOUT),
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
        for (key, ms) in [
            ("timeout_ms", self.timeout_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
        ] {
            if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
                problems.push(format!(
                    "store: {key} {ms} must be between 1 and {MAX_TIMEOUT_MS}"
                ));
            }
        }
        problems
    }

    /// How the PostgreSQL back end is run.
    #[must_use]
    pub fn postgres_options(&self) -> PostgresOptions {
        PostgresOptions {
            writers: self.writers,
            timeout: Duration::from_millis(self.timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
