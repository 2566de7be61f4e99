//! Load files: an orderer's loads of many cards at once, all or nothing.
//!
//! A load file is CSV (RFC 4180, UTF-8) with the header line
//! `reference,card_account,amount,currency` and one load a line; the
//! byte-level format is in `docs/prepaid.md` ("Load file"). [`parse`] reads
//! the whole file first and reports every bad line with its line number,
//! column and reason. [`Ledger::import_load_file`] then checks every load
//! against the ledger and books them in one store transaction — or, when
//! any line is refused, books nothing and lists every refused line.
//!
//! Each line's `reference` becomes its entry's reference, so a file sent
//! twice books nothing twice: a line whose reference is booked already as
//! the same load (card account, amount and currency) is a repeat, counted
//! and skipped; a reference booked as anything else — a load with other
//! details, another operation — refuses its line, as [`Ledger::load`]
//! refuses it ([`PrepaidError::ReferenceConflict`]).
//!
//! Speed: the lines are booked in one transaction through cached
//! statements, card accounts are read once per file, and each account's
//! balance column is moved once at the end (every line still writes its
//! entry and its three postings).

use crate::store::sql;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashSet};

use foldhash::{HashMap, HashMapExt};

use crate::store::sql::Connection;

use super::db::{self, CardAccount};
use super::postings;
use super::{Ledger, PrepaidError, now_us};
use crate::cards::{CardError, CardRegistry};
use crate::money::{Currency, Money};
use crate::standin::balance_file::{self, LineError};
use crate::store::StoreError;

/// Largest load file, in bytes (256 MiB: about 4 million lines).
pub const MAX_LOAD_FILE_BYTES: usize = 256 << 20;
/// Most load lines in one file.
pub const MAX_LOAD_LINES: usize = 4_000_000;
/// At most this many problems are listed in a refusal (all are counted).
pub const MAX_LISTED_PROBLEMS: usize = 10_000;
/// The header line's columns, in order.
pub const LOAD_FILE_COLUMNS: [&str; 4] = ["reference", "card_account", "amount", "currency"];

/// One load of a file, checked as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadLine {
    /// 1-based line in the file.
    pub line: u64,
    /// The entry's reference (idempotency key).
    pub reference: String,
    pub card_account: String,
    pub amount: Money,
}

/// What an imported load file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Load lines in the file.
    pub lines: u64,
    /// Loads booked now.
    pub booked: u64,
    /// Lines booked by an earlier import of the same references: skipped.
    pub repeats: u64,
    /// Sum of the loads booked now, per currency (by numeric code).
    pub totals: Vec<Money>,
    /// Masked PANs of the inactive prepaid cards the file's first loads
    /// activated.
    pub activated: Vec<String>,
}

/// Why a load file was not booked. Nothing was booked in any case.
#[derive(Debug, thiserror::Error)]
pub enum LoadFileError {
    /// The file, or a load in it, is refused (the orderer's to fix):
    /// `problems` holds the first [`MAX_LISTED_PROBLEMS`], `more` counts
    /// the rest.
    #[error("load file refused, nothing booked: {} problem(s); first: {}", .problems.len() + .more, first(.problems))]
    Refused {
        problems: Vec<LineError>,
        more: usize,
    },
    /// The card registry failed (cards are activated in the same write).
    #[error("load file not booked: cards: {0}")]
    Cards(#[from] CardError),
    /// The store failed; see [`StoreError`] for whether it may have been
    /// committed (importing the same file again is safe).
    #[error("load file not booked: store: {0}")]
    Store(#[from] StoreError),
}

impl LoadFileError {
    /// Whether sending the same file again later can help: a store failure
    /// may pass, a refused file stays refused.
    pub fn is_retryable(&self) -> bool {
        match self {
            LoadFileError::Refused { .. } => false,
            LoadFileError::Cards(e) => e.is_retryable(),
            LoadFileError::Store(e) => e.is_retryable(),
        }
    }
}

fn first(problems: &[LineError]) -> String {
    problems
        .first()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Problems found so far: every one counted, the first
/// [`MAX_LISTED_PROBLEMS`] kept.
#[derive(Default)]
struct Problems {
    listed: Vec<LineError>,
    more: usize,
}

impl Problems {
    fn push(&mut self, line: u64, column: Option<&str>, reason: String) {
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(LineError {
                line,
                column: column.map(str::to_string),
                reason,
            });
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn refused(self) -> LoadFileError {
        LoadFileError::Refused {
            problems: self.listed,
            more: self.more,
        }
    }
}

/// Reads a load file whole: every load line checked as text, every
/// problem listed with its line and column.
///
/// # Errors
/// [`LoadFileError::Refused`] with every problem: not CSV, a header other
/// than [`LOAD_FILE_COLUMNS`], no load line, a line without 4 columns, a
/// bad value (empty, longer than 64 characters, control characters, an
/// unknown currency, an amount that is not positive with exactly the
/// currency's decimals), a reference that repeats an earlier line's; a file
/// over [`MAX_LOAD_FILE_BYTES`] or [`MAX_LOAD_LINES`].
pub fn parse(file: &[u8]) -> Result<Vec<LoadLine>, LoadFileError> {
    let mut problems = Problems::default();
    if file.len() > MAX_LOAD_FILE_BYTES {
        problems.push(
            0,
            None,
            format!("file is larger than {MAX_LOAD_FILE_BYTES} bytes"),
        );
        return Err(problems.refused());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let mut record = csv::ByteRecord::new();
    let mut header_seen = false;
    let mut lines = Vec::new();
    let mut references: HashMap<String, u64> = HashMap::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                problems.push(line, None, format!("not CSV: {e}"));
                return Err(problems.refused());
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if !header_seen {
            header_seen = true;
            let header: Vec<&[u8]> = record.iter().collect();
            let expected: Vec<&[u8]> = LOAD_FILE_COLUMNS.iter().map(|c| c.as_bytes()).collect();
            if header != expected {
                problems.push(
                    line,
                    None,
                    format!("the header must be {:?}", LOAD_FILE_COLUMNS.join(",")),
                );
                return Err(problems.refused());
            }
            continue;
        }
        if lines.len() >= MAX_LOAD_LINES {
            problems.push(line, None, format!("more than {MAX_LOAD_LINES} load lines"));
            return Err(problems.refused());
        }
        if record.len() != LOAD_FILE_COLUMNS.len() {
            let reason = format!(
                "{} column(s), expected {} ({})",
                record.len(),
                LOAD_FILE_COLUMNS.len(),
                LOAD_FILE_COLUMNS.join(",")
            );
            problems.push(line, None, reason);
            continue;
        }
        if let Some(load) = parse_line(&record, line, &mut problems) {
            match references.entry(load.reference.clone()) {
                Entry::Occupied(earlier) => problems.push(
                    line,
                    Some("reference"),
                    format!(
                        "{} repeats line {}",
                        balance_file::shown(&load.reference),
                        earlier.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(line);
                    lines.push(load);
                }
            }
        }
    }
    if !header_seen {
        problems.push(0, None, "the file is empty: no header line".into());
    } else if lines.is_empty() && problems.is_empty() {
        problems.push(0, None, "no load lines after the header".into());
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems.refused())
    }
}

/// One record's values; problems are pushed, `None` when there were any.
fn parse_line(record: &csv::ByteRecord, line: u64, problems: &mut Problems) -> Option<LoadLine> {
    let before = problems.listed.len() + problems.more;
    let field = |i: usize| record.get(i).unwrap_or_default();
    let mut text = |i: usize| {
        let reason = match balance_file::value(field(i)) {
            Ok("") => "is empty".to_string(),
            Ok(text) => return Some(text.to_string()),
            Err(e) => e.to_string(),
        };
        problems.push(line, Some(LOAD_FILE_COLUMNS[i]), reason);
        None
    };
    let reference = text(0);
    let card_account = text(1);
    let currency = match balance_file::value(field(3)).and_then(balance_file::currency) {
        Ok(currency) => Some(currency),
        Err(e) => {
            problems.push(line, Some("currency"), e.to_string());
            None
        }
    };
    let amount = currency.and_then(|c| match amount(field(2), c) {
        Ok(amount) => Some(amount),
        Err(reason) => {
            problems.push(line, Some("amount"), reason);
            None
        }
    });
    if problems.listed.len() + problems.more > before {
        return None;
    }
    Some(LoadLine {
        line,
        reference: reference?,
        card_account: card_account?,
        amount: amount?,
    })
}

/// A positive decimal amount with exactly the currency's decimals ("12.50"
/// EUR, "1250" JPY): a bare "1250" for EUR is refused rather than read as
/// 1250 euros or 12.50.
fn amount(raw: &[u8], currency: Currency) -> Result<Money, String> {
    let text = String::from_utf8_lossy(raw);
    let exponent = usize::from(currency.exponent);
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    let with_point = text.contains('.');
    let shape_ok = decimals == exponent && (with_point == (exponent > 0));
    let bad = || {
        format!(
            "{} is not a positive amount in {} with exactly {exponent} decimal(s)",
            balance_file::shown(&text),
            currency.code
        )
    };
    if !shape_ok {
        return Err(bad());
    }
    let money = Money::parse_decimal(&text, currency).map_err(|_| bad())?;
    if money.minor == 0 || i64::try_from(money.minor).is_err() {
        return Err(bad());
    }
    Ok(money)
}

/// Page cache of the write connection while a load file is booked (KiB):
/// a large file touches the postings' account index all over, and with the
/// default cache (2 MiB) SQLite would spill and re-read those pages
/// throughout the transaction.
const BOOKING_CACHE_KIB: i64 = 128 << 10;

/// [`apply`] with the larger page cache, set back to what it was after.
fn apply_with_cache(
    conn: &Connection,
    lines: &[LoadLine],
    now_us: i64,
) -> sql::Result<Result<(LoadReport, HashSet<String>), Problems>> {
    conn.with_page_cache(BOOKING_CACHE_KIB, || apply(conn, lines, now_us))
}

/// A card account of the file, with its running balance.
struct FileCard {
    account: CardAccount,
    /// The balance before the file.
    opening_balance: i64,
    /// The legs of a load of 1 (card, pooled, settlement), scaled per line.
    unit_legs: Vec<(i64, i64)>,
}

/// Checks every load against the ledger and books them all, or refuses
/// the file with every refused line. Returns the report (without the
/// activated cards) and the card accounts loaded now.
fn apply(
    conn: &Connection,
    lines: &[LoadLine],
    now_us: i64,
) -> sql::Result<Result<(LoadReport, HashSet<String>), Problems>> {
    let mut problems = Problems::default();
    let mut cards: HashMap<&str, Option<FileCard>> = HashMap::new();
    let mut to_book: Vec<(&LoadLine, i64)> = Vec::with_capacity(lines.len());
    let mut repeats = 0;
    let earlier = earlier_uses(conn, lines)?;
    for load in lines {
        let x = i64::try_from(load.amount.minor).unwrap_or(i64::MAX);
        match earlier.get(load.reference.as_str()) {
            Some(Earlier::Load {
                account,
                currency,
                amount,
            }) if *account == load.card_account
                && *currency == load.amount.currency.numeric
                && *amount == x =>
            {
                repeats += 1;
                continue;
            }
            Some(earlier) => {
                let reason = match earlier {
                    Earlier::Load { .. } => format!(
                        "reference {} is booked already as a load with another card account, amount or currency",
                        balance_file::shown(&load.reference)
                    ),
                    Earlier::Other => format!(
                        "reference {} is booked already as another operation",
                        balance_file::shown(&load.reference)
                    ),
                };
                problems.push(load.line, Some("reference"), reason);
                continue;
            }
            None => {}
        }
        let card = match cards.entry(load.card_account.as_str()) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert(file_card(conn, &load.card_account)?),
        };
        let Some(card) = card else {
            let e = PrepaidError::UnknownCard {
                account: load.card_account.clone(),
            };
            problems.push(load.line, Some("card_account"), e.to_string());
            continue;
        };
        if let Some(e) = refusal(&card.account, &load.amount, x) {
            let column = match e {
                PrepaidError::CurrencyMismatch { .. } => "currency",
                PrepaidError::OverMax { .. } => "amount",
                _ => "card_account",
            };
            problems.push(load.line, Some(column), e.to_string());
            continue;
        }
        card.account.balance += x;
        to_book.push((load, x));
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let mut totals: BTreeMap<u16, (Currency, u64)> = BTreeMap::new();
    let mut legs = Vec::with_capacity(3);
    let mut entries = postings::EntryWriter::new(conn)?;
    for &(load, x) in &to_book {
        let Some(Some(card)) = cards.get(load.card_account.as_str()) else {
            continue;
        };
        legs.clear();
        legs.extend(card.unit_legs.iter().map(|&(a, unit)| (a, unit * x)));
        entries.write(
            "load",
            &load.reference,
            card.account.id,
            None,
            &legs,
            now_us,
        )?;
        let total = totals
            .entry(load.amount.currency.numeric)
            .or_insert((load.amount.currency, 0));
        total.1 += load.amount.minor;
    }
    // Each leg of a load is its unit leg times the amount: an account moves
    // by its unit leg times the sum of the file's loads of each card.
    let mut deltas: BTreeMap<i64, i64> = BTreeMap::new();
    for card in cards.values().flatten() {
        let loaded = card.account.balance - card.opening_balance;
        for &(account, unit) in &card.unit_legs {
            *deltas.entry(account).or_default() += unit * loaded;
        }
    }
    for (account, delta) in deltas {
        if delta != 0 {
            postings::add_to_balance(conn, account, delta)?;
        }
    }
    let loaded = cards
        .iter()
        .filter(|(_, card)| {
            card.as_ref()
                .is_some_and(|c| c.account.balance != c.opening_balance)
        })
        .map(|(&name, _)| name.to_string())
        .collect();
    Ok(Ok((
        LoadReport {
            lines: lines.len() as u64,
            booked: to_book.len() as u64,
            repeats,
            totals: totals
                .into_values()
                .map(|(currency, minor)| Money::new(minor, currency))
                .collect(),
            activated: Vec::new(),
        },
        loaded,
    )))
}

/// Why the ledger refuses one load (as [`Ledger::load`] would), given the
/// card's balance with the file's earlier lines.
fn refusal(card: &CardAccount, amount: &Money, x: i64) -> Option<PrepaidError> {
    if card.replaced_by.is_some() {
        return Some(PrepaidError::CardReplaced {
            account: card.name.clone(),
        });
    }
    if amount.currency.numeric != card.currency {
        return Some(PrepaidError::CurrencyMismatch {
            account: card.name.clone(),
            account_currency: card.currency,
            amount_currency: amount.currency.numeric,
        });
    }
    db::over_max(card, x)
}

fn file_card(conn: &Connection, name: &str) -> sql::Result<Option<FileCard>> {
    let Some(account) = db::card_by_name(conn, name)? else {
        return Ok(None);
    };
    let unit_legs = db::credit_legs(conn, &account, 1)?;
    Ok(Some(FileCard {
        opening_balance: account.balance,
        account,
        unit_legs,
    }))
}

/// What a reference was used for before.
enum Earlier {
    /// A load of `amount` minor units of `currency` (numeric) onto card
    /// account `account`.
    Load {
        account: String,
        currency: u16,
        amount: i64,
    },
    /// Another kind of entry, or a hold.
    Other,
}

/// What the file's references were used for before, found with one query
/// over all of them (one list parameter, each text probing the reference
/// indexes) rather than two queries a line.
fn earlier_uses(conn: &Connection, lines: &[LoadLine]) -> sql::Result<HashMap<String, Earlier>> {
    let references = sql::TextList::new(lines.iter().map(|l| l.reference.as_str()));
    let list = conn.dialect().text_list(1);
    let mut found = HashMap::new();
    let mut entries = conn.prepare_cached(&format!(
        "SELECT e.reference, e.kind, a.name, p.amount, a.currency FROM {list} AS j
         JOIN prepaid_entries e ON e.reference = j.value
         JOIN prepaid_accounts a ON a.id = e.card
         LEFT JOIN prepaid_postings p ON p.entry = e.id AND p.account = e.card"
    ))?;
    let rows = entries.query_map([&references], |r| {
        let (kind, amount): (String, Option<i64>) = (r.get(1)?, r.get(3)?);
        let earlier = match (kind.as_str(), amount) {
            ("load", Some(amount)) => Earlier::Load {
                account: r.get(2)?,
                currency: r.get(4)?,
                amount,
            },
            _ => Earlier::Other,
        };
        Ok((r.get::<String>(0)?, earlier))
    })?;
    for row in rows {
        let (reference, earlier) = row?;
        found.insert(reference, earlier);
    }
    let mut holds = conn.prepare_cached(&format!(
        "SELECT h.reference FROM {list} AS j JOIN prepaid_holds h ON h.reference = j.value"
    ))?;
    for reference in holds.query_map([&references], |r| r.get::<String>(0))? {
        found.insert(reference?, Earlier::Other);
    }
    Ok(found)
}

impl Ledger {
    /// Imports a load file (see [`parse`] and `docs/prepaid.md`): every line
    /// checked — unknown or replaced card account, currency, the programme's
    /// maximum counting the file's earlier lines for the same card, a
    /// reference booked already as something else — and then all loads
    /// booked in one durable store transaction, together with the
    /// activation (in `cards`) of the inactive prepaid cards whose first
    /// load this is. Lines booked by an earlier import of the file (same
    /// reference, card account, amount and currency) are repeats: skipped
    /// and counted, so importing a file twice books it once.
    ///
    /// # Errors
    /// [`LoadFileError::Refused`] with every problem of the file or refused
    /// line (nothing booked), [`LoadFileError::Cards`],
    /// [`LoadFileError::Store`].
    pub async fn import_load_file(
        &self,
        cards: &CardRegistry,
        file: &[u8],
    ) -> Result<LoadReport, LoadFileError> {
        let lines = parse(file)?;
        let now = now_us();
        let done = cards
            .activate_loaded(move |conn| apply_with_cache(conn, &lines, now))
            .await?;
        match done {
            Ok((mut report, activated)) => {
                report.activated = activated.into_iter().map(|c| c.pan_masked).collect();
                report.activated.sort();
                Ok(report)
            }
            Err(problems) => Err(problems.refused()),
        }
    }
}
