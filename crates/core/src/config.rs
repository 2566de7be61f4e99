//! `cardhub.toml`: one typed configuration for the whole hub, read and checked
//! whole before any socket is bound. Unknown keys are errors; every problem
//! is reported at once. Relative paths are relative to the file's folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::access::config::WebConfig;
use crate::api::config::{ApiConfig, ApiSettings};
use crate::cards::config::{Catalog, LimitProfiles, SecurityConfig};
use crate::fleet::FleetConfig;
use crate::hub::limits::DayConfig;
use crate::link::{LinkSettings, SwitchConfig, SwitchSettings};
use crate::prepaid::config::PrepaidConfig;
use crate::standin::balance_file::BalanceFormat;
use crate::standin::config::HoldsConfig;
use crate::standin::config::{InstitutionConfig, InstitutionMode};
use crate::store::config::StoreConfig;
use crate::store::{PostgresOptions, Store, StoreError, StoreOptions};

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Folder of dialect files (default `adapters/switch` beside the working directory).
    pub dialects_dir: Option<PathBuf>,
    /// Folder of account-system adapter files (default `adapters` beside the working directory).
    pub adapters_dir: Option<PathBuf>,
    #[serde(default)]
    pub link: LinkSettings,
    /// `[[switch]]` sections.
    #[serde(default, rename = "switch")]
    pub switches: Vec<SwitchConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub day: DayConfig,
    /// `[limits.<profile>]` sections.
    #[serde(default)]
    pub limits: LimitProfiles,
    /// `[[institution]]` sections.
    #[serde(default, rename = "institution")]
    pub institutions: Vec<InstitutionConfig>,
    #[serde(default)]
    pub holds: HoldsConfig,
    /// `[api]`: the JSON API and SOAP service (none when absent).
    pub api: Option<ApiConfig>,
    /// `[prepaid]`: the prepaid ledger's settings.
    #[serde(default)]
    pub prepaid: PrepaidConfig,
    /// `[web]`: login sessions' timeouts.
    #[serde(default)]
    pub web: WebConfig,
    /// `[fleet]`: this instance's number among several on one store.
    #[serde(default)]
    pub fleet: FleetConfig,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub link: LinkSettings,
    pub switches: Vec<Arc<SwitchSettings>>,
    /// Database file, resolved against the config file's folder (unused
    /// when `store_url` is set).
    pub store_path: PathBuf,
    /// The PostgreSQL database, when `[store] url` selects one.
    pub store_url: Option<String>,
    /// How an SQLite store is run (`[store]` beyond its path).
    pub store_options: StoreOptions,
    /// How a PostgreSQL store is run.
    pub postgres_options: PostgresOptions,
    /// Folder of adapter files.
    pub adapters_dir: PathBuf,
    pub security: SecurityConfig,
    pub day: DayConfig,
    pub limits: LimitProfiles,
    pub institutions: Vec<InstitutionConfig>,
    pub holds: HoldsConfig,
    pub api: Option<ApiSettings>,
    /// `[prepaid]`: the prepaid ledger's settings.
    pub prepaid: PrepaidConfig,
    /// `[web]`: login sessions' timeouts.
    pub web: WebConfig,
    /// `[fleet]`: this instance's number among several on one store.
    pub fleet: FleetConfig,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or keys and types that do not match (with line and column).
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// Values that cannot work together; one entry per problem.
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and every problem in it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(path, &text, base)
    }

    /// Parses and checks configuration text; `base` anchors relative paths.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_toml(path: &Path, text: &str, base: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let dialects_dir = match &file.dialects_dir {
            Some(dir) => base.join(dir),
            None => crate::iso8583::dialect::default_dir(),
        };
        let mut problems = Vec::new();
        if file.link.max_in_flight == 0 {
            problems.push("link: max_in_flight must be at least 1".to_string());
        }
        let mut switches = Vec::new();
        for (i, sw) in file.switches.iter().enumerate() {
            if file.switches[..i].iter().any(|other| other.name == sw.name) {
                problems.push(format!("switch {:?}: name used twice", sw.name));
            }
            let mut sw = sw.clone();
            if let Some(tls) = &mut sw.tls {
                for p in [&mut tls.cert, &mut tls.key, &mut tls.ca]
                    .into_iter()
                    .flatten()
                {
                    *p = base.join(&*p);
                }
            }
            if let Some(settings) = sw.resolve(&dialects_dir, &mut problems) {
                switches.push(Arc::new(settings));
            }
        }
        for (i, inst) in file.institutions.iter().enumerate() {
            if file.institutions[..i].iter().any(|o| o.id == inst.id) {
                problems.push(format!("institution {:?}: id used twice", inst.id));
            }
            for p in inst
                .stand_in
                .problems()
                .into_iter()
                .chain(inst.saf.problems())
                .chain(inst.load_prefixes.problems())
            {
                problems.push(format!("institution {:?}: {p}", inst.id));
            }
            if let Some(Err(p)) = inst.balances.as_ref().map(BalanceFormat::check) {
                problems.push(format!("institution {:?}: balances: {p}", inst.id));
            }
            if inst.mode == InstitutionMode::Prepaid && inst.adapter.is_some() {
                problems.push(format!(
                    "institution {:?}: mode \"prepaid\" is served by cardhub's ledger and takes no adapter",
                    inst.id
                ));
            }
            if inst.drop_folder.is_some() && inst.balances.is_none() {
                problems.push(format!(
                    "institution {:?}: drop_folder needs a balances format",
                    inst.id
                ));
            }
        }
        let wal_cap_bytes = file.store.wal_cap_mib.checked_mul(1 << 20).unwrap_or(0);
        if wal_cap_bytes == 0 {
            problems.push(format!(
                "store: wal_cap_mib {} must be at least 1 (and fit in bytes)",
                file.store.wal_cap_mib
            ));
        }
        problems.extend(file.store.problems());
        problems.extend(file.holds.problems());
        problems.extend(file.prepaid.problems());
        problems.extend(file.web.problems());
        problems.extend(file.fleet.problems());
        let api = file
            .api
            .as_ref()
            .and_then(|a| a.resolve(base, &file.web, &mut problems));
        for (name, profile) in &file.limits {
            problems.extend(
                profile
                    .offline_problems()
                    .into_iter()
                    .map(|p| format!("limits.{name}: {p}")),
            );
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            });
        }
        Ok(Config {
            link: file.link,
            switches,
            store_path: base.join(
                file.store
                    .path
                    .as_deref()
                    .unwrap_or(Path::new(crate::store::config::DEFAULT_PATH)),
            ),
            postgres_options: file.store.postgres_options(),
            store_url: file.store.url,
            store_options: StoreOptions {
                wal_cap_bytes,
                cache_bytes: file.store.cache_mib << 20,
                ..StoreOptions::default()
            },
            adapters_dir: file
                .adapters_dir
                .as_ref()
                .map_or_else(|| PathBuf::from("adapters"), |d| base.join(d)),
            security: file.security,
            day: file.day,
            limits: file.limits,
            institutions: file
                .institutions
                .into_iter()
                .map(|mut i| {
                    i.drop_folder = i.drop_folder.map(|d| base.join(d));
                    i
                })
                .collect(),
            holds: file.holds,
            api,
            prepaid: PrepaidConfig {
                outbox: file.prepaid.outbox.map(|d| base.join(d)),
                ..file.prepaid
            },
            web: file.web,
            fleet: file.fleet,
        })
    }

    /// The institutions (`[[institution]] id`) and limit profiles
    /// (`[limits.<name>]`) card files may name.
    pub fn catalog(&self) -> Catalog {
        Catalog::new(
            self.institutions.iter().map(|i| i.id.clone()),
            self.limits.keys().cloned(),
        )
    }

    /// Opens the configured store: PostgreSQL when `[store] url` is set
    /// (see [`Store::open_postgres`]), else the SQLite file (see
    /// [`Store::open_with`]).
    ///
    /// # Errors
    /// As [`Store::open_postgres`] or [`Store::open_with`].
    pub fn open_store(&self) -> Result<Store, StoreError> {
        match &self.store_url {
            Some(url) => Store::open_postgres(url, self.postgres_options),
            None => Store::open_with(&self.store_path, self.store_options),
        }
    }

    /// The configured store for messages: the file, or the PostgreSQL
    /// server and database without the password.
    #[must_use]
    pub fn store_location(&self) -> String {
        match &self.store_url {
            Some(url) => crate::store::postgres_location(url),
            None => self.store_path.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("test.toml"), text, Path::new("."))
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse("[link]\nmax_in_flite = 3\n").unwrap_err().to_string();
        assert!(err.contains("max_in_flite"), "{err}");
        let err = parse("[[switch]]\nname = \"a\"\nrole = \"listen\"\naddress = \"127.0.0.1:1\"\nheader = \"ISO006000070\"\ncolour = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn store_url_selects_postgres_and_is_named_without_its_password() {
        let config =
            parse("[store]\nurl = \"postgresql://hub:s3cret@db:5433/cards\"\nwriters = 2\n")
                .unwrap();
        assert_eq!(
            config.store_url.as_deref(),
            Some("postgresql://hub:s3cret@db:5433/cards")
        );
        assert_eq!(config.postgres_options.writers, 2);
        assert_eq!(config.store_location(), "postgresql://hub@db:5433/cards");
        let config = parse("").unwrap();
        assert_eq!(config.store_url, None);
        assert_eq!(config.store_path, Path::new(".").join("cardhub.db"));
        assert_eq!(
            config.store_location(),
            config.store_path.display().to_string()
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [[switch]]
            name = "a"
            role = "listen"
            address = "nowhere"
            dialect = "nonesuch"
            refuse_code = "9"
            safety_margin_ms = 6000

            [[switch]]
            name = "a"
            role = "dial"
            address = "127.0.0.1:9"
            dialect = "base24"
            tls = { cert = "c.pem" }
        "#;
        let ConfigError::Invalid { problems, .. } = parse(text).unwrap_err() else {
            panic!("expected Invalid");
        };
        let all = problems.join("\n");
        for needle in [
            "address \"nowhere\" is not ip:port",
            "unknown dialect \"nonesuch\"",
            "response code \"9\"",
            "safety_margin_ms 6000",
            "name used twice",
            "needs `header`",
            "tls: dialing needs ca",
            "tls: cert and key go together",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn prepaid_settings_are_checked() {
        let text = r#"
            [prepaid]
            default_max_balance = 0

            [[institution]]
            id = "city"
            name = "City"
            mode = "prepaid"
            adapter = "canonical"
        "#;
        let ConfigError::Invalid { problems, .. } = parse(text).unwrap_err() else {
            panic!("expected Invalid");
        };
        let all = problems.join("\n");
        assert!(
            all.contains("prepaid.default_max_balance 0 must be between 1"),
            "{all}"
        );
        assert!(
            all.contains("institution \"city\": mode \"prepaid\""),
            "{all}"
        );
        let ok =
            parse("[[institution]]\nid = \"city\"\nname = \"City\"\nmode = \"prepaid\"\n").unwrap();
        assert_eq!(ok.institutions[0].mode, InstitutionMode::Prepaid);
        assert_eq!(ok.prepaid.default_max_balance, 150_000);
    }

    #[test]
    fn stand_in_settings_are_checked() {
        let text = r#"
            [limits.standard]
            atm = { per_transaction = 500, daily_amount = 1000, daily_count = 3 }
            pos = { per_transaction = 500, daily_amount = 1000, daily_count = 3 }
            [limits.standard.offline]
            atm = { per_transaction = 600, daily_amount = 1000, daily_count = 3 }
            pos = { per_transaction = 500, daily_amount = 1000, daily_count = 4 }

            [[holds.group]]
            name = "hotels"
            mcc = ["7011", "x"]
            hours = 720

            [[institution]]
            id = "bank-a"
            name = "A"
            mode = "online"
            drop_folder = "drop"
            stand_in = { unavailable_code = "00" }
            saf = { concurrency = 0 }

            [api]
            listen = "127.0.0.1:0"
            token = "short"

            [store]
            wal_cap_mib = 0
            cache_mib = 0
            path = "hub.db"
            url = "postgresql://cardhub@db/cardhub"
            writers = 0
            timeout_ms = 0
            connect_timeout_ms = 60001
        "#;
        let ConfigError::Invalid { problems, .. } = parse(text).unwrap_err() else {
            panic!("expected Invalid");
        };
        let all = problems.join("\n");
        for needle in [
            "limits.standard: offline.atm.per_transaction 600 is above the online 500",
            "limits.standard: offline.pos.daily_count 4 is above the online 3",
            "holds.group \"hotels\": \"x\" is not an MCC or MCC range",
            "unavailable_code \"00\" is not a decline code",
            "saf.concurrency must be at least 1",
            "drop_folder needs a balances format",
            "the token must be at least 16 characters",
            "store: wal_cap_mib 0 must be at least 1",
            "store: path (SQLite) and url (PostgreSQL) are both set; give one",
            "store: writers 0 must be between 1 and 64",
            "store: cache_mib 0 must be between 1 and 65536",
            "store: timeout_ms 0 must be between 1 and 60000",
            "store: connect_timeout_ms 60001 must be between 1 and 60000",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }
}
