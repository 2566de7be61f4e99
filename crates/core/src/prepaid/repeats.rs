//! What a reference booked before, read in the store job that would book
//! it again: a repeat answers as the first booking did (nothing booked
//! again), other details under the same reference are
//! [`PrepaidError::ReferenceConflict`].

use crate::money::Money;
use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension};

use super::db::{Op, balances_of, current_card};
use super::{Booked, PrepaidError};

/// The entry or hold an earlier call with this reference booked, as a
/// repeat with the card's balances now.
pub(super) fn repeat_of(
    conn: &Connection,
    reference: &str,
    now_us: i64,
) -> sql::Result<Option<Booked>> {
    let found: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, card FROM prepaid_entries WHERE reference = ?1
             UNION ALL SELECT id, account FROM prepaid_holds WHERE reference = ?1",
        )?
        .query_row([reference], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match found {
        Some((id, account)) => {
            let current = current_card(conn, account)?;
            Ok(Some(Booked {
                id,
                balances: balances_of(conn, &current, now_us)?,
                repeat: true,
            }))
        }
        None => Ok(None),
    }
}

/// What an earlier call booked under a reference: an entry, or a hold.
pub(super) struct Prior {
    pub(super) id: i64,
    /// The entry's kind, or `hold`.
    pub(super) kind: String,
    /// The card account it was for (a move's: the card paying).
    pub(super) card: i64,
    /// Its name; `None` for a hold.
    pub(super) name: Option<String>,
    /// Its currency; `None` for a hold.
    pub(super) currency: Option<u16>,
    /// The entry's posting on `card` (a load `+x`, a move `-x`).
    pub(super) amount: Option<i64>,
    /// A move's receiving card.
    pub(super) to: Option<String>,
    /// The card account that replaced `card` (a replacement's new card).
    pub(super) replaced_by: Option<String>,
}

/// What `reference` booked already, with the details its repeat must
/// carry: read in the store job that would book, so a concurrent call with
/// the same reference sees the first one's writes.
pub(super) fn prior(conn: &Connection, reference: &str) -> sql::Result<Option<Prior>> {
    conn.prepare_cached(
        "SELECT e.id, e.kind, e.card, a.name, a.currency,
             (SELECT p.amount FROM prepaid_postings p WHERE p.entry = e.id AND p.account = e.card),
             (SELECT b.name FROM prepaid_postings q JOIN prepaid_accounts b ON b.id = q.account
              WHERE q.entry = e.id AND q.account <> e.card AND b.kind = 'card' LIMIT 1),
             n.name
         FROM prepaid_entries e JOIN prepaid_accounts a ON a.id = e.card
         LEFT JOIN prepaid_accounts n ON n.id = a.replaced_by
         WHERE e.reference = ?1
         UNION ALL SELECT id, 'hold', account, NULL, NULL, NULL, NULL, NULL
         FROM prepaid_holds WHERE reference = ?1",
    )?
    .query_row([reference], |r| {
        Ok(Prior {
            id: r.get(0)?,
            kind: r.get(1)?,
            card: r.get(2)?,
            name: r.get(3)?,
            currency: r.get(4)?,
            amount: r.get(5)?,
            to: r.get(6)?,
            replaced_by: r.get(7)?,
        })
    })
    .optional()
}

/// Whether `prior` booked `amount` (in its currency) on card account
/// `account`, with `sign` on that card (`1` credited, `-1` debited).
pub(super) fn same_money(prior: &Prior, account: &str, amount: &Money, sign: i64) -> bool {
    prior.name.as_deref() == Some(account)
        && prior.currency == Some(amount.currency.numeric)
        && i64::try_from(amount.minor).is_ok_and(|x| prior.amount == Some(sign * x))
}

/// The refusal of a reference booked already for another operation, or
/// with other details.
pub(super) fn conflict(reference: &str) -> PrepaidError {
    PrepaidError::ReferenceConflict {
        reference: reference.to_string(),
    }
}

/// A credit (load or refund) sent again: `None` when `reference` booked
/// nothing yet, a repeat (the card's balances now) when it booked this
/// same credit — kind, card account, amount and currency — and
/// [`PrepaidError::ReferenceConflict`] when it booked anything else.
pub(super) fn credit_repeat(
    conn: &Connection,
    kind: &str,
    reference: &str,
    account: &str,
    amount: &Money,
    now_us: i64,
) -> Op<Option<Booked>> {
    let Some(prior) = prior(conn, reference)? else {
        return Ok(Ok(None));
    };
    if prior.kind != kind || !same_money(&prior, account, amount, 1) {
        return Ok(Err(conflict(reference)));
    }
    let current = current_card(conn, prior.card)?;
    Ok(Ok(Some(Booked {
        id: prior.id,
        balances: balances_of(conn, &current, now_us)?,
        repeat: true,
    })))
}
