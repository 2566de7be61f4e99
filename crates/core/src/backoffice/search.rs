//! Transaction search over the journal: by card, account, institution,
//! terminal, RRN, STAN, time range, response code and who decided, newest
//! first, a page at a time.
//!
//! A card is looked for by its keyed hash: the operator enters the full PAN,
//! the caller hashes it with the hub's key ([`Criteria::compile`] takes the
//! hasher), and rows come back with the masked form only. Pages are cut by
//! transaction id (`before`), which is time-ordered, so a page never repeats
//! or skips a row while new rows arrive. Every searchable key has an index
//! `(key, txn_id)`: terminal, RRN and STAN on the journal (migration
//! `0004_search.sql`), card and account in search tables filled in bulk
//! ([`super::search_index`]); see `docs/back-office.md`.

use crate::store::sql;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sql::Value as SqlValue;

use super::{JOURNAL_COLUMNS, JournalRow, journal_row, search_index};
use crate::cards::PanHash;
use crate::iso8583::ValueError;
use crate::iso8583::fields::{Pan, ResponseCode};
use crate::journal::decision::DecidedBy;
use crate::journal::txn_id::TxnId;
use crate::store::{Store, StoreError};

/// Rows on a page unless asked otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Rows on a page at most.
pub const MAX_LIMIT: u32 = 500;

/// What to look for, as the API's JSON body and the CLI's flags give it.
/// Every criterion given must match; none given lists the newest rows.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SearchCriteria)]
pub struct Criteria {
    /// The full card number (12 to 19 digits); looked up by its keyed hash.
    pub card: Option<String>,
    pub account: Option<String>,
    pub institution: Option<String>,
    pub terminal: Option<String>,
    /// DE 37.
    pub rrn: Option<String>,
    /// DE 11.
    pub stan: Option<String>,
    /// Earliest time, inclusive: RFC 3339 (`2026-09-01T08:00:00Z`) or a UTC day (`2026-09-01`).
    pub from: Option<String>,
    /// Latest time: RFC 3339 (exclusive) or a UTC day (that whole day included).
    pub to: Option<String>,
    /// DE 39 answered, e.g. `51`.
    #[schema(value_type = Option<ResponseCode>)]
    pub response_code: Option<String>,
    /// Who decided.
    #[schema(value_type = Option<DecidedBy>)]
    pub decided_by: Option<String>,
    /// The page after another one: its `next_before`.
    #[schema(value_type = Option<TxnId>)]
    pub before: Option<String>,
    /// Rows per page, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    // `tests/openapi.rs` checks the literal bounds against those constants.
    #[schema(minimum = 1, maximum = 500, default = json!(DEFAULT_LIMIT))]
    pub limit: Option<u32>,
}

/// Hides the card number: criteria end up in logs and error messages.
impl fmt::Debug for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Criteria")
            .field("card", &self.card.as_deref().map(crate::mask::pan))
            .field("account", &self.account)
            .field("institution", &self.institution)
            .field("terminal", &self.terminal)
            .field("rrn", &self.rrn)
            .field("stan", &self.stan)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("response_code", &self.response_code)
            .field("decided_by", &self.decided_by)
            .field("before", &self.before)
            .field("limit", &self.limit)
            .finish()
    }
}

/// A criterion that cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidCriterion {
    /// The criterion's name, as in [`Criteria`].
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: CriterionProblem,
}

/// What is wrong with a criterion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriterionProblem {
    /// The card number is not a PAN.
    #[error("{0}")]
    Pan(#[from] ValueError),
    /// Not two letters or digits.
    #[error("{0:?} is not a response code (two letters or digits)")]
    ResponseCode(String),
    /// Not one of the deciders.
    #[error("{0:?} is not one of account_system, stand_in, hub_rule")]
    DecidedBy(String),
    /// Neither a timestamp nor a day.
    #[error("{0:?} is neither an RFC 3339 time (2026-09-01T08:00:00Z) nor a day (2026-09-01)")]
    Moment(String),
    /// A day whose start (or the next day's) is outside the calendar.
    #[error("day {0} is outside the supported range")]
    DayOutOfRange(Date),
    /// `to` is not after `from`.
    #[error("is not after from")]
    NotAfterFrom,
    /// Not a transaction id.
    #[error("{0:?} is not a transaction id (16 hex digits)")]
    Before(String),
    /// A page size out of range.
    #[error("{0} is not between 1 and {MAX_LIMIT}")]
    Limit(u32),
}

fn invalid(field: &'static str, reason: impl Into<CriterionProblem>) -> InvalidCriterion {
    InvalidCriterion {
        field,
        reason: reason.into(),
    }
}

/// Validated criteria, ready to run.
#[derive(Debug, Clone)]
pub struct Query {
    /// `column = value` conditions.
    equal: Vec<(&'static str, SqlValue)>,
    /// Transaction ids in `[from, to)`.
    from: Option<TxnId>,
    to: Option<TxnId>,
    limit: u32,
}

impl Criteria {
    /// Checks every criterion and hashes the card number with `hash` (the
    /// hub's PAN key).
    ///
    /// # Errors
    /// The first criterion that is malformed, named.
    pub fn compile(&self, hash: impl Fn(&Pan) -> PanHash) -> Result<Query, InvalidCriterion> {
        let mut equal = Vec::new();
        if let Some(card) = given(&self.card) {
            let pan = Pan::new(card).map_err(|e| invalid("card", e))?;
            equal.push(("pan_hash", SqlValue::Blob(hash(&pan).0.to_vec())));
        }
        for (field, value) in [
            ("account", &self.account),
            ("institution", &self.institution),
            ("terminal", &self.terminal),
            ("rrn", &self.rrn),
            ("stan", &self.stan),
        ] {
            if let Some(value) = given(value) {
                equal.push((field, SqlValue::Text(value.to_string())));
            }
        }
        if let Some(code) = given(&self.response_code) {
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "response_code",
                    CriterionProblem::ResponseCode(code.to_owned()),
                ));
            }
            equal.push(("response_code", SqlValue::Text(code.to_string())));
        }
        if let Some(by) = given(&self.decided_by) {
            let Some(by) = DecidedBy::parse(by) else {
                return Err(invalid(
                    "decided_by",
                    CriterionProblem::DecidedBy(by.to_owned()),
                ));
            };
            equal.push(("decided_by", SqlValue::Text(by.as_str().to_owned())));
        }
        let from = given(&self.from)
            .map(|t| moment(t, false).map_err(|e| invalid("from", e)))
            .transpose()?;
        let mut to = given(&self.to)
            .map(|t| moment(t, true).map_err(|e| invalid("to", e)))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            return Err(invalid("to", CriterionProblem::NotAfterFrom));
        }
        if let Some(before) = given(&self.before) {
            let before: TxnId = before
                .parse()
                .map_err(|_| invalid("before", CriterionProblem::Before(before.to_owned())))?;
            to = Some(to.map_or(before, |to| to.min(before)));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", CriterionProblem::Limit(limit)));
        }
        Ok(Query {
            equal,
            from,
            to,
            limit,
        })
    }
}

/// A criterion's text, when given and not blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The transaction id where a moment starts (see [`instant`]).
fn moment(text: &str, end_of_day: bool) -> Result<TxnId, CriterionProblem> {
    instant(text, end_of_day).map(TxnId::at)
}

/// Where a moment starts: an RFC 3339 timestamp, or a UTC day — its
/// start, or with `end_of_day` the start of the next day (so a range
/// `from`..`to` of days holds the whole `to` day).
///
/// # Errors
/// [`CriterionProblem::Moment`] for text that is neither,
/// [`CriterionProblem::DayOutOfRange`].
pub fn instant(text: &str, end_of_day: bool) -> Result<Timestamp, CriterionProblem> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let day: Date = text
        .parse()
        .map_err(|_| CriterionProblem::Moment(text.to_owned()))?;
    let out_of_range = |_| CriterionProblem::DayOutOfRange(day);
    let day = if end_of_day {
        day.tomorrow().map_err(out_of_range)?
    } else {
        day
    };
    let start = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(out_of_range)?;
    Ok(start.timestamp())
}

/// One page of results, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SearchPage)]
pub struct Page {
    pub transactions: Vec<JournalRow>,
    /// Pass as `before` for the next page; absent on the last page.
    #[schema(value_type = Option<TxnId>)]
    pub next_before: Option<String>,
}

impl Query {
    /// The SQL and its parameters (the limit asks one row more than a page,
    /// to tell whether another page follows).
    ///
    /// A card or an account is read through its search table
    /// ([`search_index`]): the newest matching rows it lists, united with
    /// the matching rows still waiting to be listed, in one statement (one
    /// snapshot: a row the catch-up moves meanwhile is seen once). `CROSS
    /// JOIN` keeps SQLite from scanning the journal for the other side.
    fn sql(&self) -> (String, Vec<SqlValue>) {
        let mut args: Vec<SqlValue> = Vec::with_capacity(self.equal.len() + 3);
        // (column, operator, parameter number)
        let mut filters = Vec::with_capacity(self.equal.len() + 2);
        for (column, value) in &self.equal {
            args.push(value.clone());
            filters.push((*column, "=", args.len()));
        }
        for (bound, op) in [(self.from, ">="), (self.to, "<")] {
            if let Some(id) = bound {
                args.push(SqlValue::Integer(id.0));
                filters.push(("txn_id", op, args.len()));
            }
        }
        args.push(SqlValue::Integer(i64::from(self.limit) + 1));
        let limit = args.len();
        // The filters whose column `keep` accepts, on table `alias`.
        let on = |alias: &str, keep: &dyn Fn(&str) -> bool| {
            filters
                .iter()
                .filter(|(column, ..)| keep(column))
                .map(|(column, op, n)| format!(" AND {alias}.{column} {op} ?{n}"))
                .collect::<String>()
        };
        let deferred = self
            .equal
            .iter()
            .find_map(|(column, _)| search_index::table_of(column).map(|t| (*column, t)));
        let sql = match deferred {
            None => format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal j WHERE TRUE{} \
                 ORDER BY txn_id DESC LIMIT ?{limit}",
                on("j", &|_| true)
            ),
            Some((key, table)) => format!(
                "SELECT {JOURNAL_COLUMNS} FROM journal WHERE txn_id IN (\
                 SELECT txn_id FROM (SELECT k.txn_id FROM {table} k \
                 CROSS JOIN journal j WHERE j.txn_id = k.txn_id{}{} \
                 ORDER BY k.txn_id DESC LIMIT ?{limit}) AS listed \
                 UNION SELECT txn_id FROM (SELECT u.txn_id FROM journal_unindexed u \
                 CROSS JOIN journal j WHERE j.txn_id = u.txn_id{} \
                 ORDER BY u.txn_id DESC LIMIT ?{limit}) AS waiting) \
                 ORDER BY txn_id DESC LIMIT ?{limit}",
                on("k", &|c| c == key || c == "txn_id"),
                on("j", &|c| c != key && c != "txn_id"),
                on("j", &|_| true),
            ),
        };
        (sql, args)
    }

    /// Runs the query on a read connection.
    ///
    /// # Errors
    /// The store's error.
    pub fn run(&self, store: &Store) -> Result<Page, StoreError> {
        let (sql, args) = self.sql();
        let limit = self.limit as usize;
        store.read(move |c| {
            let mut rows: Vec<JournalRow> = c
                .prepare_cached(&sql)?
                .query_map(&args, journal_row)?
                .collect::<sql::Result<_>>()?;
            let next_before = if rows.len() > limit {
                rows.truncate(limit);
                rows.last().map(|r| r.txn_id.clone())
            } else {
                None
            };
            Ok(Page {
                transactions: rows,
                next_before,
            })
        })
    }

    /// SQLite's plan for the query, one step per line (tests and the
    /// benchmark check that every key is searched through its index).
    ///
    /// # Errors
    /// The store's error.
    pub fn plan(&self, store: &Store) -> Result<String, StoreError> {
        let (sql, args) = self.sql();
        store.read(move |c| {
            let mut plan = c.prepare_cached(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let steps = plan
                .query_map(&args, |r| r.get::<String>(3))?
                .collect::<sql::Result<Vec<_>>>()?;
            Ok(steps.join("\n"))
        })
    }
}
