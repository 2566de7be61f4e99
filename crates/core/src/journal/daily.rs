//! Per-card daily totals every hub instance on one store sees: the
//! `daily_totals` row of a card, business day and limit channel.
//!
//! # What a row holds
//!
//! The sum of the journal's `counted_minor` / `counted_count` for the card,
//! the day and the channel (`other` counts as `pos`), plus the reservations
//! of online calls under way — and, in `stand_in_*`, the part of stand-in's
//! rows (stand-in's own, offline, limits). It moves in the transaction of
//! each journal row ([`add_row`], called by `journal::insert`), so it is
//! never behind the journal; migration 14 filled it from the journal
//! written before.
//!
//! # How the limits hold across instances
//!
//! - An online request reserves its amount and one count with [`reserve`]
//!   in the transaction of its call intent, before the account system is
//!   called: one conditional upsert, so the check and the reservation are
//!   one step for every instance (PostgreSQL locks the row until commit;
//!   SQLite has one writer). The call intent carries the reservation; the
//!   transaction of the decision's row clears the intent and gives it back
//!   ([`release`]), and the row then adds what it counts. At start the
//!   intents a stopped hub left are journaled as counting nothing, and their
//!   reservations given back.
//! - A stand-in approval is checked with [`check`] in the transaction that
//!   writes it: a conditional upsert that changes nothing but locks the row
//!   and fails when the approval would pass a limit — then the approval
//!   becomes a decline. The journal row then adds the approval.
//!
//! A reservation is never lost to a crash (the intent carries it) and never
//! counted twice; what a crash can leave is only what the journal has.
//! Old days' rows stay (one per card, day and channel); nothing reads them.

use crate::account::Channel;
use crate::store::sql::{self, Connection, OptionalExtension, params};

/// The limit channel of a journal row's `channel` column: ATM its own,
/// everything else POS.
pub fn limit_channel(channel: &str) -> &'static str {
    if channel == Channel::Atm.as_str() {
        "atm"
    } else {
        "pos"
    }
}

/// Whose totals: a card (its PAN hash), a business day (`YYYY-MM-DD`) and a
/// limit channel (`atm` | `pos`).
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub pan_hash: &'a [u8],
    pub business_day: &'a str,
    pub channel: &'a str,
}

/// A daily amount and count a request must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayLimits {
    pub amount: u64,
    pub count: u32,
}

/// Which daily limit a request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The daily amount.
    Amount,
    /// The daily count.
    Count,
    /// Stand-in's own daily amount.
    StandInAmount,
    /// Stand-in's own daily count.
    StandInCount,
}

/// A row's totals: (amount, count, stand-in amount, stand-in count).
pub type Totals = (i64, i64, i64, i64);

/// Adds `amount` and `count` to a card's totals for the day (negative
/// undoes), and to its stand-in part when `stand_in`.
pub fn add(
    c: &Connection,
    key: Key<'_>,
    amount: i64,
    count: i64,
    stand_in: bool,
) -> sql::Result<()> {
    let (s_amount, s_count) = if stand_in { (amount, count) } else { (0, 0) };
    c.prepare_cached(
        "INSERT INTO daily_totals (pan_hash, business_day, channel, amount_minor, txn_count, \
         stand_in_minor, stand_in_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (pan_hash, business_day, channel) DO UPDATE SET \
         amount_minor = daily_totals.amount_minor + excluded.amount_minor, \
         txn_count = daily_totals.txn_count + excluded.txn_count, \
         stand_in_minor = daily_totals.stand_in_minor + excluded.stand_in_minor, \
         stand_in_count = daily_totals.stand_in_count + excluded.stand_in_count",
    )?
    .execute(params![
        key.pan_hash,
        key.business_day,
        key.channel,
        amount,
        count,
        s_amount,
        s_count
    ])
    .map(|_| ())
}

/// What a journal row counts, added to its card's totals (called for every
/// row the journal gets). `decided_by` says whether it is stand-in's.
pub fn add_row(
    c: &Connection,
    pan_hash: Option<&[u8]>,
    business_day: &str,
    channel: &str,
    counted: (i64, i64),
    stand_in: bool,
) -> sql::Result<()> {
    match pan_hash {
        Some(pan_hash) if counted != (0, 0) => {
            let key = Key {
                pan_hash,
                business_day,
                channel: limit_channel(channel),
            };
            add(c, key, counted.0, counted.1, stand_in)
        }
        _ => Ok(()),
    }
}

/// Gives back a reservation (an online call's, once its decision is
/// journaled or its hub stopped).
pub fn release(c: &Connection, key: Key<'_>, amount: i64, count: i64) -> sql::Result<()> {
    add(c, key, -amount, -count, false)
}

/// Reserves `amount` and one count when they fit `limits` with every
/// instance's approvals and reservations: the check and the reservation in
/// one statement.
///
/// # Errors
/// The database's error; `Ok(Err(over))` when the request does not fit
/// (nothing is reserved then).
pub fn reserve(
    c: &Connection,
    key: Key<'_>,
    amount: u64,
    limits: DayLimits,
) -> sql::Result<Result<(), Over>> {
    if amount > limits.amount {
        return Ok(Err(Over::Amount));
    }
    if limits.count == 0 {
        return Ok(Err(Over::Count));
    }
    let changed = c
        .prepare_cached(
            "INSERT INTO daily_totals (pan_hash, business_day, channel, amount_minor, txn_count, \
             stand_in_minor, stand_in_count) VALUES (?1, ?2, ?3, ?4, 1, 0, 0) \
             ON CONFLICT (pan_hash, business_day, channel) DO UPDATE SET \
             amount_minor = daily_totals.amount_minor + excluded.amount_minor, \
             txn_count = daily_totals.txn_count + 1 \
             WHERE daily_totals.amount_minor + excluded.amount_minor <= ?5 \
             AND daily_totals.txn_count < ?6",
        )?
        .execute(params![
            key.pan_hash,
            key.business_day,
            key.channel,
            as_i64(amount),
            as_i64(limits.amount),
            i64::from(limits.count)
        ])?;
    if changed == 1 {
        return Ok(Ok(()));
    }
    Ok(Err(which(c, key, amount, limits, None)?))
}

/// Checks that a stand-in approval of `amount` fits the daily `limits` and
/// stand-in's own `stand_in` limits with every instance's approvals and
/// reservations, locking the card's row for the rest of the transaction
/// (the approval's journal row then adds it). Changes nothing.
///
/// # Errors
/// The database's error; `Ok(Err(over))` when it does not fit.
pub fn check(
    c: &Connection,
    key: Key<'_>,
    amount: u64,
    limits: DayLimits,
    stand_in: DayLimits,
) -> sql::Result<Result<(), Over>> {
    let changed = c
        .prepare_cached(
            "INSERT INTO daily_totals (pan_hash, business_day, channel, amount_minor, txn_count, \
             stand_in_minor, stand_in_count) VALUES (?1, ?2, ?3, 0, 0, 0, 0) \
             ON CONFLICT (pan_hash, business_day, channel) DO UPDATE SET \
             txn_count = daily_totals.txn_count \
             WHERE daily_totals.amount_minor + ?4 <= ?5 AND daily_totals.txn_count < ?6 \
             AND daily_totals.stand_in_minor + ?4 <= ?7 AND daily_totals.stand_in_count < ?8",
        )?
        .execute(params![
            key.pan_hash,
            key.business_day,
            key.channel,
            as_i64(amount),
            as_i64(limits.amount),
            i64::from(limits.count),
            as_i64(stand_in.amount),
            i64::from(stand_in.count)
        ])?;
    // A new row (nothing counted yet) passes the statement unchecked: the
    // limits themselves must still admit one request of this amount.
    if changed == 1
        && amount <= limits.amount.min(stand_in.amount)
        && limits.count.min(stand_in.count) > 0
    {
        return Ok(Ok(()));
    }
    Ok(Err(which(c, key, amount, limits, Some(stand_in))?))
}

/// A card's totals for a day, if it has a row.
///
/// # Errors
/// The database's error.
pub fn totals(c: &Connection, key: Key<'_>) -> sql::Result<Option<Totals>> {
    c.prepare_cached(
        "SELECT amount_minor, txn_count, stand_in_minor, stand_in_count FROM daily_totals \
         WHERE pan_hash = ?1 AND business_day = ?2 AND channel = ?3",
    )?
    .query_row(params![key.pan_hash, key.business_day, key.channel], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .optional()
}

/// Which limit a request that did not fit passes.
fn which(
    c: &Connection,
    key: Key<'_>,
    amount: u64,
    limits: DayLimits,
    stand_in: Option<DayLimits>,
) -> sql::Result<Over> {
    let (total, count, _, s_count) = totals(c, key)?.unwrap_or_default();
    let amount = as_i64(amount);
    Ok(if count >= i64::from(limits.count) {
        Over::Count
    } else if total.saturating_add(amount) > as_i64(limits.amount) {
        Over::Amount
    } else if stand_in.is_some_and(|s| s_count >= i64::from(s.count)) {
        Over::StandInCount
    } else {
        Over::StandInAmount
    })
}

/// A limit or amount as the store's integer (limits past `i64::MAX` are no
/// limit).
fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const LIMITS: DayLimits = DayLimits {
        amount: 2_000,
        count: 3,
    };
    const STAND_IN: DayLimits = DayLimits {
        amount: 600,
        count: 2,
    };

    fn key() -> Key<'static> {
        Key {
            pan_hash: &[7; 32],
            business_day: "2026-12-07",
            channel: "atm",
        }
    }

    #[test]
    fn reserve_check_and_release_keep_every_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        store
            .write_blocking(|c| {
                assert_eq!(reserve(c, key(), 2_001, LIMITS)?, Err(Over::Amount));
                assert_eq!(reserve(c, key(), 400, LIMITS)?, Ok(()));
                assert_eq!(reserve(c, key(), 400, LIMITS)?, Ok(()));
                // 800 reserved: 1,300 more would pass the amount; nothing changes.
                assert_eq!(reserve(c, key(), 1_300, LIMITS)?, Err(Over::Amount));
                assert_eq!(totals(c, key())?, Some((800, 2, 0, 0)));
                release(c, key(), 400, 1)?;
                // A stand-in approval: checked, then its row adds it.
                assert_eq!(check(c, key(), 500, LIMITS, STAND_IN)?, Ok(()));
                add_row(c, Some(&[7; 32]), "2026-12-07", "atm", (500, 1), true)?;
                assert_eq!(totals(c, key())?, Some((900, 2, 500, 1)));
                assert_eq!(
                    check(c, key(), 200, LIMITS, STAND_IN)?,
                    Err(Over::StandInAmount)
                );
                assert_eq!(check(c, key(), 100, LIMITS, STAND_IN)?, Ok(()));
                add_row(c, Some(&[7; 32]), "2026-12-07", "other", (100, 1), false)?;
                assert_eq!(totals(c, key())?, Some((900, 2, 500, 1)), "other is pos");
                assert_eq!(reserve(c, key(), 50, LIMITS)?, Ok(()));
                assert_eq!(reserve(c, key(), 1, LIMITS)?, Err(Over::Count));
                assert_eq!(check(c, key(), 1, LIMITS, STAND_IN)?, Err(Over::Count));
                // A new card's first stand-in request: only the limits themselves.
                let fresh = Key {
                    pan_hash: &[8; 32],
                    ..key()
                };
                assert_eq!(
                    check(c, fresh, 700, LIMITS, STAND_IN)?,
                    Err(Over::StandInAmount)
                );
                assert_eq!(totals(c, fresh)?, Some((0, 0, 0, 0)));
                Ok(())
            })
            .unwrap();
    }
}
