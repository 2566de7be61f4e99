//! The reference account system's ledger: balances and holds per account,
//! and every transaction with the answer it got, in a small SQLite file of
//! its own (or in memory).
//!
//! Its own schema on a plain rusqlite connection, not [`cardhub_core::store`]: the
//! store's migrations are cardhub's schema, and this is a different system
//! that only happens to ship in the same binary.
//!
//! Durability: each request is one `BEGIN IMMEDIATE … COMMIT` (WAL,
//! `synchronous=FULL`) holding its balance change and its answer; the
//! answer is sent only after the commit. So a repeated `transactionId` is
//! answered from the table, never applied twice, also across restarts.
//!
//! Amounts are integer minor units; balances are `i64` and may go negative
//! only through an Advice (a decision already made elsewhere).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::soap::{Answer, Request};
use cardhub_core::account::Kind;
use cardhub_core::account::Operation;

/// ISO 8583:1993 action codes the ledger answers with; all are in
/// `adapters/canonical.toml`'s result table.
pub mod codes {
    /// Approved (DE 39 00).
    pub const APPROVED: &str = "000";
    /// Invalid amount (DE 39 13): a reversal past what remains.
    pub const INVALID_AMOUNT: &str = "110";
    /// Invalid card number (DE 39 14): the account is not in the ledger.
    pub const UNKNOWN_ACCOUNT: &str = "111";
    /// Not sufficient funds (DE 39 51).
    pub const INSUFFICIENT_FUNDS: &str = "116";
    /// Reversal accepted (DE 39 00).
    pub const REVERSED: &str = "400";
    /// Original transaction not found (DE 39 25).
    pub const ORIGINAL_NOT_FOUND: &str = "480";
    /// Invalid transaction (DE 39 12): wrong kind for the operation, or the
    /// account's currency differs.
    pub const INVALID_TRANSACTION: &str = "902";
    /// Issuer inoperative (DE 39 91): fault code when closed.
    pub const CLOSED: &str = "907";
    /// System malfunction (DE 39 96): fault code of an internal error.
    pub const MALFUNCTION: &str = "909";
    /// Duplicate transmission (DE 39 94): a transactionId reused by
    /// another operation.
    pub const DUPLICATE: &str = "913";
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    account  TEXT PRIMARY KEY,
    currency INTEGER NOT NULL,
    ledger   INTEGER NOT NULL,
    held     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS txns (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    operation TEXT NOT NULL,
    account   TEXT NOT NULL,
    original  TEXT,
    effect    TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    result    TEXT NOT NULL,
    code      TEXT NOT NULL,
    auth_id   TEXT,
    available INTEGER,
    ledger    INTEGER,
    message   TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS txns_original ON txns(original);
";

/// What a transaction did to its account, and a reversal undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Available down, ledger unchanged (a purchase authorization).
    Hold,
    /// Both down (cash).
    Debit,
    /// Both up (load, refund).
    Credit,
    /// Nothing (declined, inquiry, reversal, acknowledged advice).
    None,
}

/// An account line of the accounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub account: String,
    /// Minor units.
    pub available: i64,
    /// ISO 4217 numeric.
    pub currency: u16,
}

/// A ledger that cannot be opened or written. Ours, not the caller's; a
/// retry may help after the cause (disk, lock) is gone.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ledger: account {account}: balance past the range of i64")]
    Overflow { account: String },
    /// The thread applying a request panicked (a bug); nothing was committed.
    #[error("ledger: the request's thread failed: {0}")]
    Panicked(String),
}

/// The ledger: one connection, used by one request at a time.
pub struct Ledger {
    conn: Connection,
}

struct Account {
    currency: u16,
    ledger: i64,
    held: i64,
}

impl Account {
    fn balances(&self) -> (i64, i64) {
        (self.ledger - self.held, self.ledger)
    }
}

impl Effect {
    fn as_str(self) -> &'static str {
        match self {
            Effect::Hold => "hold",
            Effect::Debit => "debit",
            Effect::Credit => "credit",
            Effect::None => "none",
        }
    }

    fn parse(text: &str) -> Effect {
        match text {
            "hold" => Effect::Hold,
            "debit" => Effect::Debit,
            "credit" => Effect::Credit,
            _ => Effect::None,
        }
    }

    /// The effect of moving money of `kind`.
    fn of(kind: Kind) -> Effect {
        match kind {
            Kind::Purchase => Effect::Hold,
            Kind::Cash => Effect::Debit,
            Kind::Load | Kind::Refund => Effect::Credit,
            Kind::BalanceInquiry => Effect::None,
        }
    }
}

impl Ledger {
    /// Opens (creating) the ledger file, or an in-memory ledger for `None`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Open`] when the file cannot be opened or its schema
    /// created.
    pub fn open(path: Option<&Path>) -> Result<Ledger, LedgerError> {
        let name = path.map_or(":memory:".into(), |p| p.display().to_string());
        let open = || -> rusqlite::Result<Connection> {
            let conn = match path {
                Some(p) => Connection::open(p)?,
                None => Connection::open_in_memory()?,
            };
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = open().map_err(|source| LedgerError::Open { path: name, source })?;
        Ok(Ledger { conn })
    }

    /// Adds the accounts not in the ledger yet (a restarted ledger keeps its
    /// balances); returns how many were added.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Sqlite`]; nothing is added then.
    pub fn open_accounts(&mut self, accounts: &[Opening]) -> Result<usize, LedgerError> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        for a in accounts {
            added += tx.execute(
                "INSERT OR IGNORE INTO accounts (account, currency, ledger) VALUES (?1, ?2, ?3)",
                params![a.account, a.currency, a.available],
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Applies `request` once: a `transactionId` seen before gets its first
    /// answer again (`true` = a repeat) and changes nothing.
    ///
    /// # Errors
    ///
    /// [`LedgerError`]: SQLite failed or a balance would overflow; nothing
    /// was applied.
    pub fn apply(&mut self, request: &Request) -> Result<(Answer, bool), LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some((operation, answer)) = stored(&tx, &request.transaction_id)? {
            if operation == request.operation.as_str() {
                return Ok((answer, true));
            }
            let message = format!("transactionId already used by {operation}");
            return Ok((answer_of(request, codes::DUPLICATE, None, &message), true));
        }
        let (answer, txn) = decide(&tx, request)?;
        let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM txns", [], |r| {
            r.get(0)
        })?;
        let mut answer = answer;
        if answer.result == "APPROVED"
            && matches!(request.operation, Operation::Authorize | Operation::Load)
        {
            answer.auth_id = Some(format!("{:06}", seq % 1_000_000));
        }
        if answer.balances.is_some() {
            answer.currency = load(&tx, &txn.account)?.map(|a| a.currency);
        }
        let (available, ledger) = answer.balances.unzip();
        tx.execute(
            "INSERT INTO txns (seq, id, operation, account, original, effect, remaining,
                 result, code, auth_id, available, ledger, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                seq,
                request.transaction_id,
                request.operation.as_str(),
                txn.account,
                request.original_transaction_id,
                txn.effect.as_str(),
                txn.amount,
                answer.result,
                answer.code,
                answer.auth_id,
                available,
                ledger,
                answer.message,
            ],
        )?;
        tx.commit()?;
        Ok((answer, false))
    }

    /// The available and ledger balance of `account`, if it exists.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Sqlite`].
    pub fn balances(&self, account: &str) -> Result<Option<(i64, i64)>, LedgerError> {
        Ok(load(&self.conn, account)?.map(|a| a.balances()))
    }
}

/// What to record of a new transaction.
struct Txn {
    account: String,
    effect: Effect,
    amount: i64,
}

fn stored(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, Answer)>> {
    conn.query_row(
        "SELECT t.operation, t.result, t.code, t.auth_id, t.available, t.ledger, t.message, a.currency
         FROM txns t LEFT JOIN accounts a ON a.account = t.account WHERE t.id = ?1",
        [id],
        |r| {
            let available: Option<i64> = r.get(4)?;
            let ledger: Option<i64> = r.get(5)?;
            Ok((
                r.get(0)?,
                Answer {
                    result: r.get(1)?,
                    code: r.get(2)?,
                    auth_id: r.get(3)?,
                    balances: available.zip(ledger),
                    currency: available.and(r.get(7)?),
                    message: r.get(6)?,
                },
            ))
        },
    )
    .optional()
}

fn load(conn: &Connection, account: &str) -> rusqlite::Result<Option<Account>> {
    conn.query_row(
        "SELECT currency, ledger, held FROM accounts WHERE account = ?1",
        [account],
        |r| {
            Ok(Account {
                currency: r.get(0)?,
                ledger: r.get(1)?,
                held: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Applies `effect` of `amount` to `account` (negative `amount` undoes it).
fn change(
    conn: &Connection,
    account: &str,
    a: &mut Account,
    effect: Effect,
    amount: i64,
) -> Result<(), LedgerError> {
    let overflow = || LedgerError::Overflow {
        account: account.to_owned(),
    };
    match effect {
        Effect::Hold => a.held = a.held.checked_add(amount).ok_or_else(overflow)?,
        Effect::Debit => a.ledger = a.ledger.checked_sub(amount).ok_or_else(overflow)?,
        Effect::Credit => a.ledger = a.ledger.checked_add(amount).ok_or_else(overflow)?,
        Effect::None => return Ok(()),
    }
    a.ledger.checked_sub(a.held).ok_or_else(overflow)?;
    conn.execute(
        "UPDATE accounts SET ledger = ?2, held = ?3 WHERE account = ?1",
        params![account, a.ledger, a.held],
    )?;
    Ok(())
}

fn answer_of(request: &Request, code: &str, balances: Option<(i64, i64)>, message: &str) -> Answer {
    let approved = matches!(code, codes::APPROVED | codes::REVERSED);
    let result = match request.operation {
        Operation::Advice => "ACKNOWLEDGED",
        Operation::Reverse if code == codes::ORIGINAL_NOT_FOUND => "UNKNOWN_ORIGINAL",
        _ if approved => "APPROVED",
        _ => "DECLINED",
    };
    Answer {
        result: result.to_owned(),
        code: code.to_owned(),
        auth_id: None,
        balances,
        currency: None,
        message: (!message.is_empty()).then(|| message.to_owned()),
    }
}

/// Decides a new request and applies its effect.
fn decide(conn: &Connection, request: &Request) -> Result<(Answer, Txn), LedgerError> {
    let nothing = |account: &str| Txn {
        account: account.to_owned(),
        effect: Effect::None,
        amount: 0,
    };
    if request.operation == Operation::Reverse {
        return reverse(conn, request);
    }
    let Some(mut account) = load(conn, &request.account)? else {
        let answer = answer_of(request, codes::UNKNOWN_ACCOUNT, None, "unknown account");
        return Ok((answer, nothing(&request.account)));
    };
    let before = Some(account.balances());
    let declined = |code: &str, message: &str| {
        Ok((
            answer_of(request, code, before, message),
            nothing(&request.account),
        ))
    };
    if request.operation != Operation::BalanceInquiry && request.currency != account.currency {
        let message = format!("the account's currency is {:03}", account.currency);
        return declined(codes::INVALID_TRANSACTION, &message);
    }
    let effect = Effect::of(request.kind);
    let (effect, message) = match request.operation {
        Operation::BalanceInquiry => (Effect::None, String::new()),
        Operation::Authorize if !matches!(effect, Effect::Hold | Effect::Debit) => {
            return declined(
                codes::INVALID_TRANSACTION,
                "Authorize takes PURCHASE or CASH",
            );
        }
        Operation::Load if effect != Effect::Credit => {
            return declined(codes::INVALID_TRANSACTION, "Load takes LOAD or REFUND");
        }
        Operation::Authorize if account.balances().0 < request.amount => {
            return declined(codes::INSUFFICIENT_FUNDS, "insufficient funds");
        }
        Operation::Authorize | Operation::Load => (effect, String::new()),
        // Advice: apply what was decided, once; a decline or a transaction
        // already applied here changes nothing (a Reverse undoes those).
        _ => advice_effect(conn, request, effect)?,
    };
    change(conn, &request.account, &mut account, effect, request.amount)?;
    let answer = answer_of(request, codes::APPROVED, Some(account.balances()), &message);
    let txn = Txn {
        account: request.account.clone(),
        effect,
        amount: request.amount,
    };
    Ok((answer, txn))
}

fn advice_effect(
    conn: &Connection,
    request: &Request,
    effect: Effect,
) -> Result<(Effect, String), LedgerError> {
    if request.decision.as_deref() != Some("00") {
        return Ok((
            Effect::None,
            "declined decision recorded; nothing applied".into(),
        ));
    }
    if let Some(original) = &request.original_transaction_id {
        let applied: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM txns WHERE (id = ?1 OR original = ?1) AND effect != 'none')",
            [original],
            |r| r.get(0),
        )?;
        if applied {
            return Ok((
                Effect::None,
                "original already applied; nothing changed".into(),
            ));
        }
    }
    Ok((effect, String::new()))
}

/// Undoes all or `amount` of the original (by its id, or an advice that
/// applied it for that id).
fn reverse(conn: &Connection, request: &Request) -> Result<(Answer, Txn), LedgerError> {
    let original = request
        .original_transaction_id
        .as_deref()
        .unwrap_or_default();
    let found: Option<(i64, String, String, i64)> = conn
        .query_row(
            "SELECT seq, account, effect, remaining FROM txns
             WHERE id = ?1 OR (original = ?1 AND operation = 'advice' AND effect != 'none')
             ORDER BY effect = 'none', seq LIMIT 1",
            [original],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let nothing = |account: &str| Txn {
        account: account.to_owned(),
        effect: Effect::None,
        amount: 0,
    };
    let Some((seq, account_id, effect, remaining)) = found else {
        let balances = load(conn, &request.account)?.map(|a| a.balances());
        let answer = answer_of(
            request,
            codes::ORIGINAL_NOT_FOUND,
            balances,
            "original not found",
        );
        return Ok((answer, nothing(&request.account)));
    };
    let Some(mut account) = load(conn, &account_id)? else {
        let answer = answer_of(request, codes::UNKNOWN_ACCOUNT, None, "unknown account");
        return Ok((answer, nothing(&account_id)));
    };
    let effect = Effect::parse(&effect);
    let balances = Some(account.balances());
    let done = |message: &str| {
        let answer = answer_of(request, codes::REVERSED, balances, message);
        Ok((answer, nothing(&account_id)))
    };
    if effect == Effect::None {
        return done("the original moved no money; nothing to undo");
    }
    if remaining == 0 {
        return done("already reversed; nothing changed");
    }
    // Amount 0 means all that remains.
    let amount = if request.amount == 0 {
        remaining
    } else {
        request.amount
    };
    if amount > remaining {
        let message = format!("only {remaining} remains to reverse");
        let answer = answer_of(request, codes::INVALID_AMOUNT, balances, &message);
        return Ok((answer, nothing(&account_id)));
    }
    let message = "";
    change(conn, &account_id, &mut account, effect, -amount)?;
    conn.execute(
        "UPDATE txns SET remaining = remaining - ?2 WHERE seq = ?1",
        params![seq, amount],
    )?;
    let answer = answer_of(request, codes::REVERSED, Some(account.balances()), message);
    Ok((answer, nothing(&account_id)))
}
