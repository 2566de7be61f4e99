//! Online attestation of small-purchase purchases: an orderer's user
//! approves a purchase with its purpose or cost centre, or disputes it
//! with a reason.
//!
//! Only purchases can be attested: capture entries (a purchase posted) on
//! cards of a `small-purchase` programme. Every attestation and dispute is
//! a row of its own in `prepaid_attestations`, with who and when; rows are
//! never changed or deleted (the store's triggers refuse it). A purchase's
//! state is its latest row: `open` without one, `attested` or `disputed`.
//! Either may follow the other (a dispute resolved is attested; an
//! attestation found wrong is disputed), and attesting again amends the
//! comment; the history keeps every step.

use crate::store::sql;
use crate::store::sql::{Connection, OptionalExtension, params};

use super::db::{self, Op};
use super::{Ledger, PrepaidError, ProgrammeKind, checked_text};
use crate::money::{Currency, Money};

/// Longest user name, in characters.
pub const MAX_USER_LEN: usize = 64;
/// Longest purpose, cost centre or reason, in characters.
pub const MAX_COMMENT_LEN: usize = 200;

/// The attestation state of a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationState {
    /// Neither attested nor disputed yet.
    Open,
    Attested,
    Disputed,
}

impl AttestationState {
    /// The name in the export and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationState::Open => "open",
            AttestationState::Attested => "attested",
            AttestationState::Disputed => "disputed",
        }
    }

    /// The state a latest row's action (`attest`, `dispute`, none) gives.
    pub(super) fn from_action(action: Option<&str>) -> AttestationState {
        match action {
            Some("attest") => AttestationState::Attested,
            Some(_) => AttestationState::Disputed,
            None => AttestationState::Open,
        }
    }

    fn action(self) -> &'static str {
        match self {
            AttestationState::Disputed => "dispute",
            AttestationState::Open | AttestationState::Attested => "attest",
        }
    }
}

/// One recorded attestation or dispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationEvent {
    /// The purchase's entry.
    pub entry: i64,
    /// The purchase's reference (its capture's transaction id).
    pub reference: String,
    /// `Attested` or `Disputed`.
    pub state: AttestationState,
    pub user: String,
    /// The purpose or cost centre; for a dispute, the reason.
    pub comment: String,
    pub recorded_at_us: i64,
}

/// A purchase not attested (open or disputed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattestedPurchase {
    pub entry: i64,
    pub reference: String,
    pub card_account: String,
    pub booked_at_us: i64,
    /// What the purchase took from the card (positive).
    pub amount: Money,
    /// The card acceptor (DE 42), when the authorization carried one.
    pub merchant: Option<String>,
    /// The card acceptor's name and location (DE 43), when known.
    pub merchant_name: Option<String>,
    /// `Open` or `Disputed`.
    pub state: AttestationState,
    /// The dispute's reason.
    pub comment: Option<String>,
}

/// The join giving each entry `e` its latest attestation row `t` recorded
/// at or before parameter `?1`.
pub(super) const LATEST_ATTESTATION: &str = "LEFT JOIN prepaid_attestations t ON t.id = \
     (SELECT MAX(id) FROM prepaid_attestations WHERE entry = e.id AND recorded_at_us <= ?1)";

/// A user, comment or reason, trimmed and checked as [`checked_text`].
fn text(field: &'static str, value: &str, max: usize) -> Result<String, PrepaidError> {
    let value = value.trim();
    checked_text(field, value, max)?;
    Ok(value.to_string())
}

fn record(
    conn: &Connection,
    orderer: &str,
    reference: &str,
    state: AttestationState,
    user: &str,
    comment: &str,
    now_us: i64,
) -> Op<AttestationEvent> {
    let found: Option<(i64, String, String, String)> = conn
        .prepare_cached(
            "SELECT e.id, e.kind, a.orderer, g.kind FROM prepaid_entries e
             JOIN prepaid_accounts a ON a.id = e.card
             JOIN prepaid_programmes g ON g.id = a.programme
             WHERE e.reference = ?1",
        )?
        .query_row([reference], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((entry, kind, owner, programme)) = found.filter(|f| f.2 == orderer) else {
        return Ok(Err(PrepaidError::UnknownPurchase {
            orderer: orderer.to_string(),
            reference: reference.to_string(),
        }));
    };
    if kind != "capture" || programme != ProgrammeKind::SmallPurchase.as_str() {
        return Ok(Err(PrepaidError::NotAttestable {
            reference: reference.to_string(),
        }));
    }
    tracing::debug!(entry, orderer = %owner, state = state.as_str(), "prepaid purchase attestation");
    conn.prepare_cached(
        "INSERT INTO prepaid_attestations (entry, action, \"user\", comment, recorded_at_us)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![entry, state.action(), user, comment, now_us])?;
    Ok(Ok(AttestationEvent {
        entry,
        reference: reference.to_string(),
        state,
        user: user.to_string(),
        comment: comment.to_string(),
        recorded_at_us: now_us,
    }))
}

fn unattested(
    conn: &Connection,
    orderer: &str,
    booked_before_us: i64,
) -> sql::Result<Vec<UnattestedPurchase>> {
    let sql = format!(
        "SELECT e.id, e.reference, a.name, e.booked_at_us, -p.amount, a.currency, e.merchant,
                t.action, t.comment, e.merchant_name
         FROM prepaid_entries e
         JOIN prepaid_accounts a ON a.id = e.card
         JOIN prepaid_programmes g ON g.id = a.programme
         JOIN prepaid_postings p ON p.entry = e.id AND p.account = e.card
         {LATEST_ATTESTATION}
         WHERE e.kind = 'capture' AND g.kind = ?2 AND a.orderer = ?3
           AND e.booked_at_us < ?4 AND (t.action IS NULL OR t.action <> 'attest')
         ORDER BY e.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            i64::MAX,
            ProgrammeKind::SmallPurchase.as_str(),
            orderer,
            booked_before_us
        ],
        |r| {
            let action: Option<String> = r.get(7)?;
            Ok(UnattestedPurchase {
                entry: r.get(0)?,
                reference: r.get(1)?,
                card_account: r.get(2)?,
                booked_at_us: r.get(3)?,
                amount: money(r, 4, 5)?,
                merchant: r.get(6)?,
                merchant_name: r.get(9)?,
                state: AttestationState::from_action(action.as_deref()),
                comment: r.get(8)?,
            })
        },
    )?;
    rows.collect()
}

/// Minor units (column `amount`, not negative) and currency (column
/// `currency`) of a row as money.
pub(super) fn money(r: &sql::Row<'_>, amount: usize, currency: usize) -> sql::Result<Money> {
    let minor: u64 = r.get(amount)?;
    let numeric: u16 = r.get(currency)?;
    let currency_of =
        Currency::from_numeric(numeric).map_err(|e| sql::Error::bad_column(currency, e))?;
    Ok(Money::new(minor, currency_of))
}

impl Ledger {
    /// Attests the purchase `reference` (a capture on a small-purchase card
    /// of `orderer`): `user` approves it with `purpose` (its purpose or
    /// cost centre). Recorded as a new row; returns it.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownPurchase`] (no such entry among the
    /// orderer's cards), [`PrepaidError::NotAttestable`] (not a capture, or
    /// not a small-purchase card), [`PrepaidError::InvalidText`] (user or
    /// purpose empty, too long, with control characters),
    /// [`PrepaidError::Store`].
    pub async fn attest(
        &self,
        orderer: &str,
        reference: &str,
        user: &str,
        purpose: &str,
    ) -> Result<AttestationEvent, PrepaidError> {
        self.record_attestation(
            orderer,
            reference,
            AttestationState::Attested,
            user,
            purpose,
        )
        .await
    }

    /// Disputes the purchase `reference` of `orderer`: `user` does not
    /// recognise or accept it, for `reason`. Recorded as a new row.
    ///
    /// # Errors
    /// As [`Ledger::attest`].
    pub async fn dispute(
        &self,
        orderer: &str,
        reference: &str,
        user: &str,
        reason: &str,
    ) -> Result<AttestationEvent, PrepaidError> {
        self.record_attestation(orderer, reference, AttestationState::Disputed, user, reason)
            .await
    }

    async fn record_attestation(
        &self,
        orderer: &str,
        reference: &str,
        state: AttestationState,
        user: &str,
        comment: &str,
    ) -> Result<AttestationEvent, PrepaidError> {
        let user = text("user", user, MAX_USER_LEN)?;
        let comment = text("comment", comment, MAX_COMMENT_LEN)?;
        let (orderer, reference) = (orderer.to_string(), reference.to_string());
        self.run(move |c, now| record(c, &orderer, &reference, state, &user, &comment, now))
            .await
    }

    /// The orderer's purchases on small-purchase cards booked more than
    /// `older_than_days` days before `now_us` and not attested (open, or
    /// disputed: latest row first), oldest first.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`], [`PrepaidError::Store`].
    pub fn unattested(
        &self,
        orderer: &str,
        older_than_days: u32,
        now_us: i64,
    ) -> Result<Vec<UnattestedPurchase>, PrepaidError> {
        self.known_orderer(orderer)?;
        let before = now_us.saturating_sub(i64::from(older_than_days) * 86_400_000_000);
        Ok(self.store.read(|c| unattested(c, orderer, before))?)
    }

    /// Refuses an orderer that does not exist.
    pub(super) fn known_orderer(&self, orderer: &str) -> Result<(), PrepaidError> {
        let sql = "SELECT 1 FROM prepaid_orderers WHERE id = ?1";
        if self.store.read(|c| db::has_row(c, sql, orderer))? {
            Ok(())
        } else {
            Err(PrepaidError::UnknownOrderer {
                orderer: orderer.to_string(),
            })
        }
    }
}
