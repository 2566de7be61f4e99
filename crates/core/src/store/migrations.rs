//! The schema, as an ordered list of migrations.
//!
//! The store applies every migration whose version is above the database's
//! (SQLite: `PRAGMA user_version`; PostgreSQL: the one row of
//! `schema_version`), in order, each in its own transaction together with
//! the new version, so a database is always exactly at one version.
//!
//! Adding a table or column means appending one entry here with the next
//! version and two new files: `migrations/NNNN_name.sql` and its
//! PostgreSQL twin `migrations/postgres/NNNN_name.sql`. A migration that has
//! shipped is never edited, renumbered or removed: files in the field have
//! already run it. Migration SQL must not contain `BEGIN`/`COMMIT` (the store
//! owns the transaction) and runs with `foreign_keys=ON`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::sql;
use super::{SCHEMA_VERSION, StoreError};

/// PostgreSQL's `user_version`: a table of one row, created (when missing)
/// under the migration lock.
const PG_VERSION_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS schema_version (
        id      BIGINT PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
    );
    INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING";

/// The key of the transaction-scoped advisory lock hubs migrate under
/// ("cardhub" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x0063_6172_6468_7562;

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `user_version` the file has once this step is applied (1, 2, ...).
    pub(crate) version: u32,
    /// A short name for logs and errors.
    pub(crate) name: &'static str,
    /// The file's name without `.sql`, the same in both folders.
    pub(crate) file: &'static str,
    /// The statements in SQLite's dialect, run as one batch.
    pub(crate) sql: &'static str,
    /// The same schema in PostgreSQL's dialect (see
    /// `scripts/check-pg-schema`).
    pub(crate) postgres: &'static str,
}

/// One migration in both dialects: `migrations/FILE.sql` (SQLite) and
/// `migrations/postgres/FILE.sql` (its PostgreSQL twin).
macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            file: $file,
            sql: include_str!(concat!("migrations/", $file, ".sql")),
            postgres: include_str!(concat!("migrations/postgres/", $file, ".sql")),
        }
    };
}

/// Every migration, in version order, without gaps.
pub(crate) const MIGRATIONS: &[Migration] = &[
    migration!(1, "journal", "0001_journal"),
    migration!(2, "cards", "0002_cards"),
    migration!(3, "stand-in", "0003_standin"),
    migration!(4, "search", "0004_search"),
    migration!(5, "saf answers", "0005_saf_answers"),
    migration!(6, "call intents", "0006_call_intents"),
    migration!(7, "duplicate key", "0007_duplicate_key"),
    migration!(8, "prepaid ledger", "0008_prepaid"),
    migration!(9, "prepaid orders", "0009_prepaid_orders"),
    migration!(10, "prepaid files", "0010_prepaid_files"),
    migration!(11, "prepaid daily limits", "0011_prepaid_daily_limits"),
    migration!(12, "access", "0012_access"),
    migration!(13, "prepaid hold sums", "0013_prepaid_hold_sums"),
    migration!(14, "prepaid hold totals", "0014_prepaid_hold_totals"),
    migration!(15, "fleet", "0015_fleet"),
    migration!(16, "shared totals", "0016_shared_totals"),
    migration!(17, "intent key", "0017_intent_key"),
    migration!(
        18,
        "one current balance file",
        "0018_one_current_balance_file"
    ),
    migration!(19, "merchant name", "0019_merchant_name"),
    migration!(20, "search deferred", "0020_search_deferred"),
];

/// The newest schema version this binary knows (0 with no migrations).
pub(crate) const fn latest() -> u32 {
    match MIGRATIONS.last() {
        Some(m) => m.version,
        None => 0,
    }
}

/// The file's schema version.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Refuses a file written by a newer binary.
pub(crate) fn check_version(found: u32) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies pending migrations one transaction each. The version is read
/// under the write lock, so two processes opening a new file at once do not
/// both apply a step.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_error = super::sqlite::open_error(path);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_error)?;
        let found = user_version(&tx).map_err(open_error)?;
        check_version(found)?;
        let Some(step) = MIGRATIONS.iter().find(|m| m.version > found) else {
            return Ok(());
        };
        tx.execute_batch(step.sql)
            .and_then(|()| tx.pragma_update(None, "user_version", step.version))
            .and_then(|()| tx.commit())
            .map_err(|source| StoreError::Migration {
                version: step.version,
                name: step.name,
                source: source.into(),
            })?;
        tracing::info!(
            version = step.version,
            name = step.name,
            file = step.file,
            "store migration applied"
        );
    }
}

/// [`migrate`] for PostgreSQL: each step and the new version in one
/// transaction that first takes an advisory lock, so hubs starting together
/// apply each step once (the second waits, then finds the new version).
/// A database of a newer schema is refused untouched.
pub(crate) fn migrate_postgres(conn: &sql::Connection, location: &str) -> Result<(), StoreError> {
    let open_error = |source| StoreError::Open {
        location: location.to_owned(),
        source,
    };
    loop {
        // READ COMMITTED: the version is read after the lock is held, by a
        // statement that sees what the hub before us committed (a
        // serializable snapshot would be older than the lock).
        let found = conn
            .execute_batch("BEGIN ISOLATION LEVEL READ COMMITTED")
            .and_then(|()| conn.execute("SELECT pg_advisory_xact_lock(?1)", [PG_MIGRATION_LOCK]))
            .and_then(|_| conn.execute_batch(PG_VERSION_TABLE))
            .and_then(|()| {
                conn.query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
                    r.get::<u32>(0)
                })
            });
        let step = found.map_err(open_error).and_then(|found| {
            check_version(found)?;
            Ok(MIGRATIONS.iter().find(|m| m.version > found))
        });
        let step = match step {
            Ok(Some(step)) => step,
            Ok(None) => return conn.execute_batch("COMMIT").map_err(open_error),
            Err(e) => {
                rollback(conn);
                return Err(e);
            }
        };
        conn.execute_batch(step.postgres)
            .and_then(|()| {
                conn.execute(
                    "UPDATE schema_version SET version = ?1 WHERE id = 1",
                    [step.version],
                )
            })
            .and_then(|_| conn.execute_batch("COMMIT"))
            .map_err(|source| {
                rollback(conn);
                StoreError::Migration {
                    version: step.version,
                    name: step.name,
                    source,
                }
            })?;
        tracing::info!(
            version = step.version,
            name = step.name,
            file = step.file,
            "store migration applied"
        );
    }
}

/// Ends a failed migration's transaction (best effort: the error that
/// led here is the one reported).
fn rollback(conn: &sql::Connection) {
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::warn!(error = %e, "store migration rollback failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;
    use std::collections::HashSet;

    #[test]
    fn versions_are_one_to_n_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                usize::try_from(m.version).ok(),
                Some(i + 1),
                "migration {} ({}) is out of place",
                m.version,
                m.name
            );
        }
        assert_eq!(usize::try_from(latest()).ok(), Some(MIGRATIONS.len()));
    }

    /// Both folders hold exactly the listed files: no migration without
    /// its PostgreSQL twin, no twin without its migration.
    #[test]
    fn both_dialects_list_the_same_files() {
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.file))
            .collect();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
        for folder in [dir.clone(), dir.join("postgres")] {
            let mut found: Vec<String> = std::fs::read_dir(&folder)
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_type().unwrap().is_file())
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            found.sort();
            assert_eq!(found, listed, "{}", folder.display());
        }
        for m in MIGRATIONS {
            let number = format!("{:04}_", m.version);
            assert!(
                m.file.starts_with(&number),
                "migration {} is in {}",
                m.version,
                m.file
            );
        }
    }

    #[test]
    fn names_are_unique_and_present() {
        let mut seen = HashSet::new();
        for m in MIGRATIONS {
            assert!(!m.name.is_empty(), "migration {} has no name", m.version);
            assert!(seen.insert(m.name), "migration name {} repeats", m.name);
        }
    }

    #[test]
    fn all_apply_in_order_inside_one_transaction_each() {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("foreign keys");
        for m in MIGRATIONS {
            conn.execute_batch("BEGIN").expect("begin");
            conn.execute_batch(m.sql)
                .unwrap_or_else(|e| panic!("migration {} ({}) fails: {e}", m.version, m.name));
            // A migration that commits on its own would break the store's
            // "one version, one transaction" rule.
            assert!(
                !conn.is_autocommit(),
                "migration {} ({}) ends the transaction itself",
                m.version,
                m.name
            );
            conn.execute_batch("COMMIT").expect("commit");
        }
    }
}
