//! Stand-in and store-and-forward: institution states and the circuit
//! breaker, balance files and shadow balances, cardhub's own decisions when
//! an account system cannot answer, and the durable queue that tells the
//! account system about them afterwards.

pub mod balance_file;
pub mod balances;
pub mod config;
pub mod drop_folder;
mod movements;
pub mod policy;
pub mod probe;
pub mod replay;
pub mod saf;
pub mod shadow;
pub mod state;

use crate::iso8583::fields::ResponseCode;
use crate::store::sql;
use crate::store::sql::Connection;

use saf::NewItem;
use shadow::{Base, Movement, MovementUpdate};

/// What a decision changes besides its journal row, written in the same
/// transaction: a shadow-balance movement (new or changed), the balance an
/// online answer returned, a SAF item.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    pub movement: Option<Movement>,
    /// `movement` is a stand-in hold the shadow book made: checked again in
    /// the transaction before it is written ([`shadow::verify_hold`]).
    pub recheck: Option<Recheck>,
    pub movement_update: Option<MovementUpdate>,
    /// (institution, account, balance).
    pub online_balance: Option<(String, String, Base)>,
    pub saf: Option<NewItem>,
}

/// How a stand-in hold is checked again in the store, and what a refusal
/// there answers.
#[derive(Debug, Clone, Copy)]
pub struct Recheck {
    /// The time the hold was decided at (holds expiring count until then).
    pub now_us: i64,
    /// The answer when the store knows no balance for the account.
    pub unavailable: ResponseCode,
    /// Whether the SAF item stays when the hold is refused: it tells the
    /// account system of every decision (after a failed call), not of
    /// approvals only.
    pub saf_on_decline: bool,
}

impl Effects {
    /// Writes them on the store's write connection.
    pub fn write(&self, c: &Connection) -> sql::Result<()> {
        if let Some(m) = &self.movement {
            shadow::insert_movement(c, m)?;
        }
        if let Some(update) = &self.movement_update {
            shadow::update_movement(c, update)?;
        }
        if let Some((institution, account, base)) = &self.online_balance {
            shadow::upsert_online_balance(c, institution, account, *base)?;
        }
        if let Some(item) = &self.saf {
            saf::enqueue(c, item)?;
        }
        Ok(())
    }
}
