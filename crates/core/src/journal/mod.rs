//! The journal: every request the hub handled and how it was decided,
//! appended durably before the answer leaves (see `store` for the promise).
//! Also the lookups the pipeline needs: retransmissions, originals of
//! reversals, and the day's counter totals at start.

pub mod daily;
pub mod decision;
pub mod keys;
pub mod txn_id;

use crate::store::sql;
use crate::store::sql::{OptionalExtension, params};

use crate::account::Balances;
use crate::iso8583::fields::ResponseCode;
use crate::store::{Store, StoreError};
use decision::{DecidedBy, Decision};
use keys::SwitchKeys;
use txn_id::TxnId;

/// What a journal row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Entry {
    /// A request (or advice or reversal) and its decision.
    Request,
    /// A retransmission answered with its original's decision.
    Retransmission,
    /// An account system's answer that came after the deadline.
    LateResult,
    /// A reversal advice whose original is unknown.
    OrphanReversal,
    /// An interrupted call's request whose duplicate key a journaled
    /// request already has (written on recovery only).
    RepeatedRequest,
}

impl Entry {
    pub fn as_str(self) -> &'static str {
        match self {
            Entry::Request => "request",
            Entry::Retransmission => "retransmission",
            Entry::LateResult => "late_result",
            Entry::OrphanReversal => "orphan_reversal",
            Entry::RepeatedRequest => "repeated_request",
        }
    }
}

/// One journal row. Card data only as hash and masked form.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub txn_id: TxnId,
    pub entry: Entry,
    pub received_at_us: i64,
    /// Business day the row's counter effect belongs to (YYYY-MM-DD).
    pub business_day: String,
    pub switch: String,
    /// MTI without the repeat digit.
    pub mti: String,
    pub is_repeat: bool,
    pub kind: &'static str,
    pub channel: &'static str,
    pub pan_hash: Option<Vec<u8>>,
    pub pan_masked: Option<String>,
    pub account: Option<String>,
    pub institution: Option<String>,
    pub amount_minor: i64,
    pub currency: u16,
    pub keys: SwitchKeys,
    /// DE 42, the card acceptor id.
    pub merchant: Option<String>,
    /// DE 43, the card acceptor name and location, trimmed.
    pub merchant_name: Option<String>,
    pub mcc: Option<u16>,
    pub decision: Decision,
    pub counted_minor: i64,
    pub counted_count: i32,
    pub original_txn_id: Option<TxnId>,
    pub latency_us: i64,
}

/// A journaled transaction a reversal refers to.
#[derive(Debug, Clone)]
pub struct Original {
    pub txn_id: TxnId,
    pub approved: bool,
    pub amount_minor: i64,
    pub counted_count: i32,
    pub channel: String,
    pub pan_hash: Option<Vec<u8>>,
    pub business_day: String,
    pub account: Option<String>,
    pub institution: Option<String>,
    pub kind: String,
    /// Who approved it: stand-in approvals also release stand-in's own counters.
    pub decided_by: String,
}

/// The columns of a journal row (and of a call intent, which has the same),
/// as a literal for `concat!`.
macro_rules! columns {
    () => {
        "txn_id, entry, received_at_us, business_day, switch, mti, \
         is_repeat, kind, channel, pan_hash, pan_masked, account, institution, amount_minor, currency, \
         transmission_time, stan, acquirer, rrn, terminal, merchant, mcc, response_code, auth_id, \
         decided_by, adapter, raw_response_code, reason, available_minor, ledger_minor, counted_minor, \
         counted_count, original_txn_id, latency_us, merchant_name"
    };
}

const COLUMNS: &str = columns!();

/// `INSERT INTO <table> (COLUMNS) VALUES (?1 … ?35)`.
macro_rules! insert_into {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (",
            columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)"
        )
    };
}

const INSERT: &str = insert_into!("journal");
const INSERT_INTENT: &str = insert_into!("call_intents");

/// Appends a row; returns once it is durable.
///
/// # Errors
/// The store's error; the row is then not recorded.
pub async fn append(store: &Store, e: JournalEntry) -> Result<(), StoreError> {
    store.write(move |c| insert(c, &e)).await
}

/// Writes a row on the store's write connection (for callers that write
/// more in the same transaction).
/// What the row counts moves its card's shared daily totals
/// ([`daily::add_row`]) in the same transaction.
pub fn insert(c: &sql::Connection, e: &JournalEntry) -> sql::Result<()> {
    insert_as(c, INSERT, e)?;
    daily::add_row(
        c,
        e.pan_hash.as_deref(),
        &e.business_day,
        e.channel,
        (e.counted_minor, i64::from(e.counted_count)),
        e.decision.decided_by == DecidedBy::StandIn,
    )
}

/// Records, before an online call, the row the journal gets should the hub
/// stop before the call's decision is journaled (`e` carries that decision:
/// outcome unknown). Its `counted_*` are the call's daily-limit reservation
/// (taken with [`daily::reserve`] in the same transaction), given back when
/// the intent is cleared.
pub fn record_intent(c: &sql::Connection, e: &JournalEntry) -> sql::Result<()> {
    insert_as(c, INSERT_INTENT, e)
}

/// Inserts a request's row unless its transaction is journaled already
/// (written in the transaction of an account system's booking in the hub's
/// store: a call that outlived its deadline books after the hub's own row,
/// which stands); whether it did.
pub fn insert_unless_journaled(c: &sql::Connection, e: &JournalEntry) -> sql::Result<bool> {
    if journaled_decision(c, e.txn_id)?.is_some() {
        return Ok(false);
    }
    insert(c, e).map(|()| true)
}

/// The decision journaled for transaction `txn_id`, if its row exists.
pub fn journaled_decision(c: &sql::Connection, txn_id: TxnId) -> sql::Result<Option<Decision>> {
    c.prepare_cached(&format!(
        "SELECT {DECISION_COLUMNS} FROM journal WHERE txn_id = ?1"
    ))?
    .query_row([txn_id.0], |r| read_decision(r, 0))
    .optional()
}

/// The journal's columns of a [`Decision`], as [`read_decision`] reads them.
const DECISION_COLUMNS: &str = "response_code, auth_id, available_minor, ledger_minor, decided_by, reason, adapter, raw_response_code";

/// The [`Decision`] in a row's [`DECISION_COLUMNS`], from column `first` on.
fn read_decision(r: &sql::Row<'_>, first: usize) -> sql::Result<Decision> {
    let code: String = r.get(first)?;
    let available: Option<i64> = r.get(first + 2)?;
    let ledger: Option<i64> = r.get(first + 3)?;
    let decided_by: String = r.get(first + 4)?;
    Ok(Decision {
        code: ResponseCode::new(&code).unwrap_or(ResponseCode::SYSTEM_ERROR),
        auth_id: r.get(first + 1)?,
        balances: available
            .zip(ledger)
            .map(|(available, ledger)| Balances { available, ledger }),
        decided_by: DecidedBy::parse(&decided_by).unwrap_or(DecidedBy::HubRule),
        reason: r.get(first + 5)?,
        adapter: r.get(first + 6)?,
        raw_code: r.get(first + 7)?,
    })
}

/// Removes a call's intent and gives back the daily-limit reservation it
/// carries (in the transaction of its decision's row, which adds what it
/// counts).
pub fn clear_intent(c: &sql::Connection, txn_id: TxnId) -> sql::Result<()> {
    let reserved = c
        .prepare_cached(
            "DELETE FROM call_intents WHERE txn_id = ?1 \
             RETURNING pan_hash, business_day, channel, counted_minor, counted_count",
        )?
        .query_row([txn_id.0], |r| {
            Ok((
                r.get::<Option<Vec<u8>>>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<i64>(3)?,
                r.get::<i64>(4)?,
            ))
        })
        .optional()?;
    match reserved {
        Some((Some(hash), day, channel, amount, count)) if (amount, count) != (0, 0) => {
            let key = daily::Key {
                pan_hash: &hash,
                business_day: &day,
                channel: daily::limit_channel(&channel),
            };
            daily::release(c, key, amount, count)
        }
        _ => Ok(()),
    }
}

/// A call whose outcome nobody knows: the hub stopped while it was under way.
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub txn_id: TxnId,
    /// When the request arrived (µs since the epoch).
    pub received_at_us: i64,
    pub institution: String,
    pub account: String,
}

/// Moves every call intent fleet instance `instance` left when it stopped
/// into the journal (its decision, 96, is what the switch's repeats and
/// reversals then find) and returns them, for a Reverse each. Other
/// instances' intents are theirs: calls they may still be making.
///
/// An intent whose request is journaled already was committed although
/// the hub never saw its `COMMIT` answered (PostgreSQL did not answer in
/// time): the request was answered 96 without a call and that row stays
/// its answer; the intent is only removed (no call to reverse).
pub fn journal_interrupted(c: &sql::Connection, instance: u8) -> sql::Result<Vec<Interrupted>> {
    let own = txn_id::of_instance_sql("txn_id", instance);
    let own_intents = txn_id::of_instance_sql("i.txn_id", instance);
    move_intents(c, &own, &own_intents)
}

/// Moves instance `instance`'s call intents of requests received before
/// `before_us` into the journal as [`journal_interrupted`] does, while the
/// hub runs: a request lives seconds, so such an intent outlived its request
/// — the write that should have cleared it with the decision's row failed
/// (the store conflicted or did not answer), the switch got 96, and the
/// call's outcome stands nowhere. The calls, to be reversed.
pub fn journal_stale_intents(
    c: &sql::Connection,
    instance: u8,
    before_us: i64,
) -> sql::Result<Vec<Interrupted>> {
    let own = format!(
        "{} AND received_at_us < {before_us}",
        txn_id::of_instance_sql("txn_id", instance)
    );
    let own_intents = format!(
        "{} AND i.received_at_us < {before_us}",
        txn_id::of_instance_sql("i.txn_id", instance)
    );
    move_intents(c, &own, &own_intents)
}

/// Moves the intent of call `txn_id` into the journal as
/// [`journal_interrupted`] does, for a call whose decision cannot be
/// journaled: another request took its duplicate key meanwhile (a
/// retransmission another instance decided without a call), so the call's
/// outcome stands nowhere and it is to be reversed. The row is a
/// `repeated_request` (the key is taken); the call, if its intent was there.
pub fn journal_interrupted_call(
    c: &sql::Connection,
    txn_id: TxnId,
) -> sql::Result<Option<Interrupted>> {
    let own = format!("txn_id = {}", txn_id.0);
    let own_intents = format!("i.txn_id = {}", txn_id.0);
    Ok(move_intents(c, &own, &own_intents)?.pop())
}

/// Moves the call intents `own` selects (`own_intents` with the table
/// named `i`) into the journal; the calls.
fn move_intents(
    c: &sql::Connection,
    own: &str,
    own_intents: &str,
) -> sql::Result<Vec<Interrupted>> {
    let calls = c
        .prepare_cached(&format!(
            "SELECT txn_id, received_at_us, institution, account FROM call_intents i \
             WHERE {own} AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.txn_id = i.txn_id) \
             ORDER BY txn_id"
        ))?
        .query_map(params![], |r| {
            Ok(Interrupted {
                txn_id: TxnId(r.get(0)?),
                received_at_us: r.get(1)?,
                institution: r.get::<Option<String>>(2)?.unwrap_or_default(),
                account: r.get::<Option<String>>(3)?.unwrap_or_default(),
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    // A request whose duplicate key a journaled request already has (only
    // after the seen-keys filter forgot it) keeps the key unique.
    let entry = format!(
        "CASE WHEN EXISTS (SELECT 1 FROM journal f WHERE f.entry IN ('{}', '{}') \
         AND f.transmission_time IS NOT DISTINCT FROM i.transmission_time \
         AND f.stan IS NOT DISTINCT FROM i.stan AND f.acquirer IS NOT DISTINCT FROM i.acquirer \
         AND f.terminal IS NOT DISTINCT FROM i.terminal AND f.mti = i.mti) \
         THEN '{}' ELSE i.entry END",
        Entry::Request.as_str(),
        Entry::OrphanReversal.as_str(),
        Entry::RepeatedRequest.as_str(),
    );
    // Their daily-limit reservations are given back: the rows count nothing.
    let reserved = c
        .prepare_cached(&format!(
            "SELECT pan_hash, business_day, channel, counted_minor, counted_count FROM call_intents \
             WHERE pan_hash IS NOT NULL AND (counted_minor != 0 OR counted_count != 0) AND {own}",
        ))?
        .query_map(params![], |r| {
            Ok((
                r.get::<Vec<u8>>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<i64>(3)?,
                r.get::<i64>(4)?,
            ))
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    for (hash, day, channel, amount, count) in &reserved {
        let key = daily::Key {
            pan_hash: hash,
            business_day: day,
            channel: daily::limit_channel(channel),
        };
        daily::release(c, key, *amount, *count)?;
    }
    let selected = COLUMNS
        .replacen("entry", &entry, 1)
        .replacen("counted_minor", "0", 1)
        .replacen("counted_count", "0", 1);
    c.execute(
        &format!(
            "INSERT INTO journal ({COLUMNS}) SELECT {selected} FROM call_intents i WHERE {own_intents} \
             AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.txn_id = i.txn_id)"
        ),
        params![],
    )?;
    c.execute(&format!("DELETE FROM call_intents WHERE {own}"), params![])?;
    Ok(calls)
}

fn insert_as(c: &sql::Connection, sql: &str, e: &JournalEntry) -> sql::Result<()> {
    let d = &e.decision;
    c.prepare_cached(sql)?
        .execute(params![
            e.txn_id.0,
            e.entry.as_str(),
            e.received_at_us,
            e.business_day,
            e.switch,
            e.mti,
            e.is_repeat,
            e.kind,
            e.channel,
            e.pan_hash,
            e.pan_masked,
            e.account,
            e.institution,
            e.amount_minor,
            e.currency,
            e.keys.transmission_time,
            e.keys.stan,
            e.keys.acquirer,
            e.keys.rrn,
            e.keys.terminal,
            e.merchant,
            e.mcc,
            d.code.as_str(),
            d.auth_id,
            d.decided_by.as_str(),
            d.adapter,
            d.raw_code,
            d.reason,
            d.balances.map(|b| b.available),
            d.balances.map(|b| b.ledger),
            e.counted_minor,
            e.counted_count,
            e.original_txn_id.map(|id| id.0),
            e.latency_us,
            e.merchant_name,
        ])
        .map(|_| ())
}

/// A request already journaled under some switch keys.
#[derive(Debug, Clone)]
pub struct Answered {
    pub txn_id: TxnId,
    pub decision: Decision,
    /// What it was for: a request with the same keys but another amount or
    /// card is not a retransmission.
    pub amount_minor: i64,
    pub pan_masked: Option<String>,
}

/// The decision already given to a request with these switch keys, if any.
///
/// # Errors
/// The store's error.
pub fn answered(store: &Store, keys: &SwitchKeys) -> Result<Option<Answered>, StoreError> {
    let keys = keys.clone();
    let sql = format!(
        "SELECT txn_id, amount_minor, pan_masked, {DECISION_COLUMNS} FROM journal \
         WHERE transmission_time = ?1 AND stan = ?2 AND acquirer = ?3 AND terminal = ?4 \
         AND mti = ?5 AND entry IN ('request', 'orphan_reversal') ORDER BY txn_id LIMIT 1"
    );
    store.read(move |c| {
        row_by_key(c, &sql, &keys, |r| {
            Ok(Answered {
                txn_id: TxnId(r.get(0)?),
                amount_minor: r.get(1)?,
                pan_masked: r.get(2)?,
                decision: read_decision(r, 3)?,
            })
        })
    })
}

/// The first row of `sql`, whose parameters ?1 to ?5 are the duplicate key
/// `keys`, converted by `f`.
fn row_by_key<T>(
    c: &sql::Connection,
    sql: &str,
    keys: &SwitchKeys,
    f: impl FnOnce(&sql::Row<'_>) -> sql::Result<T>,
) -> sql::Result<Option<T>> {
    c.prepare_cached(sql)?
        .query_row(
            params![
                keys.transmission_time,
                keys.stan,
                keys.acquirer,
                keys.terminal,
                keys.mti.as_str()
            ],
            f,
        )
        .optional()
}

/// Who holds a duplicate key already: a journaled request, or a call under
/// way whose row is not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHolder {
    /// A journaled request (or orphan reversal) with the key.
    Journaled(TxnId),
    /// A call intent with the key: that request is with its account system
    /// now (on this instance or another), or its hub stopped during the call.
    Calling(TxnId),
}

/// The journaled request, else the call under way, that holds the key.
const KEY_HOLDER: &str = "SELECT txn_id, 'journaled' FROM journal \
     WHERE transmission_time = ?1 AND stan = ?2 AND acquirer = ?3 AND terminal = ?4 AND mti = ?5 \
     AND entry IN ('request', 'orphan_reversal') \
     UNION ALL SELECT txn_id, 'calling' FROM call_intents \
     WHERE transmission_time = ?1 AND stan = ?2 AND acquirer = ?3 AND terminal = ?4 AND mti = ?5 \
     ORDER BY 2 DESC, 1 LIMIT 1";

/// Who holds `keys` already, if anyone (on the store's write connection, in
/// the transaction that records a call intent): one key, one call, however
/// many instances the switch's retransmissions reach. Both tables are read
/// with their duplicate-key index; SQLite's single writer and PostgreSQL's
/// SERIALIZABLE transactions keep two intents with one key from both
/// finding none.
pub fn key_holder(c: &sql::Connection, keys: &SwitchKeys) -> sql::Result<Option<KeyHolder>> {
    row_by_key(c, KEY_HOLDER, keys, |r| {
        let id = TxnId(r.get(0)?);
        Ok(match r.get::<String>(1)?.as_str() {
            "journaled" => KeyHolder::Journaled(id),
            _ => KeyHolder::Calling(id),
        })
    })
}

/// The original of a reversal: a request with this MTI, DE 7, DE 11 and
/// acquirer (compared without leading zeros, as DE 90 pads it to 11).
///
/// # Errors
/// The store's error.
pub fn original(
    store: &Store,
    mti: &str,
    transmission_time: &str,
    stan: &str,
    acquirer: &str,
) -> Result<Option<Original>, StoreError> {
    let args = (
        mti.to_string(),
        transmission_time.to_string(),
        stan.to_string(),
        acquirer.trim_start_matches('0').to_string(),
    );
    store.read(move |c| {
        c.prepare_cached(
            "SELECT txn_id, response_code, amount_minor, counted_count, channel, pan_hash, \
             business_day, account, institution, kind, decided_by FROM journal \
             WHERE transmission_time = ?2 AND stan = ?3 AND mti = ?1 \
             AND ltrim(acquirer, '0') = ?4 AND entry = 'request' ORDER BY txn_id LIMIT 1",
        )?
        .query_row(params![args.0, args.1, args.2, args.3], |r| {
            Ok(Original {
                txn_id: TxnId(r.get(0)?),
                approved: r.get::<String>(1)? == "00",
                amount_minor: r.get(2)?,
                counted_count: r.get(3)?,
                channel: r.get(4)?,
                pan_hash: r.get(5)?,
                business_day: r.get(6)?,
                account: r.get(7)?,
                institution: r.get(8)?,
                kind: r.get(9)?,
                decided_by: r.get(10)?,
            })
        })
        .optional()
    })
}

/// What a journal row recorded of a request, to tell an account system
/// about it later (store-and-forward rebuilds its requests from these).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub mti: String,
    pub kind: String,
    pub channel: String,
    pub pan_masked: Option<String>,
    pub amount_minor: i64,
    pub currency: u16,
    pub transmission_time: String,
    pub rrn: String,
    pub terminal: String,
    pub merchant: Option<String>,
    /// DE 43, trimmed.
    pub merchant_name: Option<String>,
    pub response_code: String,
    /// The account system's own code, or a switch advice's DE 39.
    pub raw_code: Option<String>,
    pub decided_by: String,
    pub reason: String,
    pub original_txn_id: Option<TxnId>,
}

/// The row of a transaction id.
///
/// # Errors
/// The store's error.
pub fn recorded(store: &Store, txn_id: TxnId) -> Result<Option<Recorded>, StoreError> {
    store.read(move |c| {
        c.prepare_cached(
            "SELECT mti, kind, channel, pan_masked, amount_minor, currency, transmission_time, rrn, \
             terminal, merchant, response_code, raw_response_code, decided_by, reason, original_txn_id, \
             merchant_name FROM journal WHERE txn_id = ?1",
        )?
        .query_row(params![txn_id.0], |r| {
            Ok(Recorded {
                mti: r.get(0)?,
                kind: r.get(1)?,
                channel: r.get(2)?,
                pan_masked: r.get(3)?,
                amount_minor: r.get(4)?,
                currency: r.get(5)?,
                transmission_time: r.get::<Option<String>>(6)?.unwrap_or_default(),
                rrn: r.get::<Option<String>>(7)?.unwrap_or_default(),
                terminal: r.get::<Option<String>>(8)?.unwrap_or_default(),
                merchant: r.get(9)?,
                response_code: r.get(10)?,
                raw_code: r.get(11)?,
                decided_by: r.get(12)?,
                reason: r.get::<Option<String>>(13)?.unwrap_or_default(),
                original_txn_id: r.get::<Option<i64>>(14)?.map(TxnId),
                merchant_name: r.get(15)?,
            })
        })
        .optional()
    })
}

/// How much of a transaction approved reversals have already undone.
///
/// # Errors
/// The store's error.
pub fn reversed_so_far(store: &Store, original_txn_id: TxnId) -> Result<i64, StoreError> {
    let id = original_txn_id.0;
    store.read(move |c| {
        c.prepare_cached(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM journal \
             WHERE original_txn_id = ?1 AND mti IN ('0400', '0420') AND entry = 'request' \
             AND response_code = '00'",
        )?
        .query_row(params![id], |r| r.get(0))
    })
}

/// A card's counter totals for a business day: (pan hash, channel, amount,
/// count, whether stand-in decided them).
pub type DayTotal = (Vec<u8>, String, i64, i64, bool);

/// Every card's counter totals for a business day, from rows since `since`
/// (a business day never spans more than two calendar days), to rebuild the
/// counters at start.
///
/// # Errors
/// The store's error.
pub fn day_totals(
    store: &Store,
    business_day: &str,
    since: TxnId,
) -> Result<Vec<DayTotal>, StoreError> {
    let day = business_day.to_string();
    store.read(move |c| {
        c.prepare_cached(
            "SELECT pan_hash, channel, CAST(SUM(counted_minor) AS BIGINT), \
             CAST(SUM(counted_count) AS BIGINT), \
             CAST(CASE WHEN decided_by = 'stand_in' THEN 1 ELSE 0 END AS BIGINT) FROM journal \
             WHERE txn_id >= ?1 AND business_day = ?2 AND pan_hash IS NOT NULL \
             AND (counted_minor != 0 OR counted_count != 0) GROUP BY pan_hash, channel, 5",
        )?
        .query_map(params![since.0, day], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect()
    })
}

/// The highest transaction id in the journal (0 when empty).
///
/// # Errors
/// The store's error.
pub fn highest_id(store: &Store) -> Result<i64, StoreError> {
    store.read(|c| {
        // Call intents left by a stopped hub are journaled under their own ids.
        c.query_row(
            "SELECT COALESCE(MAX(m), 0) FROM (SELECT MAX(txn_id) AS m FROM journal \
             UNION ALL SELECT MAX(txn_id) FROM call_intents) AS t",
            params![],
            |r| r.get(0),
        )
    })
}

/// The switch keys of every request since `since`, to rebuild the seen-keys filter.
///
/// # Errors
/// The store's error.
pub fn recent_keys(store: &Store, since: TxnId) -> Result<Vec<SwitchKeys>, StoreError> {
    store.read(move |c| {
        c.prepare_cached(
            "SELECT mti, transmission_time, stan, acquirer, terminal, rrn FROM journal \
             WHERE txn_id >= ?1 AND entry IN ('request', 'orphan_reversal')",
        )?
        .query_map(params![since.0], |r| {
            let mti: String = r.get(0)?;
            Ok((mti, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .filter_map(|row| match row {
            Ok((mti, transmission_time, stan, acquirer, terminal, rrn)) => {
                mti.parse().ok().map(|mti| {
                    Ok(SwitchKeys {
                        mti,
                        transmission_time: Option::unwrap_or_default(transmission_time),
                        stan: Option::unwrap_or_default(stan),
                        acquirer: Option::unwrap_or_default(acquirer),
                        terminal: Option::unwrap_or_default(terminal),
                        rrn: Option::unwrap_or_default(rrn),
                    })
                })
            }
            Err(e) => Some(Err(e)),
        })
        .collect()
    })
}
