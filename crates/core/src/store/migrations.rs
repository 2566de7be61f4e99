//! The schema, as an ordered list of migrations.
//!
//! The store applies every migration whose version is above the file's
//! `PRAGMA user_version`, in order, each in its own transaction together with
//! the new `user_version`, so a file is always exactly at one version.
//!
//! Adding a table or column means appending one entry here with the next
//! version and a new `migrations/NNNN_name.sql` file. A migration that has
//! shipped is never edited, renumbered or removed: files in the field have
//! already run it. Migration SQL must not contain `BEGIN`/`COMMIT` (the store
//! owns the transaction) and runs with `foreign_keys=ON`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{SCHEMA_VERSION, StoreError};

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `user_version` the file has once this step is applied (1, 2, ...).
    pub(crate) version: u32,
    /// A short name for logs and errors.
    pub(crate) name: &'static str,
    /// The statements, run as one batch.
    pub(crate) sql: &'static str,
}

/// Every migration, in version order, without gaps.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "journal",
        sql: include_str!("migrations/0001_journal.sql"),
    },
    Migration {
        version: 2,
        name: "cards",
        sql: include_str!("migrations/0002_cards.sql"),
    },
    Migration {
        version: 3,
        name: "stand-in",
        sql: include_str!("migrations/0003_standin.sql"),
    },
    Migration {
        version: 4,
        name: "search",
        sql: include_str!("migrations/0004_search.sql"),
    },
    Migration {
        version: 5,
        name: "saf answers",
        sql: include_str!("migrations/0005_saf_answers.sql"),
    },
    Migration {
        version: 6,
        name: "call intents",
        sql: include_str!("migrations/0006_call_intents.sql"),
    },
    Migration {
        version: 7,
        name: "duplicate key",
        sql: include_str!("migrations/0007_duplicate_key.sql"),
    },
    Migration {
        version: 8,
        name: "prepaid ledger",
        sql: include_str!("migrations/0008_prepaid.sql"),
    },
    Migration {
        version: 9,
        name: "prepaid orders",
        sql: include_str!("migrations/0009_prepaid_orders.sql"),
    },
    Migration {
        version: 10,
        name: "prepaid files",
        sql: include_str!("migrations/0010_prepaid_files.sql"),
    },
    Migration {
        version: 11,
        name: "prepaid daily limits",
        sql: include_str!("migrations/0011_prepaid_daily_limits.sql"),
    },
    Migration {
        version: 12,
        name: "access",
        sql: include_str!("migrations/0012_access.sql"),
    },
    Migration {
        version: 13,
        name: "prepaid hold sums",
        sql: include_str!("migrations/0013_prepaid_hold_sums.sql"),
    },
    Migration {
        version: 14,
        name: "shared totals",
        sql: include_str!("migrations/0014_shared_totals.sql"),
    },
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
    let open_error = super::open_error(path);
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
            "store migration applied"
        );
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
