//! The shadow book's writes of movements and online balances, run in the
//! transaction of the journal row that causes them (see [`super::shadow`]).

use crate::params;
use crate::store::sql::{self, Connection};

use super::shadow::{Base, Movement, MovementState};
use crate::journal::txn_id::TxnId;

/// Writes a new movement (in the journal row's transaction).
pub fn insert_movement(c: &Connection, m: &Movement) -> sql::Result<()> {
    c.prepare_cached(
        "INSERT INTO movements (txn_id, institution, account, kind, amount_minor, remaining_minor, \
         approved_by, created_us, expires_us, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        m.txn_id.0,
        m.institution,
        m.account,
        m.kind.as_str(),
        m.amount,
        m.remaining,
        m.approved_by,
        m.created_us,
        m.expires_us,
        m.state.as_str()
    ])
    .map(|_| ())
}

/// A movement's new remaining amount and state (a reversal or completion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementUpdate {
    pub institution: String,
    pub account: String,
    pub txn_id: TxnId,
    pub remaining: i64,
    pub state: MovementState,
}

/// Writes a movement's new remaining amount and state.
pub fn update_movement(c: &Connection, u: &MovementUpdate) -> sql::Result<()> {
    c.prepare_cached(
        "UPDATE movements SET remaining_minor = ?4, state = ?5 \
         WHERE institution = ?1 AND account = ?2 AND txn_id = ?3",
    )?
    .execute(params![
        u.institution,
        u.account,
        u.txn_id.0,
        u.remaining,
        u.state.as_str()
    ])
    .map(|_| ())
}

/// Marks a pending credit confirmed (its SAF advice was acknowledged).
pub fn confirm_credit(
    c: &Connection,
    institution: &str,
    account: &str,
    txn_id: TxnId,
) -> sql::Result<()> {
    c.prepare_cached(
        "UPDATE movements SET state = 'confirmed' \
         WHERE institution = ?1 AND account = ?2 AND txn_id = ?3 AND state = 'pending'",
    )?
    .execute(params![institution, account, txn_id.0])
    .map(|_| ())
}

/// Writes the balance an account system returned online.
pub fn upsert_online_balance(
    c: &Connection,
    institution: &str,
    account: &str,
    base: Base,
) -> sql::Result<()> {
    c.prepare_cached(
        "INSERT INTO online_balances (institution, account, available_minor, as_of_us) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (institution, account) DO UPDATE SET available_minor = ?3, as_of_us = ?4 \
         WHERE excluded.as_of_us >= online_balances.as_of_us",
    )?
    .execute(params![institution, account, base.available, base.as_of_us])
    .map(|_| ())
}
