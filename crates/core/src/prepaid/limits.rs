//! A programme's per-card daily limits: how much, and how many times, a
//! card of the programme may authorize purchases and cash in one UTC day.
//! Checked by the ledger when it sets a hold aside, on top of the hub's
//! limits profiles (which every card has); what counts is the card's holds
//! of the day that were not released (a reversed authorization gives its
//! share back).

use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};

use super::PrepaidError;

/// A programme's per-card daily limits; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyLimits {
    /// Minor units authorized per card and UTC day.
    pub amount: Option<u64>,
    /// Authorizations per card and UTC day.
    pub count: Option<u32>,
}

/// One UTC day in microseconds.
const DAY_US: i64 = 86_400_000_000;

/// The refusal when a hold of `amount` on card account `card` (of
/// The amount and count of a card account's holds of the day not released
/// (from the index `prepaid_holds_day` alone).
pub(super) const USED_TODAY: &str =
    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT), COUNT(*) FROM prepaid_holds
     WHERE account = ?1 AND created_at_us >= ?2 AND state <> 'released'";

/// `programme`) at `now_us` would pass one of the programme's daily limits.
pub(super) fn exceeded(
    conn: &Connection,
    card: i64,
    name: &str,
    programme: &str,
    amount: i64,
    now_us: i64,
) -> sql::Result<Option<PrepaidError>> {
    let limits: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT daily_amount, daily_count FROM prepaid_programmes WHERE id = ?1")?
        .query_row([programme], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((max_amount, max_count)) = limits.filter(|(a, c)| a.is_some() || c.is_some()) else {
        return Ok(None);
    };
    let day_start = now_us - now_us.rem_euclid(DAY_US);
    let (used, count): (i64, i64) = conn
        .prepare_cached(USED_TODAY)?
        .query_row(params![card, day_start], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let refusal = |what, limit, used| PrepaidError::DailyLimit {
        account: name.to_string(),
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

#[cfg(test)]
mod tests {
    use super::super::db::HELD;
    use super::USED_TODAY;
    use crate::store::Store;

    /// The two sums every authorization reads use their index alone, never
    /// a hold's row.
    #[test]
    fn the_hold_sums_read_covering_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        for (sql, index) in [
            (HELD, "prepaid_holds_open"),
            (USED_TODAY, "prepaid_holds_day"),
        ] {
            let plan: Vec<String> = store
                .read(move |c| {
                    c.prepare_cached(&format!("EXPLAIN QUERY PLAN {sql}"))?
                        .query_map([1, 2], |r| r.get(3))?
                        .collect()
                })
                .unwrap();
            let covering = format!("USING COVERING INDEX {index}");
            assert!(
                plan.iter().any(|p| p.contains(&covering)),
                "{sql}: {plan:?}"
            );
        }
    }
}
