//! The ledger's reads for people: orderers, their programmes and cards,
//! statements, and the audit of its invariants against the postings.

use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Ledger, PrepaidError, StatementLine, Subject, holds};

/// An orderer as the back office shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Orderer {
    pub id: String,
    /// Printed on every card.
    pub name: String,
    /// The bank account the orderer funds its cards from.
    pub funding_account: String,
    /// What the orderer's cards hold together (minor units): its pooled
    /// liability, equal to the sum of its card balances.
    pub pooled_liability: i64,
    pub programmes: Vec<Programme>,
}

/// A programme of an orderer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Programme {
    pub id: String,
    /// `social-client` or `small-purchase`.
    pub kind: String,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// Minor units.
    pub max_balance: i64,
    /// `with-card` or `separately`.
    pub pin_delivery: String,
    /// Card accounts opened in it (replaced ones included).
    pub cards: i64,
    /// Per-card daily limit on purchases and cash, minor units (null: none).
    pub daily_amount: Option<i64>,
    /// Per-card daily number of purchases and cash (null: none).
    pub daily_count: Option<i64>,
}

/// A card account and its balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardAccount {
    /// The card registry's `account` of the card.
    pub account: String,
    pub programme: String,
    /// `open`, or `replaced` (its money is on `replaced_by`).
    pub status: String,
    pub replaced_by: Option<String>,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// Minor units: the sum of its postings.
    pub balance: i64,
    /// Minor units: the balance less open, unexpired holds.
    pub available: i64,
}

impl Ledger {
    /// Every orderer, by id.
    ///
    /// # Errors
    /// [`PrepaidError::Store`].
    pub fn orderers(&self) -> Result<Vec<Orderer>, PrepaidError> {
        Ok(self.store.read(|c| {
            let mut ids = c.prepare_cached("SELECT id FROM prepaid_orderers ORDER BY id")?;
            let ids = ids
                .query_map(params![], |r| r.get::<String>(0))?
                .collect::<sql::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(orderer(c, &id)?);
            }
            Ok(out)
        })?)
    }

    /// One orderer with its programmes.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`], [`PrepaidError::Store`].
    pub fn orderer(&self, id: &str) -> Result<Orderer, PrepaidError> {
        self.store
            .read(|c| orderer(c, id))?
            .ok_or_else(|| PrepaidError::UnknownOrderer {
                orderer: id.to_string(),
            })
    }

    /// The card accounts of an orderer, by name.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`], [`PrepaidError::Store`].
    pub fn card_accounts(&self, orderer: &str) -> Result<Vec<CardAccount>, PrepaidError> {
        self.orderer(orderer)?;
        let now = super::now_us();
        Ok(self
            .store
            .read(|c| card_accounts(c, "a.orderer = ?1", orderer, now))?)
    }

    /// One card account (as it is, replaced or not).
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`], [`PrepaidError::Store`].
    pub fn card_account(&self, account: &str) -> Result<CardAccount, PrepaidError> {
        let now = super::now_us();
        self.store
            .read(|c| card_accounts(c, "a.name = ?1", account, now))?
            .pop()
            .ok_or_else(|| PrepaidError::UnknownCard {
                account: account.to_string(),
            })
    }
}

/// The period `[from, to)` in Unix microseconds of a statement's bounds:
/// each an RFC 3339 time or a UTC day (`2026-12-01`: `from` at its start,
/// `to` at its end); no `from`: the beginning, no `to`: now.
///
/// # Errors
/// [`PrepaidError::BadPeriod`] naming the bound that is neither, or when
/// `to` is not after `from`.
pub fn period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), PrepaidError> {
    let bound = |field: &'static str, text: &str, end: bool| {
        let bad = || PrepaidError::BadPeriod {
            field,
            reason: format!("{text:?} is neither an RFC 3339 time nor a day (YYYY-MM-DD)"),
        };
        if let Ok(t) = text.parse::<jiff::Timestamp>() {
            return Ok::<i64, PrepaidError>(t.as_microsecond());
        }
        let day: jiff::civil::Date = text.parse().map_err(|_| bad())?;
        let day = if end {
            day.tomorrow().map_err(|_| bad())?
        } else {
            day
        };
        let start = day.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
        Ok(start.timestamp().as_microsecond())
    };
    let from = from.map_or(Ok(0), |t| bound("from", t, false))?;
    let to = to.map_or_else(|| Ok(super::now_us() + 1), |t| bound("to", t, true))?;
    if to <= from {
        return Err(PrepaidError::BadPeriod {
            field: "to",
            reason: "is not after from".into(),
        });
    }
    Ok((from, to))
}

fn orderer(conn: &Connection, id: &str) -> sql::Result<Option<Orderer>> {
    let found = conn
        .query_row(
            "SELECT o.name, o.funding_account, -a.balance FROM prepaid_orderers o
             JOIN prepaid_accounts a ON a.kind = 'pooled' AND a.name = o.id WHERE o.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((name, funding_account, pooled_liability)) = found else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT p.id, p.kind, p.currency, p.max_balance, p.pin_delivery,
                (SELECT COUNT(*) FROM prepaid_accounts a WHERE a.kind = 'card' AND a.programme = p.id),
                p.daily_amount, p.daily_count
         FROM prepaid_programmes p WHERE p.orderer = ?1 ORDER BY p.id",
    )?;
    let programmes = stmt
        .query_map([id], |r| {
            Ok(Programme {
                id: r.get(0)?,
                kind: r.get(1)?,
                currency: r.get(2)?,
                max_balance: r.get(3)?,
                pin_delivery: r.get(4)?,
                cards: r.get(5)?,
                daily_amount: r.get(6)?,
                daily_count: r.get(7)?,
            })
        })?
        .collect::<sql::Result<_>>()?;
    Ok(Some(Orderer {
        id: id.to_string(),
        name,
        funding_account,
        pooled_liability,
        programmes,
    }))
}

/// Card accounts matching `filter` (one `?1` parameter), by name.
fn card_accounts(
    conn: &Connection,
    filter: &str,
    key: &str,
    now_us: i64,
) -> sql::Result<Vec<CardAccount>> {
    let sql = format!(
        "SELECT a.name, a.programme, a.status, r.name, a.currency, a.balance,
                CAST(a.balance - COALESCE((SELECT SUM(h.remaining) FROM prepaid_holds h
                    WHERE h.account = a.id AND h.state = 'open' AND h.expires_at_us > ?2), 0) AS BIGINT)
         FROM prepaid_accounts a LEFT JOIN prepaid_accounts r ON r.id = a.replaced_by
         WHERE a.kind = 'card' AND {filter} ORDER BY a.name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![key, now_us], |r| {
        Ok(CardAccount {
            account: r.get(0)?,
            programme: r.get(1)?,
            status: r.get(2)?,
            replaced_by: r.get(3)?,
            currency: r.get(4)?,
            balance: r.get(5)?,
            available: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Postings of a card or of an orderer (its cards and its pooled account)
/// booked in `[from_us, to_us)`, oldest first.
pub(super) fn statement(
    conn: &Connection,
    subject: &Subject,
    from_us: i64,
    to_us: i64,
) -> sql::Result<Vec<StatementLine>> {
    let (filter, key) = match subject {
        Subject::Card(name) => ("a.kind = 'card' AND a.name = ?1", name),
        Subject::Orderer(id) => ("a.orderer = ?1", id),
    };
    let sql = format!(
        "SELECT e.id, e.kind, e.reference, e.booked_at_us, a.kind, a.name, p.amount
         FROM prepaid_postings p JOIN prepaid_entries e ON e.id = p.entry
         JOIN prepaid_accounts a ON a.id = p.account
         WHERE {filter} AND e.booked_at_us >= ?2 AND e.booked_at_us < ?3
         ORDER BY e.id, a.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![key, from_us, to_us], |r| {
        Ok(StatementLine {
            entry: r.get(0)?,
            kind: r.get(1)?,
            reference: r.get(2)?,
            booked_at_us: r.get(3)?,
            account_kind: r.get(4)?,
            account: r.get(5)?,
            amount: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Every breach of the ledger's invariants, in words (empty: none).
pub(super) fn audit(conn: &Connection, now_us: i64) -> sql::Result<Vec<String>> {
    let checks: [(&str, &str); 6] = [
        (
            "entry's pooled and settlement postings do not sum to zero",
            "SELECT p.entry, CAST(SUM(p.amount) AS BIGINT) FROM prepaid_postings p
             JOIN prepaid_accounts a ON a.id = p.account
             WHERE a.kind <> 'card' GROUP BY p.entry HAVING SUM(p.amount) <> 0",
        ),
        (
            "entry's card postings of an orderer differ from its pooled posting",
            "SELECT p.entry, CAST(SUM(p.amount) AS BIGINT) FROM prepaid_postings p
             JOIN prepaid_accounts a ON a.id = p.account
             WHERE a.kind IN ('card', 'pooled') GROUP BY p.entry, a.orderer HAVING SUM(p.amount) <> 0",
        ),
        (
            "account's balance column differs from the sum of its postings",
            "SELECT id, d FROM (SELECT a.id, CAST(a.balance - COALESCE((SELECT SUM(amount)
                 FROM prepaid_postings WHERE account = a.id), 0) AS BIGINT) AS d
             FROM prepaid_accounts a) AS t WHERE d <> 0",
        ),
        (
            "orderer's card balances differ from its pooled liability",
            "SELECT id, d FROM (SELECT o.id, CAST(COALESCE((SELECT SUM(balance) FROM prepaid_accounts
                 WHERE orderer = o.id AND kind IN ('card', 'pooled')), 0) AS BIGINT) AS d
             FROM prepaid_orderers o) AS t WHERE d <> 0",
        ),
        (
            "card balance is negative",
            "SELECT id, balance FROM prepaid_accounts WHERE kind = 'card' AND balance < 0",
        ),
        (
            "card balance is over its programme's maximum",
            "SELECT a.id, a.balance FROM prepaid_accounts a JOIN prepaid_programmes p ON p.id = a.programme
             WHERE a.kind = 'card' AND a.balance > p.max_balance",
        ),
    ];
    let mut found = Vec::new();
    for (what, sql) in checks.into_iter().chain(holds::AUDITS) {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![], |r| {
            Ok((r.get::<sql::Value>(0)?, r.get::<i64>(1)?))
        })?;
        for row in rows {
            let (key, value) = row?;
            found.push(format!("{what}: {key:?} ({value})"));
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, CAST(a.balance - COALESCE(SUM(h.remaining), 0) AS BIGINT) FROM prepaid_accounts a
         JOIN prepaid_holds h ON h.account = a.id AND h.state = 'open' AND h.expires_at_us > ?1
         GROUP BY a.id HAVING a.balance - COALESCE(SUM(h.remaining), 0) < 0",
    )?;
    for row in stmt.query_map([now_us], |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)))? {
        let (id, available) = row?;
        found.push(format!(
            "card account {id} has negative available balance ({available})"
        ));
    }
    Ok(found)
}
