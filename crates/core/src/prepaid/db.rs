//! The ledger's SQL. Every operation is one function run as one store job
//! (one transaction): it checks everything first and writes only when the
//! operation is allowed, so a refusal leaves nothing behind. Postings are
//! written only by `postings.rs`: through [`book`], which keeps each
//! account's balance column in the same transaction, or by a load file,
//! which moves each account's column once at its end.

use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};

use super::holds::{self, HoldTotals, Merchant, hold_by_reference};
use super::postings::book;
use super::repeats::{conflict, credit_repeat, prior, repeat_of, same_money};
use super::{AccountKind, Booked, Moved, NewOrderer, NewProgramme, PrepaidError, limits};
use crate::account::Balances;
use crate::money::Money;

/// An operation's outcome inside its store job: `Err` outside is SQLite's,
/// inside the ledger's refusal (nothing written).
pub(super) type Op<T> = sql::Result<Result<T, PrepaidError>>;

/// A card account with its programme's rules.
#[derive(Debug, Clone)]
pub(super) struct CardAccount {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) orderer: String,
    pub(super) programme: String,
    pub(super) currency: u16,
    pub(super) replaced_by: Option<i64>,
    pub(super) balance: i64,
    pub(super) max_balance: i64,
    /// Its programme's daily amount and count limits.
    pub(super) daily: (Option<i64>, Option<i64>),
    /// Its hold totals as this read found them.
    pub(super) totals: HoldTotals,
}

/// A card account with its programme's rules, read by every authorization.
/// The programme's columns are subqueries, not a join: SQLite plans a join
/// with a bound value so that rebinding the value (as the statement cache
/// does for each use) prepares the statement again, some 10 µs each time.
const CARD_COLUMNS: &str = "a.id, a.name, a.orderer, a.programme, a.currency, a.replaced_by, \
     a.balance, (SELECT max_balance FROM prepaid_programmes WHERE id = a.programme), \
     (SELECT daily_amount FROM prepaid_programmes WHERE id = a.programme), \
     (SELECT daily_count FROM prepaid_programmes WHERE id = a.programme), \
     a.held, a.day_start_us, a.day_amount, a.day_count \
     FROM prepaid_accounts a WHERE a.kind = 'card'";

fn card_from_row(r: &sql::Row<'_>) -> sql::Result<CardAccount> {
    Ok(CardAccount {
        id: r.get(0)?,
        name: r.get(1)?,
        orderer: r.get(2)?,
        programme: r.get(3)?,
        currency: r.get(4)?,
        replaced_by: r.get(5)?,
        balance: r.get(6)?,
        max_balance: r.get(7)?,
        daily: (r.get(8)?, r.get(9)?),
        totals: HoldTotals {
            held: r.get(10)?,
            day_start_us: r.get(11)?,
            day_amount: r.get(12)?,
            day_count: r.get(13)?,
        },
    })
}

pub(super) fn card_by_name(conn: &Connection, name: &str) -> sql::Result<Option<CardAccount>> {
    conn.prepare_cached(&format!("SELECT {CARD_COLUMNS} AND a.name = ?1"))?
        .query_row([name], card_from_row)
        .optional()
}

fn card_by_id(conn: &Connection, id: i64) -> sql::Result<CardAccount> {
    conn.prepare_cached(&format!("SELECT {CARD_COLUMNS} AND a.id = ?1"))?
        .query_row([id], card_from_row)
}

/// The card account where money of `id` is now (following replacements).
pub(super) fn current_card(conn: &Connection, id: i64) -> sql::Result<CardAccount> {
    let mut card = card_by_id(conn, id)?;
    while let Some(next) = card.replaced_by {
        card = card_by_id(conn, next)?;
    }
    Ok(card)
}

/// A card account that may take new loads, holds and moves.
pub(super) fn open_card(conn: &Connection, name: &str, amount: Option<&Money>) -> Op<CardAccount> {
    let Some(card) = card_by_name(conn, name)? else {
        return Ok(Err(PrepaidError::UnknownCard {
            account: name.to_string(),
        }));
    };
    if card.replaced_by.is_some() {
        return Ok(Err(PrepaidError::CardReplaced { account: card.name }));
    }
    if let Some(m) = amount
        && m.currency.numeric != card.currency
    {
        return Ok(Err(PrepaidError::CurrencyMismatch {
            account: card.name,
            account_currency: card.currency,
            amount_currency: m.currency.numeric,
        }));
    }
    Ok(Ok(card))
}

pub(super) fn account_id(conn: &Connection, kind: AccountKind, name: &str) -> sql::Result<i64> {
    conn.prepare_cached("SELECT id FROM prepaid_accounts WHERE kind = ?1 AND name = ?2")?
        .query_row(params![kind.as_str(), name], |r| r.get(0))
}

/// `card`'s balances as it was read, its open holds that have not expired
/// at `now_us` set aside.
pub(super) fn balances_of(
    conn: &Connection,
    card: &CardAccount,
    now_us: i64,
) -> sql::Result<Balances> {
    let held = holds::held(conn, card.id, &card.totals, now_us)?;
    Ok(Balances {
        available: card.balance - held,
        ledger: card.balance,
    })
}

pub(super) fn fresh_balances(conn: &Connection, id: i64, now_us: i64) -> sql::Result<Balances> {
    let card = card_by_id(conn, id)?;
    balances_of(conn, &card, now_us)
}

/// The open card account an operation on `amount` is for, and the amount
/// in minor units.
fn card_and_minor(conn: &Connection, account: &str, amount: &Money) -> Op<(CardAccount, i64)> {
    Ok(match open_card(conn, account, Some(amount))? {
        Ok(card) => minor(amount).map(|x| (card, x)),
        Err(e) => Err(e),
    })
}

/// A positive amount in minor units.
fn minor(amount: &Money) -> Result<i64, PrepaidError> {
    i64::try_from(amount.minor)
        .ok()
        .filter(|m| *m > 0)
        .ok_or(PrepaidError::InvalidAmount {
            minor: amount.minor,
        })
}

/// The legs of a credit to a card (load, refund, reversal of a purchase):
/// the orderer's pooled liability grows, the money comes in through
/// settlement.
pub(super) fn credit_legs(
    conn: &Connection,
    card: &CardAccount,
    x: i64,
) -> sql::Result<Vec<(i64, i64)>> {
    Ok(vec![
        (card.id, x),
        (account_id(conn, AccountKind::Pooled, &card.orderer)?, -x),
        (
            account_id(conn, AccountKind::Settlement, &card.currency.to_string())?,
            x,
        ),
    ])
}

/// The legs of a debit of a card (capture, reversal of a load).
fn debit_legs(conn: &Connection, card: &CardAccount, x: i64) -> sql::Result<Vec<(i64, i64)>> {
    Ok(credit_legs(conn, card, x)?
        .into_iter()
        .map(|(a, v)| (a, -v))
        .collect())
}

/// Records the card acceptor of a purchase's entry (capture, reversal).
fn note_merchant(conn: &Connection, entry: i64, merchant: &Merchant) -> sql::Result<()> {
    if merchant.id.is_some() || merchant.name.is_some() {
        conn.prepare_cached(
            "UPDATE prepaid_entries SET merchant = ?2, merchant_name = ?3 WHERE id = ?1",
        )?
        .execute(params![entry, merchant.id, merchant.name])?;
    }
    Ok(())
}

/// Whether `sql` (a one-parameter lookup by id) finds a row.
pub(super) fn has_row(conn: &Connection, sql: &str, id: &str) -> sql::Result<bool> {
    conn.query_row(sql, [id], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
}

pub(super) fn create_orderer(conn: &Connection, o: &NewOrderer, now_us: i64) -> Op<()> {
    if has_row(conn, "SELECT 1 FROM prepaid_orderers WHERE id = ?1", &o.id)? {
        return Ok(Err(PrepaidError::Exists {
            what: "orderer",
            id: o.id.clone(),
        }));
    }
    conn.execute(
        "INSERT INTO prepaid_orderers (id, name, funding_account, created_at_us) VALUES (?1, ?2, ?3, ?4)",
        params![o.id, o.name, o.funding_account, now_us],
    )?;
    conn.execute(
        "INSERT INTO prepaid_accounts (kind, name, orderer, currency, created_at_us)
         VALUES ('pooled', ?1, ?1, 0, ?2)",
        params![o.id, now_us],
    )?;
    Ok(Ok(()))
}

pub(super) fn create_programme(
    conn: &Connection,
    p: &NewProgramme,
    max: i64,
    now_us: i64,
) -> Op<()> {
    if !has_row(
        conn,
        "SELECT 1 FROM prepaid_orderers WHERE id = ?1",
        &p.orderer,
    )? {
        return Ok(Err(PrepaidError::UnknownOrderer {
            orderer: p.orderer.clone(),
        }));
    }
    if has_row(
        conn,
        "SELECT 1 FROM prepaid_programmes WHERE id = ?1",
        &p.id,
    )? {
        return Ok(Err(PrepaidError::Exists {
            what: "programme",
            id: p.id.clone(),
        }));
    }
    conn.execute(
        "INSERT INTO prepaid_programmes (id, orderer, kind, currency, max_balance, pin_delivery, created_at_us, daily_amount, daily_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            p.id,
            p.orderer,
            p.kind.as_str(),
            p.currency.numeric,
            max,
            p.pin_delivery.as_str(),
            now_us,
            p.daily.amount.and_then(|a| i64::try_from(a).ok()),
            p.daily.count
        ],
    )?;
    conn.execute(
        "INSERT INTO prepaid_accounts (kind, name, currency, created_at_us)
         VALUES ('settlement', ?1, ?3, ?2) ON CONFLICT DO NOTHING",
        params![p.currency.numeric.to_string(), now_us, p.currency.numeric],
    )?;
    Ok(Ok(()))
}

/// Creates the card account `name` in `programme` (empty).
pub(super) fn open_card_account(
    conn: &Connection,
    name: &str,
    programme: &str,
    now_us: i64,
) -> Op<()> {
    let p: Option<(String, u16)> = conn
        .query_row(
            "SELECT orderer, currency FROM prepaid_programmes WHERE id = ?1",
            [programme],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((orderer, currency)) = p else {
        return Ok(Err(PrepaidError::UnknownProgramme {
            programme: programme.to_string(),
        }));
    };
    if card_by_name(conn, name)?.is_some() {
        return Ok(Err(PrepaidError::Exists {
            what: "card account",
            id: name.to_string(),
        }));
    }
    conn.execute(
        "INSERT INTO prepaid_accounts (kind, name, orderer, programme, currency, created_at_us)
         VALUES ('card', ?1, ?2, ?3, ?4, ?5)",
        params![name, orderer, programme, currency, now_us],
    )?;
    Ok(Ok(()))
}

/// A load or refund: refused over the programme's maximum.
pub(super) fn credit(
    conn: &Connection,
    kind: &'static str,
    reference: &str,
    account: &str,
    amount: &Money,
    now_us: i64,
) -> Op<Booked> {
    match credit_repeat(conn, kind, reference, account, amount, now_us)? {
        Ok(None) => {}
        Ok(Some(done)) => return Ok(Ok(done)),
        Err(e) => return Ok(Err(e)),
    }
    let (card, x) = match card_and_minor(conn, account, amount)? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(e) = over_max(&card, x) {
        return Ok(Err(e));
    }
    let legs = credit_legs(conn, &card, x)?;
    let id = book(conn, kind, reference, card.id, None, &legs, now_us)?;
    Ok(Ok(Booked {
        id,
        balances: fresh_balances(conn, card.id, now_us)?,
        repeat: false,
    }))
}

pub(super) fn over_max(card: &CardAccount, x: i64) -> Option<PrepaidError> {
    match card.balance.checked_add(x) {
        Some(after) if after <= card.max_balance => None,
        _ => Some(PrepaidError::OverMax {
            account: card.name.clone(),
            balance: card.balance,
            amount: x,
            max: card.max_balance,
        }),
    }
}

/// What `card` has available for a debit of `x` (its own hold
/// `exclude_hold` counted as available), or the refusal when that is less
/// than `x`.
fn available_for(
    conn: &Connection,
    card: &CardAccount,
    x: i64,
    exclude_hold: Option<i64>,
    now_us: i64,
) -> Op<i64> {
    let mut available = balances_of(conn, card, now_us)?.available;
    if let Some(hold) = exclude_hold {
        let own: i64 = conn.query_row(
            "SELECT CASE WHEN state = 'open' AND expires_at_us > ?2 THEN remaining ELSE 0 END
             FROM prepaid_holds WHERE id = ?1",
            params![hold, now_us],
            |r| r.get(0),
        )?;
        available += own;
    }
    Ok(if available < x {
        Err(PrepaidError::InsufficientFunds {
            account: card.name.clone(),
            available,
            amount: x,
        })
    } else {
        Ok(available)
    })
}

/// A purchase or cash authorization: money set aside until `expires_at_us`,
/// at the card acceptor `merchant` (kept on the hold).
pub(super) fn hold(
    conn: &Connection,
    reference: &str,
    account: &str,
    amount: &Money,
    expires_at_us: i64,
    merchant: &Merchant,
    now_us: i64,
) -> Op<Booked> {
    if let Some(done) = repeat_of(conn, reference, now_us)? {
        return Ok(Ok(done));
    }
    let (card, x) = match card_and_minor(conn, account, amount)? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let available = match available_for(conn, &card, x, None, now_us)? {
        Ok(available) => available,
        Err(e) => return Ok(Err(e)),
    };
    if let Some(e) = limits::exceeded(conn, &card, x, now_us)? {
        return Ok(Err(e));
    }
    let id = conn
        .prepare_insert(
            "INSERT INTO prepaid_holds (reference, account, amount, remaining, state, created_at_us, expires_at_us,
             merchant, merchant_name)
         VALUES (?1, ?2, ?3, ?3, 'open', ?4, ?5, ?6, ?7)",
        )?
        .insert(params![reference, card.id, x, now_us, expires_at_us, merchant.id, merchant.name])?;
    holds::added(conn, card.id, x, now_us)?;
    // The hold moves no posting: the balance read above stands, and only
    // what is available shrinks, by the hold.
    Ok(Ok(Booked {
        id,
        balances: Balances {
            available: available - x,
            ledger: card.balance,
        },
        repeat: false,
    }))
}

/// Posts a debit: of the hold `hold_reference` (a completion, for at most
/// what it still holds; the rest is released), or, without one, of the card
/// `account` directly (the switch decided alone). The entry keeps
/// `merchant`, each part of it absent the hold's.
pub(super) fn capture(
    conn: &Connection,
    reference: &str,
    hold_reference: Option<&str>,
    account: &str,
    amount: &Money,
    merchant: &Merchant,
    now_us: i64,
) -> Op<Booked> {
    if let Some(done) = repeat_of(conn, reference, now_us)? {
        return Ok(Ok(done));
    }
    let x = match minor(amount) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    let (card, hold) = match hold_reference {
        Some(r) => {
            let Some(hold) = hold_by_reference(conn, r)? else {
                return Ok(Err(PrepaidError::UnknownOriginal {
                    reference: r.to_string(),
                }));
            };
            if hold.state != "open" && hold.state != "expired" {
                return Ok(Err(PrepaidError::HoldNotOpen {
                    reference: r.to_string(),
                    state: hold.state,
                }));
            }
            if x > hold.remaining {
                return Ok(Err(PrepaidError::CaptureExceedsHold {
                    reference: r.to_string(),
                    held: hold.remaining,
                    amount: x,
                }));
            }
            (current_card(conn, hold.account)?, Some(hold))
        }
        None => match open_card(conn, account, Some(amount))? {
            Ok(card) => (card, None),
            Err(e) => return Ok(Err(e)),
        },
    };
    if let Err(e) = available_for(conn, &card, x, hold.as_ref().map(|h| h.id), now_us)? {
        return Ok(Err(e));
    }
    let legs = debit_legs(conn, &card, x)?;
    let id = book(conn, "capture", reference, card.id, None, &legs, now_us)?;
    let merchant = match &hold {
        Some(hold) => merchant.or(&hold.merchant),
        None => merchant.clone(),
    };
    note_merchant(conn, id, &merchant)?;
    if let Some(hold) = hold {
        conn.prepare_cached(
            "UPDATE prepaid_holds SET state = 'captured', captured = ?2, remaining = 0 WHERE id = ?1",
        )?
        .execute(params![hold.id, x])?;
        if hold.state == "open" {
            holds::unheld(conn, hold.account, hold.remaining)?;
        }
    }
    Ok(Ok(Booked {
        id,
        balances: fresh_balances(conn, card.id, now_us)?,
        repeat: false,
    }))
}

/// Undoes all or `amount` of `original`: an open hold is released, a
/// captured purchase credited back, a load or refund debited again.
pub(super) fn reverse(
    conn: &Connection,
    reference: &str,
    original: &str,
    amount: Option<i64>,
    now_us: i64,
) -> Op<Booked> {
    if let Some(done) = repeat_of(conn, reference, now_us)? {
        return Ok(Ok(done));
    }
    let nothing = || PrepaidError::NothingToReverse {
        reference: original.to_string(),
    };
    if let Some(hold) = hold_by_reference(conn, original)? {
        let card = current_card(conn, hold.account)?;
        if hold.state == "open" || hold.state == "expired" {
            let undo = amount.unwrap_or(hold.remaining).min(hold.remaining);
            if undo <= 0 {
                return Ok(Err(nothing()));
            }
            let left = hold.remaining - undo;
            conn.prepare_cached(
                "UPDATE prepaid_holds SET remaining = ?2,
                 state = CASE WHEN CAST(?2 AS BIGINT) = 0 THEN 'released' ELSE state END WHERE id = ?1",
            )?
            .execute(params![hold.id, left])?;
            if hold.state == "open" {
                holds::unheld(conn, hold.account, undo)?;
            }
            if left == 0 {
                holds::released(conn, hold.account, hold.amount, hold.created_at_us)?;
            }
            let id = book(conn, "reversal", reference, card.id, None, &[], now_us)?;
            note_merchant(conn, id, &hold.merchant)?;
            return Ok(Ok(Booked {
                id,
                balances: fresh_balances(conn, card.id, now_us)?,
                repeat: false,
            }));
        }
        let refundable = hold.captured - hold.refunded;
        let undo = amount.unwrap_or(refundable).min(refundable);
        if undo <= 0 {
            return Ok(Err(nothing()));
        }
        if let Some(e) = over_max(&card, undo) {
            return Ok(Err(e));
        }
        let legs = credit_legs(conn, &card, undo)?;
        let id = book(conn, "reversal", reference, card.id, None, &legs, now_us)?;
        note_merchant(conn, id, &hold.merchant)?;
        conn.prepare_cached("UPDATE prepaid_holds SET refunded = refunded + ?2 WHERE id = ?1")?
            .execute(params![hold.id, undo])?;
        return Ok(Ok(Booked {
            id,
            balances: fresh_balances(conn, card.id, now_us)?,
            repeat: false,
        }));
    }
    let entry: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT id, kind, reversed FROM prepaid_entries WHERE reference = ?1")?
        .query_row([original], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((entry, kind, reversed)) = entry.filter(|(_, k, _)| k == "load" || k == "refund")
    else {
        return Ok(Err(PrepaidError::UnknownOriginal {
            reference: original.to_string(),
        }));
    };
    let (account, credited): (i64, i64) = conn.query_row(
        "SELECT p.account, p.amount FROM prepaid_postings p JOIN prepaid_accounts a ON a.id = p.account
         WHERE p.entry = ?1 AND a.kind = 'card'",
        [entry],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let reversible = credited - reversed;
    let undo = amount.unwrap_or(reversible).min(reversible);
    if undo <= 0 {
        return Ok(Err(nothing()));
    }
    let card = current_card(conn, account)?;
    if let Err(e) = available_for(conn, &card, undo, None, now_us)? {
        return Ok(Err(e));
    }
    let legs = debit_legs(conn, &card, undo)?;
    let id = book(
        conn,
        "reversal",
        reference,
        card.id,
        Some(entry),
        &legs,
        now_us,
    )?;
    conn.prepare_cached("UPDATE prepaid_entries SET reversed = reversed + ?2 WHERE id = ?1")?
        .execute(params![entry, undo])?;
    tracing::debug!(kind, entry, undo, "prepaid entry reversed");
    Ok(Ok(Booked {
        id,
        balances: fresh_balances(conn, card.id, now_us)?,
        repeat: false,
    }))
}

/// Moves `amount` between two cards of the same orderer. Sent again with
/// its reference it is a repeat (both cards' balances now) when the
/// reference booked this same move — cards, amount and currency — and
/// [`PrepaidError::ReferenceConflict`] when it booked anything else.
pub(super) fn move_balance(
    conn: &Connection,
    reference: &str,
    from: &str,
    to: &str,
    amount: &Money,
    now_us: i64,
) -> Op<Moved> {
    if let Some(prior) = prior(conn, reference)? {
        let same = prior.kind == "move"
            && prior.to.as_deref() == Some(to)
            && same_money(&prior, from, amount, -1);
        return match (same, card_by_name(conn, from)?, card_by_name(conn, to)?) {
            (true, Some(a), Some(b)) => Ok(Ok(Moved {
                from: balances_of(conn, &a, now_us)?,
                to: balances_of(conn, &b, now_us)?,
                repeat: true,
            })),
            _ => Ok(Err(conflict(reference))),
        };
    }
    let cards = (
        open_card(conn, from, Some(amount))?,
        open_card(conn, to, Some(amount))?,
    );
    let (a, b) = match cards {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    if a.orderer != b.orderer || a.id == b.id {
        return Ok(Err(PrepaidError::NotMovable {
            from: a.name,
            to: b.name,
        }));
    }
    let x = match minor(amount) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = available_for(conn, &a, x, None, now_us)? {
        return Ok(Err(e));
    }
    if let Some(e) = over_max(&b, x) {
        return Ok(Err(e));
    }
    book(
        conn,
        "move",
        reference,
        a.id,
        None,
        &[(a.id, -x), (b.id, x)],
        now_us,
    )?;
    Ok(Ok(Moved {
        from: fresh_balances(conn, a.id, now_us)?,
        to: fresh_balances(conn, b.id, now_us)?,
        repeat: false,
    }))
}

/// A card's balances (its replacement's, once replaced).
pub(super) fn balance(
    conn: &Connection,
    account: &str,
    now_us: i64,
) -> sql::Result<Result<Balances, PrepaidError>> {
    match card_by_name(conn, account)? {
        Some(card) => {
            let current = current_card(conn, card.id)?;
            Ok(Ok(balances_of(conn, &current, now_us)?))
        }
        None => Ok(Err(PrepaidError::UnknownCard {
            account: account.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use rusqlite::StatementStatus;

    /// The card read of every authorization is prepared once, whatever
    /// card it is bound to next.
    #[test]
    fn the_card_reads_are_not_prepared_again_per_card() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.db")).unwrap();
        let counts = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.write(|c| {
                c.execute_batch(
                    "INSERT INTO prepaid_orderers VALUES ('o', 'O', 'F', 0);
                     INSERT INTO prepaid_programmes (id, orderer, kind, currency, max_balance,
                         pin_delivery, created_at_us)
                     VALUES ('p', 'o', 'social-client', 978, 100, 'with-card', 0);
                     INSERT INTO prepaid_accounts (kind, name, orderer, programme, currency,
                         created_at_us)
                     VALUES ('card', 'a', 'o', 'p', 978, 0), ('card', 'b', 'o', 'p', 978, 0);",
                )?;
                let mut ids = Vec::new();
                for name in ["a", "b", "a", "b"] {
                    let card = card_by_name(c, name)?.expect("card");
                    ids.push(card_by_id(c, card.id)?.id);
                }
                assert_eq!(ids.len(), 4);
                [
                    format!("SELECT {CARD_COLUMNS} AND a.name = ?1"),
                    format!("SELECT {CARD_COLUMNS} AND a.id = ?1"),
                ]
                .iter()
                .map(|sql| {
                    Ok(c.as_sqlite()
                        .expect("the embedded store")
                        .prepare_cached(sql)?
                        .get_status(StatementStatus::RePrepare))
                })
                .collect::<sql::Result<Vec<i32>>>()
            }))
            .unwrap();
        assert_eq!(counts, [0, 0]);
    }
}
