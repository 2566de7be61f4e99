//! Store-and-forward: the durable per-institution queue of what an account
//! system must still be told — every stand-in decision (as an advice), and
//! every reversal or advice that could not be delivered.
//!
//! Items are written in the same transaction as their journal row. Replay
//! (see `replay`) delivers them in order per account: an item is eligible
//! only when no earlier undelivered item of the same account exists, so a
//! reversal never overtakes its original and one poison item holds back
//! only its own account. After `max_attempts` an item is a dead letter,
//! listed for operators and re-queueable.

use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::account::{AccountRequest, AdviceDecision, Decider, Operation};
use crate::account::{Channel, Kind};
use crate::iso8583::ValueError;
use crate::iso8583::fields::ResponseCode;
use crate::journal;
use crate::journal::decision::DecidedBy;
use crate::journal::txn_id::TxnId;
use crate::money::{Currency, Money, MoneyError};
use crate::store::{Store, StoreError};

/// An item to queue: which operation, for which journal row. The request
/// is rebuilt from that row when it is delivered.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub operation: Operation,
    /// The journal row it delivers.
    pub txn_id: TxnId,
    /// The id the account system sees when it is not `txn_id`: an advice
    /// about a transaction the account system was already asked about
    /// under `txn_id` is a request of its own, naming `txn_id` as its original.
    pub request_id: Option<TxnId>,
    /// Not sent before this time (µs since the epoch): while the online
    /// call it reports on may still reach the account system.
    pub not_before_us: Option<i64>,
    pub institution: String,
    pub account: String,
}

impl NewItem {
    /// An item sent under its journal row's id.
    pub fn new(operation: Operation, txn_id: TxnId, request: &AccountRequest) -> NewItem {
        NewItem {
            operation,
            txn_id,
            request_id: None,
            not_before_us: None,
            institution: request.institution.clone(),
            account: request.account.clone(),
        }
    }

    /// An item about `txn_id`, which the account system was asked about
    /// online (and failed, was late, or the hub stopped under way): sent
    /// under an id of its own, `request_id`, naming `txn_id` as its
    /// original; held until `not_before_us` while that call may still reach
    /// the account system.
    pub fn after_call(
        operation: Operation,
        txn_id: TxnId,
        request_id: TxnId,
        institution: String,
        account: String,
        not_before_us: Option<i64>,
    ) -> NewItem {
        NewItem {
            operation,
            txn_id,
            request_id: Some(request_id),
            not_before_us,
            institution,
            account,
        }
    }
}

/// Where a queued item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ItemState {
    /// Waiting for its (next) delivery.
    Pending,
    /// The account system took it.
    Delivered,
    /// Refused, or out of attempts: waits for an operator's requeue.
    Dead,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Delivered => "delivered",
            ItemState::Dead => "dead",
        }
    }
}

/// The schema of an item's operation: the operations an item delivers
/// (those [`Item::operation`] tells apart).
pub(crate) fn queued_operation() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            [Operation::Advice, Operation::Reverse].map(Operation::as_str),
        ))
        .build()
}

/// A queued item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = QueuedItem)]
pub struct Item {
    #[schema(minimum = 1)]
    pub seq: i64,
    pub institution: String,
    pub account: String,
    #[schema(schema_with = queued_operation)]
    pub operation: &'static str,
    #[schema(value_type = TxnId)]
    pub txn_id: String,
    /// The id the account system sees, when not `txn_id` (which it then names as original).
    #[schema(value_type = Option<TxnId>)]
    pub request_id: Option<String>,
    #[schema(value_type = ItemState)]
    pub state: String,
    pub attempts: u32,
    pub next_attempt_us: i64,
    pub last_error: Option<String>,
    /// The last answer's code: DE 39 as the adapter mapped it, and the
    /// account system's own, e.g. `94 (913)`.
    pub last_code: Option<String>,
    pub enqueued_us: i64,
    pub delivered_us: Option<i64>,
}

impl Item {
    pub fn operation(&self) -> Operation {
        match self.operation {
            "reverse" => Operation::Reverse,
            _ => Operation::Advice,
        }
    }
}

/// What an account system's answer to a delivery of an item means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// A success the adapter mapped (00; for a Reverse also 25, the
    /// account system holds nothing of the original to undo): delivered.
    Settled,
    /// Issuer unavailable (91) or system error (96): worth sending again.
    Transient,
    /// Any other code: the same request can never become a success.
    Refused,
}

impl Answered {
    /// The meaning of `code` (DE 39, as the adapter mapped the answer) for `operation`.
    pub fn of(operation: Operation, code: ResponseCode) -> Answered {
        use crate::iso8583::codes;
        match code {
            c if c.is_approval() => Answered::Settled,
            c if c == codes::ORIGINAL_NOT_FOUND && operation == Operation::Reverse => {
                Answered::Settled
            }
            c if c == codes::ISSUER_UNAVAILABLE || c == codes::SYSTEM_ERROR => Answered::Transient,
            _ => Answered::Refused,
        }
    }
}

/// Why an item's request cannot be rebuilt from its journal row (the item
/// then becomes a dead letter).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The item's transaction id is not one.
    #[error("bad transaction id {0:?}")]
    TxnId(String),
    /// Reading the journal failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The journal has no row for the item.
    #[error("no journal row {0}")]
    NoJournalRow(String),
    #[error("unknown kind {0:?}")]
    Kind(String),
    #[error("unknown channel {0:?}")]
    Channel(String),
    #[error("{0}")]
    Currency(#[from] MoneyError),
    #[error("{0}")]
    ResponseCode(#[from] ValueError),
}

/// The request an item delivers, rebuilt from its journal row, with a
/// deadline for this attempt; and whether it reports an approved credit
/// (which counts once delivered).
///
/// # Errors
/// [`RequestError`]: a row that is missing or no longer reads.
pub fn request_for(
    store: &Store,
    item: &Item,
    deadline: Instant,
) -> Result<(AccountRequest, bool), RequestError> {
    let txn_id: TxnId = item
        .txn_id
        .parse()
        .map_err(|_| RequestError::TxnId(item.txn_id.clone()))?;
    let row = journal::recorded(store, txn_id)?
        .ok_or_else(|| RequestError::NoJournalRow(item.txn_id.clone()))?;
    let kind = Kind::parse(&row.kind).ok_or_else(|| RequestError::Kind(row.kind.clone()))?;
    let channel =
        Channel::parse(&row.channel).ok_or_else(|| RequestError::Channel(row.channel.clone()))?;
    let currency = Currency::from_numeric(row.currency)?;
    let code = ResponseCode::new(&row.response_code)?;
    let decision = (item.operation() == Operation::Advice).then(|| {
        // A switch advice reports the switch's own DE 39 (kept as its raw code).
        let switch = row.mti == "0120" || row.mti == "0220";
        AdviceDecision {
            code: match &row.raw_code {
                Some(raw) if switch => ResponseCode::new(raw).unwrap_or(code),
                _ => code,
            },
            decided_by: match (DecidedBy::parse(&row.decided_by), switch) {
                (Some(DecidedBy::StandIn), _) => Decider::StandIn,
                (_, true) => Decider::Switch,
                _ => Decider::Hub,
            },
            reason: row.reason.clone(),
        }
    });
    let credit = matches!(kind, Kind::Load | Kind::Refund) && code.is_approval();
    // An advice with an id of its own names the transaction it reports on.
    let (transaction_id, original_transaction_id) = match &item.request_id {
        Some(id) => (id.clone(), Some(item.txn_id.clone())),
        None => (
            item.txn_id.clone(),
            row.original_txn_id.map(|id| id.to_string()),
        ),
    };
    let request = AccountRequest {
        transaction_id,
        institution: item.institution.clone(),
        account: item.account.clone(),
        card: row.pan_masked.unwrap_or_default(),
        kind,
        financial: false,
        channel,
        amount: Money::new(row.amount_minor.max(0) as u64, currency),
        terminal: row.terminal,
        merchant: row.merchant,
        merchant_name: row.merchant_name,
        transmission_time: row.transmission_time,
        rrn: row.rrn,
        original_transaction_id,
        decision,
        clear_pan: None,
        listen_until: None,
        decision_row: None,
        deadline,
    };
    Ok((request, credit))
}

/// Queues an item (in the journal row's transaction).
pub fn enqueue(c: &Connection, item: &NewItem) -> sql::Result<()> {
    let now = Timestamp::now().as_microsecond();
    c.prepare_cached(
        "INSERT INTO saf_queue (institution, account, operation, txn_id, request_id, state, \
         next_attempt_us, enqueued_us) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
    )?
    .execute(params![
        item.institution,
        item.account,
        item.operation.as_str(),
        item.txn_id.0,
        item.request_id.map(|id| id.0),
        item.not_before_us.unwrap_or(now).max(now),
        now
    ])
    .map(|_| ())
}

/// Makes the held advices about `txn_id` due now: the online call they
/// waited for has ended (answered late, or given up).
pub fn release(c: &Connection, txn_id: TxnId) -> sql::Result<()> {
    c.prepare_cached(
        "UPDATE saf_queue \
         SET next_attempt_us = CASE WHEN next_attempt_us < ?2 THEN next_attempt_us ELSE ?2 END \
         WHERE txn_id = ?1 AND request_id IS NOT NULL AND state = 'pending' AND attempts = 0",
    )?
    .execute(params![txn_id.0, Timestamp::now().as_microsecond()])
    .map(|_| ())
}

const COLUMNS: &str = "seq, institution, account, operation, txn_id, state, attempts, next_attempt_us, \
     last_error, enqueued_us, delivered_us, request_id, last_code";

fn item(r: &sql::Row<'_>) -> sql::Result<Item> {
    let operation: String = r.get(3)?;
    Ok(Item {
        seq: r.get(0)?,
        institution: r.get(1)?,
        account: r.get(2)?,
        operation: if operation == "reverse" {
            "reverse"
        } else {
            "advice"
        },
        txn_id: TxnId(r.get(4)?).to_string(),
        request_id: r.get::<Option<i64>>(11)?.map(|id| TxnId(id).to_string()),
        state: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_us: r.get(7)?,
        last_error: r.get(8)?,
        enqueued_us: r.get(9)?,
        delivered_us: r.get(10)?,
        last_code: r.get(12)?,
    })
}

/// The items replay may send now: due, and first of their account among
/// the undelivered ones (at most `limit`, oldest first).
///
/// # Errors
/// The store's error.
pub fn due(
    store: &Store,
    institution: &str,
    now_us: i64,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let institution = institution.to_string();
    store.read(move |c| {
        c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM saf_queue q WHERE q.institution = ?1 AND q.state = 'pending' \
             AND q.next_attempt_us <= ?2 AND NOT EXISTS (SELECT 1 FROM saf_queue p \
             WHERE p.institution = q.institution AND p.account = q.account AND p.state != 'delivered' \
             AND p.seq < q.seq) ORDER BY q.seq LIMIT ?3"
        ))?
        .query_map(params![institution, now_us, limit as i64], item)?
        .collect()
    })
}

/// When the next pending item of an institution is due (for the replay's sleep).
///
/// # Errors
/// The store's error.
pub fn next_due(store: &Store, institution: &str) -> Result<Option<i64>, StoreError> {
    let institution = institution.to_string();
    store.read(move |c| {
        c.prepare_cached(
            "SELECT MIN(next_attempt_us) FROM saf_queue WHERE institution = ?1 AND state = 'pending'",
        )?
        .query_row(params![institution], |r| r.get(0))
    })
}

/// Marks an item delivered, with the code of the answer that settled it.
pub fn delivered(c: &Connection, seq: i64, attempts: u32, code: &str) -> sql::Result<()> {
    c.prepare_cached(
        "UPDATE saf_queue SET state = 'delivered', attempts = ?2, delivered_us = ?3, last_error = NULL, \
         last_code = ?4 WHERE seq = ?1",
    )?
    .execute(params![seq, attempts, Timestamp::now().as_microsecond(), code])
    .map(|_| ())
}

/// Records a failed attempt: retried at `next_attempt_us`, or a dead
/// letter; `code` when the account system answered (with a code that is
/// not a success).
pub fn failed(
    c: &Connection,
    seq: i64,
    attempts: u32,
    next_attempt_us: i64,
    dead: bool,
    error: &str,
    code: Option<&str>,
) -> sql::Result<()> {
    c.prepare_cached(
        "UPDATE saf_queue SET state = ?2, attempts = ?3, next_attempt_us = ?4, last_error = ?5, \
         last_code = COALESCE(?6, last_code) WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        if dead {
            ItemState::Dead
        } else {
            ItemState::Pending
        }
        .as_str(),
        attempts,
        next_attempt_us,
        error,
        code
    ])
    .map(|_| ())
}

/// Puts a dead letter back in the queue with fresh attempts; false when
/// there is no dead item with this number.
///
/// # Errors
/// The store's error.
pub fn requeue(c: &Connection, seq: i64) -> sql::Result<bool> {
    let now = Timestamp::now().as_microsecond();
    c.prepare_cached(
        "UPDATE saf_queue SET state = 'pending', attempts = 0, next_attempt_us = ?2 WHERE seq = ?1 AND state = 'dead'",
    )?
    .execute(params![seq, now])
    .map(|n| n == 1)
}

/// The institution of item `seq`, if there is one.
///
/// # Errors
/// SQLite's.
pub fn institution_of(c: &Connection, seq: i64) -> sql::Result<Option<String>> {
    c.prepare_cached("SELECT institution FROM saf_queue WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))
        .optional()
}

/// Items on a page of [`list`] unless asked otherwise.
pub const LIST_DEFAULT_LIMIT: usize = 100;
/// Items on a page of [`list`] at most.
pub const LIST_MAX_LIMIT: usize = 1000;

/// Which items to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    pub institution: Option<String>,
    #[param(value_type = Option<ItemState>)]
    pub state: Option<String>,
    /// Items after this sequence number (for pages).
    pub after: Option<i64>,
    /// Items on a page, at most 1000 (more are cut to 1000); 100 when absent.
    #[param(maximum = 1000, default = json!(LIST_DEFAULT_LIMIT))]
    pub limit: Option<usize>,
}

/// Items by filter, in queue order, with why each waits: its own last
/// error, or the earlier undelivered item of its account it waits behind.
///
/// # Errors
/// The store's error.
pub fn list(store: &Store, filter: &Filter) -> Result<Vec<(Item, Option<i64>)>, StoreError> {
    let f = filter.clone();
    store.read(move |c| {
        c.prepare_cached(&format!(
            "SELECT {COLUMNS}, (SELECT MIN(p.seq) FROM saf_queue p WHERE p.institution = q.institution \
             AND p.account = q.account AND p.state != 'delivered' AND p.seq < q.seq AND q.state != 'delivered') \
             FROM saf_queue q WHERE (CAST(?1 AS TEXT) IS NULL OR institution = ?1) \
             AND (CAST(?2 AS TEXT) IS NULL OR state = ?2) \
             AND seq > ?3 ORDER BY seq LIMIT ?4"
        ))?
        .query_map(
            params![f.institution, f.state, f.after.unwrap_or(0), f.limit.unwrap_or(LIST_DEFAULT_LIMIT).min(LIST_MAX_LIMIT) as i64],
            |r| Ok((item(r)?, r.get(13)?)),
        )?
        .collect()
    })
}

/// Per institution: (pending, dead) item counts.
///
/// # Errors
/// The store's error.
pub fn depths(store: &Store) -> Result<Vec<(String, i64, i64)>, StoreError> {
    store.read(|c| {
        c.prepare_cached(
            "SELECT institution, COUNT(*) FILTER (WHERE state = 'pending'), \
             COUNT(*) FILTER (WHERE state = 'dead') FROM saf_queue \
             WHERE state != 'delivered' GROUP BY institution ORDER BY institution",
        )?
        .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
    })
}

/// Whether an account has undelivered items (then its reversals and
/// advices queue behind them instead of going online).
///
/// # Errors
/// The store's error.
pub fn has_undelivered(
    store: &Store,
    institution: &str,
    account: &str,
) -> Result<bool, StoreError> {
    let (i, a) = (institution.to_string(), account.to_string());
    store.read(move |c| {
        c.prepare_cached(
            "SELECT 1 FROM saf_queue WHERE institution = ?1 AND account = ?2 AND state != 'delivered' LIMIT 1",
        )?
        .query_row(params![i, a], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
    })
}
