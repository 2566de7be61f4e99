//! Lost-card replacement: card account `old` replaced by a new one in the
//! same programme — the balance and every hold move over, `old` takes
//! nothing new — alone ([`Ledger::replace_card`]) or together with the card
//! registry ([`Ledger::replace_lost_card`]).
//!
//! The reference is the idempotency key: a replacement sent again with it
//! (its answer lost) is a repeat — the same card, card account and the
//! balances now, nothing written — and the reference of a different
//! replacement, or of any other operation, is refused
//! ([`PrepaidError::ReferenceConflict`]). The repeat is recognised inside
//! the store job that would replace, so two identical requests at once
//! replace once: the second job sees the first's writes (SQLite's single
//! writer; PostgreSQL's serializable transaction, rerun on a conflict).

use crate::store::sql::{Connection, params};

use super::db::{self, Op};
use super::postings::book;
use super::repeats::{conflict, prior};
use super::{AccountKind, Ledger, MAX_TEXT_LEN, PrepaidError, checked_text, holds, now_us, orders};
use crate::account::Balances;
use crate::cards::CardRegistry;
use crate::cards::card::Card;
use crate::iso8583::fields::{Expiry, Pan};

/// A lost card replaced.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The new card as stored (masked number, card account).
    pub card: Card,
    /// Its card account's balances now (its replacement's, once replaced).
    pub balances: Balances,
    /// The reference replaced this card before: nothing was written again.
    pub repeat: bool,
}

impl Ledger {
    /// The ledger's side of a replacement: card account `old` replaced by
    /// the new account `new` in the same programme, in one transaction —
    /// the balance and every hold move over, `old` takes nothing new.
    /// Returns `new`'s balances (also for a repeat of the same reference).
    /// [`Ledger::replace_lost_card`] does this together with the card
    /// registry.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`], [`PrepaidError::CardReplaced`],
    /// [`PrepaidError::Exists`] when `new` is taken,
    /// [`PrepaidError::ReferenceConflict`], [`PrepaidError::Store`].
    pub async fn replace_card(
        &self,
        reference: &str,
        old: &str,
        new: &str,
    ) -> Result<Balances, PrepaidError> {
        let (reference, old, new) = (reference.to_string(), old.to_string(), new.to_string());
        self.run(
            move |c, now| match replacement_of(c, &reference, &old, &new, now)? {
                Ok(Some(balances)) => Ok(Ok(balances)),
                Ok(None) => replace(c, &reference, &old, &new, now),
                Err(e) => Ok(Err(e)),
            },
        )
        .await
    }

    /// Replaces a lost prepaid card: in one store transaction the card
    /// `old` becomes `lost` in the registry, the card `new` (expiry
    /// `expiry`, card account `new_account`, otherwise as `old`) is
    /// registered `active`, and the ledger moves the balance and holds of
    /// `old`'s card account to `new_account` in the same programme. When
    /// `old` was issued by a card order, the new card becomes a card order
    /// of its own (`replace:<order>/<sequence>`, see [`orders`]): produced,
    /// PIN mailed and PIN reordered as any ordered card. Sent again with
    /// the same reference and details it is a repeat (`repeat: true`,
    /// nothing written).
    ///
    /// # Errors
    /// [`PrepaidError::Cards`] (old card unknown, new PAN registered
    /// already by something else, store), [`PrepaidError::InvalidText`]
    /// (new account), [`PrepaidError::ReferenceConflict`] (the reference
    /// booked with another lost card, new card, expiry or card account, or
    /// by another operation), the refusals of [`Ledger::replace_card`]; on
    /// any error nothing was changed.
    pub async fn replace_lost_card(
        &self,
        cards: &CardRegistry,
        reference: &str,
        old: &Pan,
        new: &Pan,
        expiry: Expiry,
        new_account: &str,
    ) -> Result<Replacement, PrepaidError> {
        checked_text("new_account", new_account, MAX_TEXT_LEN)?;
        let (reference, again) = (reference.to_string(), reference.to_string());
        let now = now_us();
        let repeated = move |conn: &Connection, lost: &Card, asked: &Card, stored: &Card| {
            let same_card = asked.account == stored.account && asked.expiry == stored.expiry;
            Ok(
                match replacement_of(conn, &again, &lost.account, &stored.account, now)? {
                    Ok(None) => None,
                    Ok(Some(balances)) if same_card => Some(Ok((balances, true))),
                    Ok(Some(_)) => Some(Err(conflict(&again))),
                    Err(e) => Some(Err(e)),
                },
            )
        };
        let replaced = cards
            .replace(
                old,
                new,
                expiry,
                new_account,
                repeated,
                move |conn, lost, card| {
                    let done = replace(conn, &reference, &lost.account, &card.account, now)?;
                    if done.is_ok() {
                        orders::record_replacement(conn, &lost.account, card, now)?;
                    }
                    Ok(done.map(|balances| (balances, false)))
                },
            )
            .await?;
        let (card, (balances, repeat)) = replaced?;
        Ok(Replacement {
            card,
            balances,
            repeat,
        })
    }
}

/// The balances now of the replacement of `old` by `new` booked under
/// `reference` (a repeat), `None` when the reference is not booked, a
/// conflict when it is booked as anything else.
fn replacement_of(
    conn: &Connection,
    reference: &str,
    old: &str,
    new: &str,
    now_us: i64,
) -> Op<Option<Balances>> {
    match prior(conn, reference)? {
        None => Ok(Ok(None)),
        Some(p)
            if p.kind == "replace"
                && p.name.as_deref() == Some(old)
                && p.replaced_by.as_deref() == Some(new) =>
        {
            Ok(db::balance(conn, new, now_us)?.map(Some))
        }
        Some(_) => Ok(Err(conflict(reference))),
    }
}

/// Replaces card account `old` by a new one, `new`, in the same
/// programme: the whole balance and every hold move over, `old` takes
/// nothing new. A reference booked already is a conflict here: the caller
/// recognises its repeats first.
fn replace(conn: &Connection, reference: &str, old: &str, new: &str, now_us: i64) -> Op<Balances> {
    if prior(conn, reference)?.is_some() {
        return Ok(Err(conflict(reference)));
    }
    let card = match db::open_card(conn, old, None)? {
        Ok(card) => card,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = db::open_card_account(conn, new, &card.programme, now_us)? {
        return Ok(Err(e));
    }
    let fresh = db::account_id(conn, AccountKind::Card, new)?;
    book(
        conn,
        "replace",
        reference,
        card.id,
        None,
        &[(card.id, -card.balance), (fresh, card.balance)],
        now_us,
    )?;
    conn.execute(
        "UPDATE prepaid_holds SET account = ?2 WHERE account = ?1",
        params![card.id, fresh],
    )?;
    holds::moved(conn, card.id, fresh)?;
    conn.execute(
        "UPDATE prepaid_accounts SET status = 'replaced', replaced_by = ?2 WHERE id = ?1",
        params![card.id, fresh],
    )?;
    Ok(Ok(db::fresh_balances(conn, fresh, now_us)?))
}
