//! The recheck step, inside the journal row's transaction: a stand-in
//! approval this hub made from its own memory (shadow book, daily
//! counters) is checked again against what every hub instance on the
//! store has written — the card's shared daily totals, then the account's
//! shadow balance under its row lock. What fails there is journaled and
//! answered as a decline instead; the answer is what the transaction wrote.

use super::limits::DailyCheck;
use crate::iso8583::codes;
use crate::journal::JournalEntry;
use crate::journal::decision::{DecidedBy, Decision};
use crate::standin::Effects;
use crate::standin::shadow::{self, Refused};
use crate::store::sql;

/// Checks a stand-in approval again; when it no longer holds, turns
/// `entry`'s decision into the decline, counting nothing, and drops the
/// effects only an approval has. Whether it did.
///
/// # Errors
/// The database's error (the job fails: nothing is written, the answer is 96).
pub(super) fn recheck(
    c: &sql::Connection,
    entry: &mut JournalEntry,
    effects: &mut Effects,
    daily: Option<&DailyCheck>,
) -> sql::Result<bool> {
    let mut refusal = match daily {
        Some(check) => check.run(c)?.map(|(code, reason)| (code, reason, None)),
        None => None,
    };
    if refusal.is_none()
        && let (Some(recheck), Some(movement)) = (effects.recheck, &effects.movement)
    {
        refusal = match shadow::verify_hold(c, movement, recheck.now_us)? {
            Ok(_) => None,
            Err(Refused::Short(shadow)) => Some((
                codes::INSUFFICIENT_FUNDS,
                format!(
                    "shadow balance {} is short of {}: the money was spent by another instance's approval",
                    shadow.available, movement.remaining
                ),
                Some(crate::account::Balances {
                    available: shadow.available,
                    ledger: shadow.available,
                }),
            )),
            Err(Refused::NoBalance | Refused::Policy(_)) => Some((
                recheck.unavailable,
                "no balance known for the account in the store".to_string(),
                None,
            )),
        };
    }
    let Some((code, reason, balances)) = refusal else {
        return Ok(false);
    };
    entry.decision = Decision {
        balances,
        decided_by: DecidedBy::StandIn,
        adapter: entry.decision.adapter.take(),
        ..Decision::rule(code, format!("stand-in, rechecked in the store: {reason}"))
    };
    entry.counted_minor = 0;
    entry.counted_count = 0;
    if !effects.recheck.is_some_and(|r| r.saf_on_decline) {
        effects.saf = None;
    }
    effects.movement = None;
    effects.recheck = None;
    Ok(true)
}
