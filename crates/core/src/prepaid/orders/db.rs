//! The SQL of card orders (`migrations/0009_prepaid_orders.sql`). Every
//! function runs inside one store job; a refusal writes nothing.

use crate::cards::card::Card;
use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};

use super::production::{MailerRecord, ProductionCard, ProductionOrder};
use super::{CardRange, NewOrder, OrderError, OrderState, OrderSummary, PinRequest, Refused};
use crate::prepaid::{PinDelivery, PrepaidError};

/// An outcome inside a store job: `Err` outside is SQLite's, inside the
/// refusal (nothing written).
pub(super) type Op<T> = sql::Result<Result<T, OrderError>>;

/// What an order needs from the store before its PANs are drawn.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub orderer_name: String,
    pub currency: u16,
    pub pin_delivery: PinDelivery,
    pub range: CardRange,
    /// The range's next serial when read: the order is recorded only if it
    /// is still so.
    pub next_serial: i64,
}

/// A repeat of an order, or what a new one needs.
pub(super) enum Planned {
    Repeat(i64),
    New(Plan),
}

/// One card of a new order, as the order keeps it.
#[derive(Debug, Clone)]
pub(super) struct OrderedCard {
    pub account: String,
    pub pan_masked: String,
    /// `YYMM`.
    pub expiry: String,
    pub holder: Option<String>,
}

/// One card of an order, as read back.
#[derive(Debug, Clone)]
pub(super) struct StoredCard {
    pub sequence: u32,
    pub account: String,
    pub pan_masked: String,
    pub expiry: String,
    pub holder: Option<String>,
    pub loaded: bool,
}

/// Sets (or changes) a programme's card range. The next serial is kept
/// while prefix and length stay, and starts at 1 otherwise.
pub(super) fn set_range(conn: &Connection, programme: &str, r: &CardRange, now_us: i64) -> Op<()> {
    if conn
        .query_row(
            "SELECT 1 FROM prepaid_programmes WHERE id = ?1",
            [programme],
            |_| Ok(()),
        )
        .optional()?
        .is_none()
    {
        return Ok(Err(OrderError::Ledger(PrepaidError::UnknownProgramme {
            programme: programme.to_string(),
        })));
    }
    let same = range(conn, programme)?
        .is_some_and(|(old, _)| old.prefix == r.prefix && old.pan_length == r.pan_length);
    conn.execute(
        "INSERT INTO prepaid_card_ranges
             (programme, prefix, pan_length, validity_months, institution, profile, next_serial, updated_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)
         ON CONFLICT (programme) DO UPDATE SET prefix = ?2, pan_length = ?3, validity_months = ?4,
             institution = ?5, profile = ?6, updated_at_us = ?7,
             next_serial = CASE WHEN CAST(?8 AS BIGINT) = 1
                 THEN prepaid_card_ranges.next_serial ELSE 1 END",
        params![
            programme,
            r.prefix,
            r.pan_length,
            r.validity_months,
            r.institution,
            r.profile,
            now_us,
            same
        ],
    )?;
    Ok(Ok(()))
}

/// A programme's card range and its next serial.
pub(super) fn range(conn: &Connection, programme: &str) -> sql::Result<Option<(CardRange, i64)>> {
    conn.prepare_cached(
        "SELECT prefix, pan_length, validity_months, institution, profile, next_serial
         FROM prepaid_card_ranges WHERE programme = ?1",
    )?
    .query_row([programme], |r| {
        Ok((
            CardRange {
                prefix: r.get(0)?,
                pan_length: r.get(1)?,
                validity_months: r.get(2)?,
                institution: r.get(3)?,
                profile: r.get(4)?,
            },
            r.get(5)?,
        ))
    })
    .optional()
}

/// The order with this reference: a repeat when it is the same order,
/// refused when the reference names another.
fn repeat_of(conn: &Connection, o: &NewOrder) -> Op<Option<i64>> {
    let found: Option<(i64, String, String, u32, bool)> = conn
        .prepare_cached(
            "SELECT id, orderer, programme, count, personal FROM prepaid_orders WHERE reference = ?1",
        )?
        .query_row([&o.reference], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(match found {
        None => Ok(None),
        Some((id, orderer, programme, count, personal))
            if orderer == o.orderer
                && programme == o.programme
                && count == o.count
                && personal == o.holders.is_some() =>
        {
            Ok(Some(id))
        }
        Some((id, ..)) => Err(OrderError::ReferenceConflict {
            reference: o.reference.clone(),
            order: id,
        }),
    })
}

/// Reads what a new order needs, or finds its repeat.
pub(super) fn plan(conn: &Connection, o: &NewOrder) -> Op<Planned> {
    match repeat_of(conn, o)? {
        Ok(Some(id)) => return Ok(Ok(Planned::Repeat(id))),
        Ok(None) => {}
        Err(e) => return Ok(Err(e)),
    }
    let programme: Option<(String, u16, String)> = conn
        .query_row(
            "SELECT orderer, currency, pin_delivery FROM prepaid_programmes WHERE id = ?1",
            [&o.programme],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((orderer, currency, pin_delivery)) = programme else {
        return Ok(Err(OrderError::Ledger(PrepaidError::UnknownProgramme {
            programme: o.programme.clone(),
        })));
    };
    if orderer != o.orderer {
        return Ok(Err(OrderError::NotOrderersProgramme {
            programme: o.programme.clone(),
            orderer: o.orderer.clone(),
        }));
    }
    let orderer_name: String = conn.query_row(
        "SELECT name FROM prepaid_orderers WHERE id = ?1",
        [&orderer],
        |r| r.get(0),
    )?;
    let Some((range, next_serial)) = range(conn, &o.programme)? else {
        return Ok(Err(OrderError::NoCardRange {
            programme: o.programme.clone(),
        }));
    };
    Ok(Ok(Planned::New(Plan {
        orderer_name,
        currency,
        pin_delivery: pin_delivery_of(&pin_delivery),
        range,
        next_serial,
    })))
}

/// A programme's `pin_delivery` as stored.
fn pin_delivery_of(stored: &str) -> PinDelivery {
    if stored == PinDelivery::Separately.as_str() {
        PinDelivery::Separately
    } else {
        PinDelivery::WithCard
    }
}

/// The `channel` of a new card's PIN request.
fn channel(delivery: PinDelivery) -> &'static str {
    match delivery {
        PinDelivery::WithCard => "card",
        PinDelivery::Separately => "mailer",
    }
}

/// Records a new order of `cards`, drawn from the range up to (not
/// including) serial `next_serial`: opens their empty card accounts,
/// requests their PINs and moves the range on. Refused (nothing written)
/// when the reference was ordered meanwhile or the range moved since `plan`.
pub(super) fn record(
    conn: &Connection,
    o: &NewOrder,
    plan: &Plan,
    next_serial: i64,
    cards: &[OrderedCard],
    now_us: i64,
) -> sql::Result<Result<i64, Refused>> {
    match repeat_of(conn, o)? {
        Ok(Some(id)) => return Ok(Err(Refused::Repeat(id))),
        Ok(None) => {}
        Err(e) => return Ok(Err(Refused::Order(e))),
    }
    let moved = range(conn, &o.programme)?.is_none_or(|(r, serial)| {
        serial != plan.next_serial
            || r.prefix != plan.range.prefix
            || r.pan_length != plan.range.pan_length
    });
    if moved {
        return Ok(Err(Refused::Contended));
    }
    conn.execute_batch("SAVEPOINT prepaid_order")?;
    let done = record_rows(conn, o, plan, next_serial, cards, now_us);
    match done {
        Ok(Ok(_)) => conn.execute_batch("RELEASE prepaid_order")?,
        _ => conn.execute_batch("ROLLBACK TO prepaid_order; RELEASE prepaid_order")?,
    }
    Ok(done?.map_err(Refused::Order))
}

fn record_rows(
    conn: &Connection,
    o: &NewOrder,
    plan: &Plan,
    next_serial: i64,
    cards: &[OrderedCard],
    now_us: i64,
) -> Op<i64> {
    let order: i64 = conn.prepare_insert(
        "INSERT INTO prepaid_orders (reference, orderer, programme, personal, count, state, ordered_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, 'ordered', ?6)",
    )?
    .insert(params![o.reference, o.orderer, o.programme, o.holders.is_some(), o.count, now_us])?;
    let channel = channel(plan.pin_delivery);
    for (i, card) in cards.iter().enumerate() {
        if let Err(e) =
            crate::prepaid::db::open_card_account(conn, &card.account, &o.programme, now_us)?
        {
            return Ok(Err(OrderError::Ledger(e)));
        }
        let sequence = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
        conn.prepare_cached(
            "INSERT INTO prepaid_order_cards (order_id, sequence, account, pan_masked, expiry, holder)
             SELECT ?1, ?2, id, ?4, ?5, ?6 FROM prepaid_accounts WHERE kind = 'card' AND name = ?3",
        )?
        .execute(params![order, sequence, card.account, card.pan_masked, card.expiry, card.holder])?;
        conn.prepare_cached(
            "INSERT INTO prepaid_pin_requests (order_id, sequence, kind, channel, requested_at_us)
             VALUES (?1, ?2, 'issue', ?3, ?4)",
        )?
        .execute(params![order, sequence, channel, now_us])?;
    }
    conn.execute(
        "UPDATE prepaid_card_ranges SET next_serial = ?2 WHERE programme = ?1",
        params![o.programme, next_serial],
    )?;
    Ok(Ok(order))
}

/// The order reference of the replacement of card `sequence` of `order`:
/// `:` and `/` are no order reference's, so it names no orderer's order.
fn replacement_reference(order: i64, sequence: u32) -> String {
    format!("replace:{order}/{sequence}")
}

/// When the lost card drawing on ledger account `lost` was issued by a card
/// order, records its replacement `new` (registered already, its card
/// account open) as a new order of that one card: the lost card's orderer,
/// programme and holder, state `ordered`, reference
/// `replace:<order>/<sequence>` of the lost card, a PIN request by the
/// programme's PIN delivery. So it is produced, gets its PIN and PIN
/// reorders as any ordered card. Returns the order (the one recorded
/// already for this lost card, on a repeat), or `None` for a card not from
/// an order.
pub(in crate::prepaid) fn record_replacement(
    conn: &Connection,
    lost: &str,
    new: &Card,
    now_us: i64,
) -> sql::Result<Option<i64>> {
    let found: Option<(i64, u32, String, String, Option<String>, String)> = conn
        .prepare_cached(
            "SELECT oc.order_id, oc.sequence, o.orderer, o.programme, oc.holder, p.pin_delivery
             FROM prepaid_order_cards oc JOIN prepaid_accounts a ON a.id = oc.account
             JOIN prepaid_orders o ON o.id = oc.order_id
             JOIN prepaid_programmes p ON p.id = o.programme
             WHERE a.kind = 'card' AND a.name = ?1",
        )?
        .query_row([lost], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((lost_order, sequence, orderer, programme, holder, delivery)) = found else {
        return Ok(None);
    };
    let reference = replacement_reference(lost_order, sequence);
    let recorded: Option<i64> = conn
        .query_row(
            "SELECT id FROM prepaid_orders WHERE reference = ?1",
            [&reference],
            |r| r.get(0),
        )
        .optional()?;
    if recorded.is_some() {
        return Ok(recorded);
    }
    let order: i64 = conn.prepare_insert(
        "INSERT INTO prepaid_orders (reference, orderer, programme, personal, count, state, ordered_at_us)
         VALUES (?1, ?2, ?3, ?4, 1, 'ordered', ?5)",
    )?
    .insert(params![reference, orderer, programme, holder.is_some(), now_us])?;
    conn.execute(
        "INSERT INTO prepaid_order_cards (order_id, sequence, account, pan_masked, expiry, holder)
         SELECT ?1, 1, id, ?3, ?4, ?5 FROM prepaid_accounts WHERE kind = 'card' AND name = ?2",
        params![
            order,
            new.account,
            new.pan_masked,
            new.expiry.to_string(),
            holder
        ],
    )?;
    conn.execute(
        "INSERT INTO prepaid_pin_requests (order_id, sequence, kind, channel, requested_at_us)
         VALUES (?1, 1, 'issue', ?2, ?3)",
        params![order, channel(pin_delivery_of(&delivery)), now_us],
    )?;
    Ok(Some(order))
}

const SUMMARY: &str = "SELECT o.id, o.reference, o.orderer, o.programme, o.personal, o.count, \
     o.state, o.ordered_at_us, o.produced_at_us, o.delivered_at_us, \
     (SELECT COUNT(*) FROM prepaid_order_cards oc WHERE oc.order_id = o.id AND EXISTS \
        (SELECT 1 FROM prepaid_entries e WHERE e.card = oc.account AND e.kind = 'load')) \
     FROM prepaid_orders o";

fn summary_from_row(r: &sql::Row<'_>) -> sql::Result<OrderSummary> {
    let stored: String = r.get(6)?;
    let loaded: u32 = r.get(10)?;
    let state = match stored.as_str() {
        "ordered" => OrderState::Ordered,
        "produced" => OrderState::Produced,
        _ if loaded > 0 => OrderState::Active,
        _ => OrderState::Delivered,
    };
    Ok(OrderSummary {
        id: r.get(0)?,
        reference: r.get(1)?,
        orderer: r.get(2)?,
        programme: r.get(3)?,
        personal: r.get(4)?,
        count: r.get(5)?,
        state,
        ordered_at_us: r.get(7)?,
        produced_at_us: r.get(8)?,
        delivered_at_us: r.get(9)?,
        loaded,
    })
}

/// One order's summary.
pub(super) fn summary(conn: &Connection, id: i64) -> sql::Result<Option<OrderSummary>> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE o.id = ?1"))?
        .query_row([id], summary_from_row)
        .optional()
}

/// An orderer's orders, oldest first.
pub(super) fn summaries(conn: &Connection, orderer: &str) -> sql::Result<Vec<OrderSummary>> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE o.orderer = ?1 ORDER BY o.id"))?
        .query_map([orderer], summary_from_row)?
        .collect()
}

/// An order's cards, in sequence.
pub(super) fn cards(conn: &Connection, order: i64) -> sql::Result<Vec<StoredCard>> {
    conn.prepare_cached(
        "SELECT oc.sequence, a.name, oc.pan_masked, oc.expiry, oc.holder,
             CAST(CASE WHEN EXISTS (SELECT 1 FROM prepaid_entries e
                 WHERE e.card = oc.account AND e.kind = 'load') THEN 1 ELSE 0 END AS BIGINT)
         FROM prepaid_order_cards oc JOIN prepaid_accounts a ON a.id = oc.account
         WHERE oc.order_id = ?1 ORDER BY oc.sequence",
    )?
    .query_map([order], |r| {
        Ok(StoredCard {
            sequence: r.get(0)?,
            account: r.get(1)?,
            pan_masked: r.get(2)?,
            expiry: r.get(3)?,
            holder: r.get(4)?,
            loaded: r.get(5)?,
        })
    })?
    .collect()
}

fn unknown(order: i64) -> OrderError {
    OrderError::UnknownOrder { order }
}

/// Moves an order from `from` to `to` (stored states) and stamps the time;
/// already at `to` (or, for `delivered`, active) is done. Anything else is
/// refused.
pub(super) fn transition(
    conn: &Connection,
    order: i64,
    from: OrderState,
    to: OrderState,
    now_us: i64,
) -> Op<OrderSummary> {
    let Some(now) = summary(conn, order)? else {
        return Ok(Err(unknown(order)));
    };
    if now.state == from {
        let stamp = match to {
            OrderState::Produced => "produced_at_us",
            _ => "delivered_at_us",
        };
        conn.execute(
            &format!("UPDATE prepaid_orders SET state = ?2, {stamp} = ?3 WHERE id = ?1"),
            params![order, to.as_str(), now_us],
        )?;
    } else if now.state != to && !(to == OrderState::Delivered && now.state == OrderState::Active) {
        return Ok(Err(OrderError::IllegalTransition {
            order,
            state: now.state,
            to,
        }));
    }
    Ok(summary(conn, order)?.ok_or_else(|| unknown(order)))
}

/// What the production file of an order shows (PANs aside).
pub(super) fn production(conn: &Connection, order: i64) -> Op<(OrderSummary, ProductionOrder)> {
    let Some(s) = summary(conn, order)? else {
        return Ok(Err(unknown(order)));
    };
    let orderer_name: String = conn.query_row(
        "SELECT name FROM prepaid_orderers WHERE id = ?1",
        [&s.orderer],
        |r| r.get(0),
    )?;
    let cards = conn
        .prepare_cached(
            "SELECT oc.sequence, a.name, oc.expiry, oc.holder, p.id, p.channel
             FROM prepaid_order_cards oc JOIN prepaid_accounts a ON a.id = oc.account
             JOIN prepaid_pin_requests p ON p.order_id = oc.order_id AND p.sequence = oc.sequence
                 AND p.kind = 'issue'
             WHERE oc.order_id = ?1 ORDER BY oc.sequence",
        )?
        .query_map([order], |r| {
            Ok(ProductionCard {
                sequence: r.get(0)?,
                account: r.get(1)?,
                expiry: r.get(2)?,
                holder: r.get(3)?,
                pin_request: r.get(4)?,
                pin_by_mailer: r.get::<String>(5)? == "mailer",
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    let p = ProductionOrder {
        id: s.id,
        reference: s.reference.clone(),
        programme: s.programme.clone(),
        orderer_name,
        date: super::utc_date(s.ordered_at_us),
        personal: s.personal,
        cards,
    };
    Ok(Ok((s, p)))
}

/// The order and sequence of the ordered card with ledger account
/// `account`, and whether its account was replaced.
pub(super) fn ordered_card(
    conn: &Connection,
    account: &str,
) -> sql::Result<Option<(i64, u32, bool)>> {
    conn.prepare_cached(
        "SELECT oc.order_id, oc.sequence,
             CAST(CASE WHEN a.status = 'replaced' THEN 1 ELSE 0 END AS BIGINT)
         FROM prepaid_order_cards oc JOIN prepaid_accounts a ON a.id = oc.account
         WHERE a.kind = 'card' AND a.name = ?1",
    )?
    .query_row([account], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .optional()
}

/// A PIN reorder for an ordered card, by mailer; a reorder still pending
/// for it is returned instead of a second one.
pub(super) fn reorder(
    conn: &Connection,
    order: i64,
    sequence: u32,
    now_us: i64,
) -> sql::Result<PinRequest> {
    let pending: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM prepaid_pin_requests WHERE order_id = ?1 AND sequence = ?2
             AND kind = 'reorder' AND mailer IS NULL",
        )?
        .query_row(params![order, sequence], |r| r.get(0))
        .optional()?;
    if let Some(id) = pending {
        return Ok(PinRequest::new(id, true));
    }
    let id = conn
        .prepare_insert(
            "INSERT INTO prepaid_pin_requests (order_id, sequence, kind, channel, requested_at_us)
             VALUES (?1, ?2, 'reorder', 'mailer', ?3)",
        )?
        .insert(params![order, sequence, now_us])?;
    Ok(PinRequest::new(id, false))
}

/// PIN requests waiting for a mailer: reorders, and new cards' of orders
/// produced already.
const PENDING: &str = "p.channel = 'mailer' AND p.mailer IS NULL AND (p.kind = 'reorder' OR \
     (SELECT state FROM prepaid_orders o WHERE o.id = p.order_id) <> 'ordered')";

/// Puts every pending PIN request in a new mailer; its id, or `None` when
/// nothing is pending.
pub(super) fn take_pending(conn: &Connection, now_us: i64) -> sql::Result<Option<i64>> {
    let count: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM prepaid_pin_requests p WHERE {PENDING}"),
        params![],
        |r| r.get(0),
    )?;
    if count == 0 {
        return Ok(None);
    }
    let mailer: i64 = conn
        .prepare_insert("INSERT INTO prepaid_pin_mailers (count, created_at_us) VALUES (?1, ?2)")?
        .insert(params![count, now_us])?;
    conn.execute(
        &format!("UPDATE prepaid_pin_requests AS p SET mailer = ?1 WHERE {PENDING}"),
        [mailer],
    )?;
    Ok(Some(mailer))
}

/// A mailer's creation time and records, in request order.
pub(super) fn mailer(
    conn: &Connection,
    mailer: i64,
) -> sql::Result<Option<(i64, Vec<MailerRecord>)>> {
    let created: Option<i64> = conn
        .query_row(
            "SELECT created_at_us FROM prepaid_pin_mailers WHERE id = ?1",
            [mailer],
            |r| r.get(0),
        )
        .optional()?;
    let Some(created) = created else {
        return Ok(None);
    };
    let records = conn
        .prepare_cached(
            "SELECT p.order_id, p.sequence, oc.pan_masked,
                 CAST(CASE WHEN p.kind = 'reorder' THEN 1 ELSE 0 END AS BIGINT),
                 p.id, oc.holder, r.name
             FROM prepaid_pin_requests p
             JOIN prepaid_order_cards oc ON oc.order_id = p.order_id AND oc.sequence = p.sequence
             JOIN prepaid_orders o ON o.id = p.order_id
             JOIN prepaid_orderers r ON r.id = o.orderer
             WHERE p.mailer = ?1 ORDER BY p.id",
        )?
        .query_map([mailer], |r| {
            Ok(MailerRecord {
                order: r.get(0)?,
                sequence: r.get(1)?,
                pan_masked: r.get(2)?,
                reorder: r.get(3)?,
                pin_request: r.get(4)?,
                holder: r.get(5)?,
                orderer_name: r.get(6)?,
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    Ok(Some((created, records)))
}
