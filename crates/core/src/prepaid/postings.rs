//! The only writers of postings and of the balance columns that sum them:
//! an operation books an entry with its legs and moves the columns at once
//! ([`book`]); a load file writes its entries with one [`EntryWriter`] and
//! moves each account's column once at its end ([`add_to_balance`]).

use crate::store::sql;
use crate::store::sql::{Connection, params};

/// Writes an entry and its postings and moves the balance columns with
/// them, in the caller's transaction.
pub(super) fn book(
    conn: &Connection,
    kind: &str,
    reference: &str,
    card: i64,
    original: Option<i64>,
    legs: &[(i64, i64)],
    now_us: i64,
) -> sql::Result<i64> {
    let entry = EntryWriter::new(conn)?.write(kind, reference, card, original, legs, now_us)?;
    for &(account, amount) in legs.iter().filter(|(_, a)| *a != 0) {
        add_to_balance(conn, account, amount)?;
    }
    Ok(entry)
}

/// Writes entries and their postings without moving the balance columns:
/// the caller moves them in the same transaction ([`book`] at once, a load
/// file once per account at its end). Holds its two statements, so a load
/// file's million lines look neither up again.
pub(super) struct EntryWriter<'c> {
    entry: sql::Statement<'c>,
    posting: sql::Statement<'c>,
}

impl<'c> EntryWriter<'c> {
    pub(super) fn new(conn: &'c Connection) -> sql::Result<EntryWriter<'c>> {
        Ok(EntryWriter {
            entry: conn.prepare_insert(
                "INSERT INTO prepaid_entries (kind, reference, card, original, booked_at_us)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            posting: conn.prepare_cached(
                "INSERT INTO prepaid_postings (entry, account, amount) VALUES (?1, ?2, ?3)",
            )?,
        })
    }

    /// Writes one entry and its non-zero legs; returns the entry's id.
    pub(super) fn write(
        &mut self,
        kind: &str,
        reference: &str,
        card: i64,
        original: Option<i64>,
        legs: &[(i64, i64)],
        now_us: i64,
    ) -> sql::Result<i64> {
        let entry = self
            .entry
            .insert(params![kind, reference, card, original, now_us])?;
        for &(account, amount) in legs.iter().filter(|(_, a)| *a != 0) {
            self.posting.execute(params![entry, account, amount])?;
        }
        Ok(entry)
    }
}

/// Moves an account's balance column by `amount`.
pub(super) fn add_to_balance(conn: &Connection, account: i64, amount: i64) -> sql::Result<()> {
    conn.prepare_cached("UPDATE prepaid_accounts SET balance = balance + ?2 WHERE id = ?1")?
        .execute(params![account, amount])?;
    Ok(())
}
