//! A programme's per-card daily limits: how much, and how many times, a
//! card of the programme may authorize purchases and cash in one UTC day.
//! Checked by the ledger when it sets a hold aside, on top of the hub's
//! limits profiles (which every card has); what counts is the card's holds
//! of the day that were not released (a reversed authorization gives its
//! share back).

use crate::params;
use crate::store::sql::{self, Connection};

use super::PrepaidError;
use super::db::CardAccount;
use super::holds::day_of;

/// A programme's per-card daily limits; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyLimits {
    /// Minor units authorized per card and UTC day.
    pub amount: Option<u64>,
    /// Authorizations per card and UTC day.
    pub count: Option<u32>,
}

/// The amount and count of a card account's holds created from `?2` on and
/// not released: what the day's totals of the account hold, summed when
/// the clock went back behind the account's newest hold.
pub(super) const USED_SINCE: &str =
    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT), COUNT(*) FROM prepaid_holds
     WHERE account = ?1 AND created_at_us >= ?2 AND state <> 'released'";

/// The refusal when a hold of `amount` on `card` at `now_us` would pass
/// one of its programme's daily limits.
pub(super) fn exceeded(
    conn: &Connection,
    card: &CardAccount,
    amount: i64,
    now_us: i64,
) -> sql::Result<Option<PrepaidError>> {
    let (max_amount, max_count) = card.daily;
    if max_amount.is_none() && max_count.is_none() {
        return Ok(None);
    }
    let (used, count) = used_today(conn, card, now_us)?;
    let refusal = |what, limit, used| PrepaidError::DailyLimit {
        account: card.name.clone(),
        what,
        limit,
        used,
    };
    if let Some(max) = max_count
        && count >= max
    {
        return Ok(Some(refusal("count", max, count)));
    }
    if let Some(max) = max_amount
        && used + amount > max
    {
        return Ok(Some(refusal("amount", max, used)));
    }
    Ok(None)
}

/// The amount and count of `card`'s holds of the UTC day of `now_us` not
/// released: the account's day totals when they are of that day, nothing
/// when they are of an earlier day.
fn used_today(conn: &Connection, card: &CardAccount, now_us: i64) -> sql::Result<(i64, i64)> {
    let today = day_of(now_us);
    let totals = &card.totals;
    if today == totals.day_start_us {
        Ok((totals.day_amount, totals.day_count))
    } else if today > totals.day_start_us {
        Ok((0, 0))
    } else {
        conn.prepare_cached(USED_SINCE)?
            .query_row(params![card.id, today], |r| Ok((r.get(0)?, r.get(1)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::holds::STALE;
    use super::USED_SINCE;
    use crate::store::Store;

    /// The two sums over a card's holds the ledger still reads seek the
    /// card's holds in an index (the stale holds every authorization reads:
    /// from the index alone), never scan the table.
    #[test]
    fn the_hold_sums_seek_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        for (sql, index) in [
            (
                STALE,
                "USING COVERING INDEX prepaid_holds_open (account=? AND state=? AND expires_at_us<?)",
            ),
            (USED_SINCE, "USING INDEX prepaid_holds_open (account=?)"),
        ] {
            let plan: Vec<String> = store
                .read(move |c| {
                    c.prepare_cached(&format!("EXPLAIN QUERY PLAN {sql}"))?
                        .query_map([1, 2], |r| r.get(3))?
                        .collect()
                })
                .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{sql}: {plan:?}");
        }
    }
}
