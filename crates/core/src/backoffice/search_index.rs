//! The search tables by card and by account (`journal_by_card`,
//! `journal_by_account`, migration `0020_search_deferred.sql`), filled in
//! bulk. An index on the journal per key dirtied, for every authorization,
//! a page of each at a place of its own (one per card, one per account);
//! filled once a second in one transaction, the search tables write such a
//! page once for all the rows of that second that land on it.
//!
//! A journaled row with a card or an account is listed in
//! `journal_unindexed` by a trigger in the transaction that writes it;
//! [`catch_up`] moves the listed rows into the search tables. A search
//! reads both (see [`super::search`]), so it never misses a row, whether
//! or not a hub runs the catch-up.

use std::time::Duration;

use crate::store::sql::{self, OptionalExtension, params};

/// How often a running hub calls [`catch_up`].
pub const EVERY: Duration = Duration::from_secs(1);

/// Each deferred search key: the journal column and its search table.
pub(crate) const KEYS: [(&str, &str); 2] = [
    ("pan_hash", "journal_by_card"),
    ("account", "journal_by_account"),
];

/// The search table of journal column `column`, when it is a deferred key.
pub(crate) fn table_of(column: &str) -> Option<&'static str> {
    KEYS.iter().find(|(c, _)| *c == column).map(|(_, t)| *t)
}

/// The most rows one [`catch_up`] moves: a backlog (rows left while no
/// hub ran it, or while it failed) is moved in several transactions, so
/// the writer answers authorizations in between.
pub const BATCH: i64 = 4096;

/// Moves the oldest [`BATCH`] journal rows listed in `journal_unindexed`
/// (all of them when fewer) into the search tables and takes them off the
/// list, in the caller's transaction; returns how many rows were moved.
///
/// # Errors
/// The store's error (nothing moved then).
pub fn catch_up(c: &sql::Connection) -> sql::Result<usize> {
    let last: i64 = c
        .prepare_cached("SELECT txn_id FROM journal_unindexed ORDER BY txn_id LIMIT 1 OFFSET ?1")?
        .query_row(params![BATCH - 1], |r| r.get(0))
        .optional()?
        .unwrap_or(i64::MAX);
    for (column, table) in KEYS {
        c.prepare_cached(&format!(
            "INSERT INTO {table} ({column}, txn_id) \
             SELECT j.{column}, j.txn_id FROM journal_unindexed u \
             CROSS JOIN journal j WHERE u.txn_id <= ?1 AND j.txn_id = u.txn_id \
             AND j.{column} IS NOT NULL \
             ON CONFLICT ({column}, txn_id) DO NOTHING"
        ))?
        .execute(params![last])?;
    }
    c.prepare_cached("DELETE FROM journal_unindexed WHERE txn_id <= ?1")?
        .execute(params![last])
}
