//! A purchase hold as the ledger reads it, and a card account's hold
//! totals (migration `0014_prepaid_hold_totals.sql`):
//! what its open holds set aside, and the amount and number of its holds of
//! the day, kept on the account's row in the transaction of every change to
//! its holds. An authorization reads them with the card instead of summing
//! the card's holds, which grew with every hold the card had open.
//!
//! The functions here are the only writers of those columns; the ledger's
//! audit checks them against the holds. Holds move no money: a balance is
//! still only the sum of postings.

use crate::params;
use crate::store::sql::{self, Connection, OptionalExtension};

/// One UTC day in microseconds.
pub(super) const DAY_US: i64 = 86_400_000_000;

/// A card account's hold totals, as read with the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HoldTotals {
    /// The remaining amounts of its holds in state `open`, stale ones (past
    /// their expiry, not yet marked expired) included.
    pub(super) held: i64,
    /// The UTC day (its first microsecond) of its newest hold.
    pub(super) day_start_us: i64,
    /// The amount of its holds created that day and not released.
    pub(super) day_amount: i64,
    /// The number of its holds created that day and not released.
    pub(super) day_count: i64,
}

/// The card acceptor of a purchase, as the switch named it: kept on its
/// hold and on the entries that post or undo it, for the accounting export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merchant {
    /// DE 42, the card acceptor id.
    pub id: Option<String>,
    /// DE 43, the card acceptor name and location (trimmed).
    pub name: Option<String>,
}

impl Merchant {
    /// A card acceptor known by its id alone.
    pub fn with_id(id: &str) -> Merchant {
        Merchant {
            id: Some(id.to_string()),
            name: None,
        }
    }

    /// Each part of `self`, or else `other`'s.
    pub(super) fn or(&self, other: &Merchant) -> Merchant {
        Merchant {
            id: self.id.clone().or_else(|| other.id.clone()),
            name: self.name.clone().or_else(|| other.name.clone()),
        }
    }
}

/// A purchase hold.
pub(super) struct Hold {
    pub(super) id: i64,
    pub(super) account: i64,
    pub(super) amount: i64,
    pub(super) remaining: i64,
    pub(super) captured: i64,
    pub(super) refunded: i64,
    pub(super) state: String,
    pub(super) created_at_us: i64,
    /// The card acceptor of the authorization.
    pub(super) merchant: Merchant,
}

/// The hold booked with `reference`.
pub(super) fn hold_by_reference(conn: &Connection, reference: &str) -> sql::Result<Option<Hold>> {
    conn.prepare_cached(
        "SELECT id, account, amount, remaining, captured, refunded, state, created_at_us, merchant,
             merchant_name
         FROM prepaid_holds WHERE reference = ?1",
    )?
    .query_row([reference], |r| {
        Ok(Hold {
            id: r.get(0)?,
            account: r.get(1)?,
            amount: r.get(2)?,
            remaining: r.get(3)?,
            captured: r.get(4)?,
            refunded: r.get(5)?,
            state: r.get(6)?,
            created_at_us: r.get(7)?,
            merchant: Merchant {
                id: r.get(8)?,
                name: r.get(9)?,
            },
        })
    })
    .optional()
}

/// What the open holds of a card account that are past their expiry at
/// `?2`, and so no longer set money aside, still count in its `held` (from
/// the index `prepaid_holds_open` alone; usually no row).
pub(super) const STALE: &str =
    "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM prepaid_holds
     WHERE account = ?1 AND state = 'open' AND expires_at_us <= ?2";

/// The first microsecond of the UTC day of `at_us`.
pub(super) fn day_of(at_us: i64) -> i64 {
    at_us - at_us.rem_euclid(DAY_US)
}

/// What the open holds of card account `account` (with `totals`) set aside
/// at `now_us`.
pub(super) fn held(
    conn: &Connection,
    account: i64,
    totals: &HoldTotals,
    now_us: i64,
) -> sql::Result<i64> {
    let stale: i64 = conn
        .prepare_cached(STALE)?
        .query_row(params![account, now_us], |r| r.get(0))?;
    Ok(totals.held - stale)
}

/// A new open hold of `amount` on `account`, created at `now_us`.
pub(super) fn added(conn: &Connection, account: i64, amount: i64, now_us: i64) -> sql::Result<()> {
    // A hold of a day before the account's newest (the clock went back) is
    // not in the day's totals: they stay those of the newest day.
    conn.prepare_cached(
        "UPDATE prepaid_accounts SET held = held + ?2,
             day_amount = CASE WHEN day_start_us = ?3 THEN day_amount + ?2
                               WHEN day_start_us < ?3 THEN ?2 ELSE day_amount END,
             day_count = CASE WHEN day_start_us = ?3 THEN day_count + 1
                              WHEN day_start_us < ?3 THEN 1 ELSE day_count END,
             day_start_us = CASE WHEN day_start_us < ?3 THEN ?3 ELSE day_start_us END
         WHERE id = ?1",
    )?
    .execute(params![account, amount, day_of(now_us)])?;
    Ok(())
}

/// `amount` of an open hold of `account` no longer held (captured or
/// released, in part or in full).
pub(super) fn unheld(conn: &Connection, account: i64, amount: i64) -> sql::Result<()> {
    conn.prepare_cached("UPDATE prepaid_accounts SET held = held - ?2 WHERE id = ?1")?
        .execute(params![account, amount])?;
    Ok(())
}

/// A hold of `amount` on `account`, created at `created_at_us`, released in
/// full: it no longer counts for its day.
pub(super) fn released(
    conn: &Connection,
    account: i64,
    amount: i64,
    created_at_us: i64,
) -> sql::Result<()> {
    conn.prepare_cached(
        "UPDATE prepaid_accounts SET day_amount = day_amount - ?2, day_count = day_count - 1
         WHERE id = ?1 AND day_start_us = ?3",
    )?
    .execute(params![account, amount, day_of(created_at_us)])?;
    Ok(())
}

/// Every hold of `from` moved to the new account `to` (a replacement):
/// their totals move with them.
pub(super) fn moved(conn: &Connection, from: i64, to: i64) -> sql::Result<()> {
    conn.prepare_cached(
        "UPDATE prepaid_accounts SET
             held = (SELECT held FROM prepaid_accounts WHERE id = ?1),
             day_start_us = (SELECT day_start_us FROM prepaid_accounts WHERE id = ?1),
             day_amount = (SELECT day_amount FROM prepaid_accounts WHERE id = ?1),
             day_count = (SELECT day_count FROM prepaid_accounts WHERE id = ?1)
         WHERE id = ?2",
    )?
    .execute(params![from, to])?;
    conn.prepare_cached(
        "UPDATE prepaid_accounts SET held = 0, day_amount = 0, day_count = 0 WHERE id = ?1",
    )?
    .execute([from])?;
    Ok(())
}

/// Marks open holds past their expiry at `now_us` as expired, taking them
/// out of their accounts' `held`; returns how many.
pub(super) fn expire(conn: &Connection, now_us: i64) -> sql::Result<usize> {
    conn.execute(
        "UPDATE prepaid_accounts SET held = held - (SELECT SUM(h.remaining) FROM prepaid_holds h
             WHERE h.account = prepaid_accounts.id AND h.state = 'open' AND h.expires_at_us <= ?1)
         WHERE id IN (SELECT account FROM prepaid_holds WHERE state = 'open' AND expires_at_us <= ?1)",
        [now_us],
    )?;
    conn.execute(
        "UPDATE prepaid_holds SET state = 'expired' WHERE state = 'open' AND expires_at_us <= ?1",
        [now_us],
    )
}

/// The audit's checks of the totals against the holds: each query lists
/// the card accounts whose column differs, with the difference.
pub(super) const AUDITS: [(&str, &str); 3] = [
    (
        "card account's open-holds total differs from the sum of its open holds",
        "SELECT id, d FROM (SELECT a.id, CAST(a.held - COALESCE((SELECT SUM(h.remaining)
             FROM prepaid_holds h WHERE h.account = a.id AND h.state = 'open'), 0) AS BIGINT) AS d
         FROM prepaid_accounts a WHERE a.kind = 'card') AS t WHERE d <> 0",
    ),
    (
        "card account's day amount differs from the sum of its day's holds not released",
        "SELECT id, d FROM (SELECT a.id, CAST(a.day_amount - COALESCE((SELECT SUM(h.amount)
             FROM prepaid_holds h
             WHERE h.account = a.id AND h.state <> 'released' AND h.created_at_us >= a.day_start_us
               AND h.created_at_us < a.day_start_us + 86400000000), 0) AS BIGINT) AS d
         FROM prepaid_accounts a WHERE a.kind = 'card') AS t WHERE d <> 0",
    ),
    (
        "card account's day count differs from the number of its day's holds not released",
        "SELECT id, d FROM (SELECT a.id, a.day_count - (SELECT COUNT(*) FROM prepaid_holds h
             WHERE h.account = a.id AND h.state <> 'released' AND h.created_at_us >= a.day_start_us
               AND h.created_at_us < a.day_start_us + 86400000000) AS d
         FROM prepaid_accounts a WHERE a.kind = 'card') AS t WHERE d <> 0",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_utc_midnight() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_US - 1), 0);
        assert_eq!(day_of(DAY_US), DAY_US);
        assert_eq!(day_of(-1), -DAY_US);
    }
}
