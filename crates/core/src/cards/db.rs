//! The card tables (`migrations/0002_cards.sql`) in SQL: reads for the
//! snapshot and the CLI, the import upsert and single-card changes. Every
//! function runs inside a store job; none commits on its own.

use crate::store::sql;
use std::collections::{HashMap, HashSet};

use crate::store::sql::{Connection, OptionalExtension, Row, params};

use crate::cards::card::{Card, CardStatus};
use crate::cards::pan::PanHash;
use crate::cards::registry::CardQuery;
use crate::iso8583::fields::Expiry;
use crate::money::Currency;

/// Columns of [`card_from_row`], in order.
const CARD_COLUMNS: &str =
    "pan_hash, pan_masked, expiry, status, account, institution, currency, profile, product";

/// A card ready to be written: the parts of the PAN the store keeps.
#[derive(Debug)]
pub(crate) struct NewCard {
    pub card: Card,
    pub last4: String,
    pub encrypted: Vec<u8>,
}

/// What an import did, with the registry version before and after.
#[derive(Debug)]
pub(crate) struct Imported {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub versions: (i64, i64),
    /// The cards added or changed, as now stored.
    pub changed: Vec<Card>,
}

/// A change to one card.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Status(CardStatus),
    /// To `active`, only from `blocked`.
    Unblock,
    Profile(String),
}

/// What a [`Change`] did.
#[derive(Debug)]
pub(crate) enum Changed {
    /// No such card.
    Missing,
    /// Refused: an unblock of a card in this status.
    NotBlocked(CardStatus),
    /// The card already was so; nothing written.
    Same(Card),
    /// Written; the card before and after, registry versions before and after.
    Done {
        old: Card,
        card: Card,
        versions: (i64, i64),
    },
}

/// The registry version.
pub(crate) fn version(conn: &Connection) -> sql::Result<i64> {
    conn.query_row(
        "SELECT version FROM card_registry_version WHERE id = 1",
        params![],
        |r| r.get(0),
    )
}

/// Every card with the version they are at. The version is read first: a
/// change committed in between makes the snapshot newer than its label,
/// never older, so the next refresh catches up.
pub(crate) fn load_all(conn: &Connection) -> sql::Result<(i64, Vec<Card>)> {
    let version = version(conn)?;
    let mut stmt = conn.prepare_cached(&format!("SELECT {CARD_COLUMNS} FROM cards"))?;
    let cards = stmt
        .query_map(params![], card_from_row)?
        .collect::<sql::Result<Vec<_>>>()?;
    Ok((version, cards))
}

/// One card by PAN hash.
pub(crate) fn get(conn: &Connection, hash: &PanHash) -> sql::Result<Option<Card>> {
    conn.prepare_cached(&format!(
        "SELECT {CARD_COLUMNS} FROM cards WHERE pan_hash = ?1"
    ))?
    .query_row([&hash.0[..]], card_from_row)
    .optional()
}

/// Any one stored card's hash and encrypted PAN, to check the keys against.
pub(crate) fn sample(conn: &Connection) -> sql::Result<Option<(Vec<u8>, Vec<u8>)>> {
    conn.query_row(
        "SELECT pan_hash, pan_encrypted FROM cards LIMIT 1",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Adds new cards and updates changed ones; identical cards are left alone
/// (their stored ciphertext and time stamp too). Bumps the version once if
/// anything changed.
pub(crate) fn import(conn: &Connection, cards: &[NewCard], now_us: i64) -> sql::Result<Imported> {
    let before = version(conn)?;
    let mut out = Imported {
        added: 0,
        updated: 0,
        unchanged: 0,
        versions: (before, before),
        changed: Vec::new(),
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO cards (pan_hash, pan_masked, pan_last4, pan_encrypted, expiry, status,
             account, institution, currency, profile, product, updated_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for new in cards {
        match get(conn, &new.card.pan_hash)? {
            Some(old) if old == new.card => out.unchanged += 1,
            Some(_) => {
                write_card(conn, &new.card, now_us)?;
                out.updated += 1;
                out.changed.push(new.card.clone());
            }
            None => {
                let c = &new.card;
                insert.execute(params![
                    &c.pan_hash.0[..],
                    c.pan_masked,
                    new.last4,
                    new.encrypted,
                    c.expiry.to_string(),
                    c.status.as_str(),
                    c.account,
                    c.institution,
                    c.currency.numeric,
                    c.profile,
                    c.product.as_str(),
                    now_us,
                ])?;
                out.added += 1;
                out.changed.push(new.card.clone());
            }
        }
    }
    if !out.changed.is_empty() {
        out.versions.1 = bump(conn)?;
    }
    Ok(out)
}

/// Applies a change to the card with this hash.
pub(crate) fn change(
    conn: &Connection,
    hash: &PanHash,
    change: &Change,
    now_us: i64,
) -> sql::Result<Changed> {
    let Some(old) = get(conn, hash)? else {
        return Ok(Changed::Missing);
    };
    let mut card = old.clone();
    match change {
        Change::Status(status) => card.status = *status,
        Change::Unblock if old.status == CardStatus::Blocked => card.status = CardStatus::Active,
        Change::Unblock => return Ok(Changed::NotBlocked(old.status)),
        Change::Profile(profile) => card.profile.clone_from(profile),
    }
    if card == old {
        return Ok(Changed::Same(card));
    }
    let before = version(conn)?;
    write_card(conn, &card, now_us)?;
    let after = bump(conn)?;
    Ok(Changed::Done {
        old,
        card,
        versions: (before, after),
    })
}

/// The cards matching every given criterion (BIN, last 4 digits, account,
/// among `institutions` when given), by masked PAN, at most `limit`.
pub(crate) fn search(conn: &Connection, query: &CardQuery, limit: u32) -> sql::Result<Vec<Card>> {
    let institutions = query.institutions.as_ref().map(sql::TextList::new);
    let list = conn.dialect().text_list(4);
    conn.prepare_cached(&format!(
        "SELECT {CARD_COLUMNS} FROM cards
         WHERE (CAST(?1 AS TEXT) IS NULL OR substr(pan_masked, 1, 6) = ?1)
           AND (CAST(?2 AS TEXT) IS NULL OR pan_last4 = ?2)
           AND (CAST(?3 AS TEXT) IS NULL OR account = ?3)
           AND (CAST(?4 AS TEXT) IS NULL OR institution IN {list})
         ORDER BY pan_masked, account LIMIT ?5"
    ))?
    .query_map(
        params![query.bin, query.last4, query.account, institutions, limit],
        card_from_row,
    )?
    .collect()
}

/// Activates the `inactive` prepaid cards drawing on any of `accounts`
/// (their first load was booked in the same transaction); returns the registry
/// versions before and after and the cards as now stored.
pub(crate) fn activate_prepaid(
    conn: &Connection,
    accounts: &HashSet<String>,
    now_us: i64,
) -> sql::Result<((i64, i64), Vec<Card>)> {
    let before = version(conn)?;
    let mut activated = Vec::new();
    let mut stmt = conn.prepare_cached(
        "UPDATE cards SET status = 'active', updated_at_us = ?2
         WHERE account = ?1 AND status = 'inactive' AND product = 'prepaid'
         RETURNING pan_hash, pan_masked, expiry, status, account, institution, currency, profile, product",
    )?;
    for account in accounts {
        let rows = stmt.query_map(params![account, now_us], card_from_row)?;
        for card in rows {
            activated.push(card?);
        }
    }
    let after = if activated.is_empty() {
        before
    } else {
        bump(conn)?
    };
    Ok(((before, after), activated))
}

/// Overwrites the mutable fields of a stored card.
fn write_card(conn: &Connection, c: &Card, now_us: i64) -> sql::Result<()> {
    conn.prepare_cached(
        "UPDATE cards SET expiry = ?2, status = ?3, account = ?4, institution = ?5,
             currency = ?6, profile = ?7, product = ?8, updated_at_us = ?9
         WHERE pan_hash = ?1",
    )?
    .execute(params![
        &c.pan_hash.0[..],
        c.expiry.to_string(),
        c.status.as_str(),
        c.account,
        c.institution,
        c.currency.numeric,
        c.profile,
        c.product.as_str(),
        now_us,
    ])?;
    Ok(())
}

/// A stored card's protected PAN: what re-keying reads.
#[derive(Debug)]
pub(crate) struct StoredPan {
    pub hash: Vec<u8>,
    pub masked: String,
    pub encrypted: Vec<u8>,
}

/// Every stored card's hash, masked PAN and encrypted PAN.
pub(crate) fn stored_pans(conn: &Connection) -> sql::Result<Vec<StoredPan>> {
    conn.prepare_cached("SELECT pan_hash, pan_masked, pan_encrypted FROM cards")?
        .query_map(params![], |r| {
            Ok(StoredPan {
                hash: r.get(0)?,
                masked: r.get(1)?,
                encrypted: r.get(2)?,
            })
        })?
        .collect()
}

/// The cards drawing on these accounts, by account (the last one stored
/// for an account that has several).
pub(crate) fn by_accounts(
    conn: &Connection,
    accounts: &[String],
) -> sql::Result<HashMap<String, Card>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CARD_COLUMNS} FROM cards WHERE account = ?1"
    ))?;
    let mut out = HashMap::with_capacity(accounts.len());
    for account in accounts {
        for card in stmt.query_map([account], card_from_row)? {
            let card = card?;
            out.insert(card.account.clone(), card);
        }
    }
    Ok(out)
}

/// The protected PAN of the card drawing on each account, in order; `None`
/// for an account with no card or with several (ambiguous).
pub(crate) fn protected_by_accounts(
    conn: &Connection,
    accounts: &[String],
) -> sql::Result<Vec<Option<StoredPan>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pan_hash, pan_masked, pan_encrypted FROM cards WHERE account = ?1 LIMIT 2",
    )?;
    let mut out = Vec::with_capacity(accounts.len());
    for account in accounts {
        let mut found = stmt
            .query_map([account], |r| {
                Ok(StoredPan {
                    hash: r.get(0)?,
                    masked: r.get(1)?,
                    encrypted: r.get(2)?,
                })
            })?
            .collect::<sql::Result<Vec<_>>>()?;
        out.push((found.len() == 1).then(|| found.remove(0)));
    }
    Ok(out)
}

/// One card's move to new keys.
#[derive(Debug)]
pub(crate) struct Rekeyed {
    pub old: StoredPan,
    pub new_hash: Vec<u8>,
    pub new_encrypted: Vec<u8>,
}

/// Moves every card, and the journal rows that carry its hash, to its new
/// hash and ciphertext, then bumps the registry version. Writes nothing and
/// answers `Ok(None)` when the cards are no longer exactly those of `plan`
/// (changed since they were read); else the journal rows moved.
pub(crate) fn rekey(conn: &Connection, plan: &[Rekeyed]) -> sql::Result<Option<u64>> {
    let mut now = HashMap::with_capacity(plan.len());
    for stored in stored_pans(conn)? {
        now.insert(stored.hash, stored.encrypted);
    }
    if now.len() != plan.len()
        || plan
            .iter()
            .any(|r| now.get(&r.old.hash) != Some(&r.old.encrypted))
    {
        return Ok(None);
    }
    let mut card = conn
        .prepare_cached("UPDATE cards SET pan_hash = ?1, pan_encrypted = ?2 WHERE pan_hash = ?3")?;
    // The journal's rows of a card are found through its search table
    // (and the rows not listed there yet), which moves along.
    let mut journal = conn.prepare_cached(
        "UPDATE journal SET pan_hash = ?1 WHERE pan_hash = ?2 AND txn_id IN \
         (SELECT txn_id FROM journal_by_card WHERE pan_hash = ?2 \
         UNION ALL SELECT txn_id FROM journal_unindexed)",
    )?;
    let mut listed =
        conn.prepare_cached("UPDATE journal_by_card SET pan_hash = ?1 WHERE pan_hash = ?2")?;
    let mut moved = 0;
    for r in plan {
        card.execute(params![r.new_hash, r.new_encrypted, r.old.hash])?;
        moved += journal.execute(params![r.new_hash, r.old.hash])? as u64;
        listed.execute(params![r.new_hash, r.old.hash])?;
    }
    bump(conn)?;
    Ok(Some(moved))
}

/// Moves the registry version on; returns the new one.
fn bump(conn: &Connection) -> sql::Result<i64> {
    conn.query_row(
        "UPDATE card_registry_version SET version = version + 1 WHERE id = 1 RETURNING version",
        params![],
        |r| r.get(0),
    )
}

/// A card from a row of [`CARD_COLUMNS`]; values that do not parse are
/// conversion errors naming the column.
fn card_from_row(row: &Row<'_>) -> sql::Result<Card> {
    let bad = sql::Error::bad_column;
    let hash: Vec<u8> = row.get(0)?;
    let pan_hash = PanHash::try_from(hash.as_slice())
        .map_err(|_| bad(0, format!("pan_hash has {} bytes, not 32", hash.len())))?;
    let expiry: String = row.get(2)?;
    let status: String = row.get(3)?;
    let currency: u16 = row.get(6)?;
    let product: String = row.get(8)?;
    Ok(Card {
        pan_hash,
        pan_masked: row.get(1)?,
        expiry: Expiry::parse(&expiry).map_err(|e| bad(2, e.to_string()))?,
        status: status.parse().map_err(|e| bad(3, format!("{e}")))?,
        account: row.get(4)?,
        institution: row.get(5)?,
        currency: Currency::from_numeric(currency).map_err(|e| bad(6, e.to_string()))?,
        profile: row.get(7)?,
        product: product.parse().map_err(|e| bad(8, format!("{e}")))?,
    })
}
