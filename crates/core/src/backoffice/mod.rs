//! Back-office queries over the journal: the whole story of one transaction
//! (its row, the rows that refer to it — reversals, retransmissions, late
//! answers —, its shadow-balance movement and its store-and-forward items).
//! Card numbers appear masked only.
//!
//! [`search`] finds transactions by card, account, terminal and the rest;
//! [`institutions`] lists institutions with their state, queue and balances;
//! [`balances`] applies an uploaded balance file and audits the upload;
//! [`saf`] re-queues a dead letter.

pub mod balances;
pub mod institutions;
pub mod saf;
pub mod search;
pub mod search_index;

use crate::store::sql;
use crate::store::sql::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::iso8583::fields::ResponseCode;
use crate::journal::decision::DecidedBy;
use crate::journal::txn_id::TxnId;
use crate::store::{Store, StoreError};

/// One journal row, as operators see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Transaction)]
pub struct JournalRow {
    #[schema(value_type = TxnId)]
    pub txn_id: String,
    #[schema(value_type = crate::journal::Entry)]
    pub entry: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    pub mti: String,
    pub kind: String,
    pub channel: String,
    pub card: Option<String>,
    pub account: Option<String>,
    pub institution: Option<String>,
    /// In the currency's minor units.
    #[schema(minimum = 0)]
    pub amount_minor: i64,
    /// ISO 4217 numeric.
    pub currency: u16,
    pub stan: Option<String>,
    pub rrn: Option<String>,
    pub terminal: Option<String>,
    /// DE 42, the card acceptor id.
    pub merchant: Option<String>,
    /// DE 43, the card acceptor name and location, trimmed.
    pub merchant_name: Option<String>,
    #[schema(value_type = ResponseCode)]
    pub response_code: String,
    pub auth_id: Option<String>,
    #[schema(value_type = DecidedBy)]
    pub decided_by: String,
    pub adapter: Option<String>,
    pub raw_response_code: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Option<TxnId>)]
    pub original_txn_id: Option<String>,
    #[schema(minimum = 0)]
    pub latency_us: i64,
}

/// Its movement against the shadow balance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovementRow {
    pub kind: String,
    pub amount_minor: i64,
    pub remaining_minor: i64,
    pub approved_by: String,
    /// `expired` for an open hold past its expiry.
    pub state: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// One store-and-forward item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SafRow {
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(schema_with = crate::standin::saf::queued_operation)]
    pub operation: String,
    #[schema(value_type = crate::standin::saf::ItemState)]
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
}

/// Everything recorded about one transaction.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Story {
    pub transaction: JournalRow,
    /// Rows that refer to it, in order.
    pub related: Vec<JournalRow>,
    pub movement: Option<MovementRow>,
    /// SAF items of it and of the related rows.
    pub deliveries: Vec<SafRow>,
}

const JOURNAL_COLUMNS: &str = "txn_id, entry, received_at_us, mti, kind, channel, pan_masked, \
     account, institution, amount_minor, currency, stan, rrn, terminal, response_code, auth_id, \
     decided_by, adapter, raw_response_code, reason, original_txn_id, latency_us, merchant, \
     merchant_name";

fn time(us: Option<i64>) -> Option<String> {
    us.and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.to_string())
}

fn journal_row(r: &Row<'_>) -> sql::Result<JournalRow> {
    Ok(JournalRow {
        txn_id: TxnId(r.get(0)?).to_string(),
        entry: r.get(1)?,
        received_at: time(r.get(2)?).unwrap_or_default(),
        mti: r.get(3)?,
        kind: r.get(4)?,
        channel: r.get(5)?,
        card: r.get(6)?,
        account: r.get(7)?,
        institution: r.get(8)?,
        amount_minor: r.get(9)?,
        currency: r.get(10)?,
        stan: r.get(11)?,
        rrn: r.get(12)?,
        terminal: r.get(13)?,
        merchant: r.get(22)?,
        merchant_name: r.get(23)?,
        response_code: r.get(14)?,
        auth_id: r.get(15)?,
        decided_by: r.get(16)?,
        adapter: r.get(17)?,
        raw_response_code: r.get(18)?,
        reason: r.get(19)?,
        original_txn_id: r.get::<Option<i64>>(20)?.map(|id| TxnId(id).to_string()),
        latency_us: r.get(21)?,
    })
}

/// The story of a transaction, or `None` when the journal has no such id.
///
/// # Errors
/// The store's error.
pub fn story(store: &Store, txn_id: TxnId) -> Result<Option<Story>, StoreError> {
    let now_us = jiff::Timestamp::now().as_microsecond();
    store.read(move |c| {
        let Some(transaction) = c
            .prepare_cached(&format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE txn_id = ?1"))?
            .query_row(params![txn_id.0], journal_row)
            .optional()?
        else {
            return Ok(None);
        };
        let related: Vec<JournalRow> = c
            .prepare_cached(&format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal WHERE original_txn_id = ?1 ORDER BY txn_id"
            ))?
            .query_map(params![txn_id.0], journal_row)?
            .collect::<sql::Result<_>>()?;
        let movement = c
            .prepare_cached(
                "SELECT kind, amount_minor, remaining_minor, approved_by, state, expires_us FROM movements \
                 WHERE institution = ?1 AND account = ?2 AND txn_id = ?3",
            )?
            .query_row(
                params![transaction.institution, transaction.account, txn_id.0],
                |r| {
                    let kind: String = r.get(0)?;
                    let state: String = r.get(4)?;
                    let expires: Option<i64> = r.get(5)?;
                    let expired = kind == "hold" && state == "open" && expires.is_some_and(|e| now_us >= e);
                    Ok(MovementRow {
                        kind,
                        amount_minor: r.get(1)?,
                        remaining_minor: r.get(2)?,
                        approved_by: r.get(3)?,
                        state: if expired { "expired".into() } else { state },
                        expires_at: time(expires),
                    })
                },
            )
            .optional()?;
        let mut ids = vec![txn_id.0];
        for row in &related {
            if let Ok(id) = row.txn_id.parse::<TxnId>() {
                ids.push(id.0);
            }
        }
        let mut deliveries = Vec::new();
        let mut items = c.prepare_cached(
            "SELECT seq, operation, state, attempts, last_error, delivered_us FROM saf_queue \
             WHERE txn_id = ?1 ORDER BY seq",
        )?;
        for id in ids {
            for item in items.query_map(params![id], |r| {
                Ok(SafRow {
                    seq: r.get(0)?,
                    operation: r.get(1)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    last_error: r.get(4)?,
                    delivered_at: time(r.get(5)?),
                })
            })? {
                deliveries.push(item?);
            }
        }
        Ok(Some(Story {
            transaction,
            related,
            movement,
            deliveries,
        }))
    })
}
