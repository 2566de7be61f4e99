//! A user's prepaid operations (loads, moves, lost-card replacements,
//! attestations, card orders, PIN reorders), as the JSON API and the web pages make them: the tenant
//! check ([`Ledger::scope_card`], [`Ledger::scope_pan`]),
//! the booking, and its entry in the audit log — one function each, so
//! both interfaces do exactly the same. Whether the user's role may change
//! prepaid data at all ([`crate::access::Role::changes_prepaid`]) is
//! checked by the interface before it calls.

use serde_json::json;

use super::attestation::AttestationEvent;
use super::orders::{NewOrder, OrderError, Ordered, PinRequest};
use super::{Booked, Ledger, Moved, PrepaidError, Replacement};
use crate::access::audit::{Action, NewEntry};
use crate::access::{Access, Actor};
use crate::cards::{Card, CardRegistry};
use crate::iso8583::fields::{Expiry, Pan};
use crate::money::Money;

/// The ledger, the card registry and the audit log, acting for `actor`.
pub struct Teller<'a> {
    pub ledger: &'a Ledger,
    pub cards: &'a CardRegistry,
    pub access: &'a Access,
    pub actor: &'a Actor,
}

/// A lost card to replace (the numbers stay in memory only: the audit log
/// gets the masked ones).
pub struct LostCard<'a> {
    /// The operation's idempotency key.
    pub reference: &'a str,
    pub lost: &'a Pan,
    pub new: &'a Pan,
    pub new_expiry: Expiry,
    /// The new card's card account, opened in the lost one's programme.
    pub new_account: &'a str,
}

impl Teller<'_> {
    /// Loads card account `account` with `amount` (its first load activates
    /// its cards) and audits it as `prepaid.load` unless the reference was
    /// booked before. Returns the booking and the cards it activated.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`] for a card the actor may not see, the
    /// refusals of [`Ledger::load_activating`], [`PrepaidError::Store`]
    /// when the audit log cannot be written (the load is booked then).
    pub async fn load(
        &self,
        reference: &str,
        account: &str,
        amount: Money,
    ) -> Result<(Booked, Vec<Card>), PrepaidError> {
        self.ledger.scope_card(self.actor, account)?;
        let (booked, activated) = self
            .ledger
            .load_activating(self.cards, reference, account, amount)
            .await?;
        if !booked.repeat {
            let entry = NewEntry::new(self.actor, Action::PrepaidLoad, "card", account)
                .after(&json!({ "entry": booked.id, "reference": reference,
                    "amount_minor": amount.minor, "currency": amount.currency.code }));
            self.access.audit(entry).await?;
        }
        Ok((booked, activated))
    }

    /// Moves `amount` from card account `from` to `to` (two cards of one
    /// orderer, both the actor's to see), audited as `prepaid.move` unless
    /// the reference was booked before. Returns both cards' balances.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`] for a card the actor may not see, the
    /// refusals of [`Ledger::move_balance`], [`PrepaidError::Store`] when
    /// the audit log cannot be written (the move is booked then).
    pub async fn move_balance(
        &self,
        reference: &str,
        from: &str,
        to: &str,
        amount: Money,
    ) -> Result<Moved, PrepaidError> {
        self.ledger.scope_card(self.actor, from)?;
        self.ledger.scope_card(self.actor, to)?;
        let moved = self
            .ledger
            .move_balance(reference, from, to, amount)
            .await?;
        if !moved.repeat {
            let entry = NewEntry::new(self.actor, Action::PrepaidMove, "card", from)
                .after(&json!({ "to": to, "reference": reference,
                    "amount_minor": amount.minor, "currency": amount.currency.code }));
            self.access.audit(entry).await?;
        }
        Ok(moved)
    }

    /// Replaces a lost card ([`Ledger::replace_lost_card`]), audited as
    /// `prepaid.replace` under the lost card's masked number unless it is
    /// a repeat of the same reference. Returns the new card and its
    /// balances.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`] for a card the actor may not see, the
    /// refusals of [`Ledger::replace_lost_card`], [`PrepaidError::Store`].
    pub async fn replace_lost(&self, lost: LostCard<'_>) -> Result<Replacement, PrepaidError> {
        self.ledger.scope_pan(self.actor, self.cards, lost.lost)?;
        let replaced = self
            .ledger
            .replace_lost_card(
                self.cards,
                lost.reference,
                lost.lost,
                lost.new,
                lost.new_expiry,
                lost.new_account,
            )
            .await?;
        if !replaced.repeat {
            let entry = NewEntry::new(
                self.actor,
                Action::PrepaidReplace,
                "card",
                lost.lost.masked(),
            )
            .after(&json!({ "card": replaced.card.pan_masked,
                "account": replaced.card.account, "reference": lost.reference }));
            self.access.audit(entry).await?;
        }
        Ok(replaced)
    }

    /// Attests (`verdict` `attested`, with the purpose or cost centre in
    /// `comment`) or disputes (`disputed`, with the reason) the purchase
    /// `reference` of `orderer`, recorded under the actor's name — for the
    /// `[api]` machine token, under `named`, the user its caller names —
    /// and audited as `prepaid.attestation`.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`] for an orderer the actor may not
    /// see, [`PrepaidError::InvalidText`] (field `verdict`) for another
    /// verdict, the refusals of [`Ledger::attest`], [`PrepaidError::Store`].
    pub async fn attestation(
        &self,
        orderer: &str,
        reference: &str,
        verdict: &str,
        comment: &str,
        named: &str,
    ) -> Result<AttestationEvent, PrepaidError> {
        self.ledger.scope_orderer(self.actor, orderer)?;
        let user = if self.actor.is_machine() {
            named
        } else {
            self.actor.user.as_str()
        };
        let event = match verdict {
            "attested" => {
                self.ledger
                    .attest(orderer, reference, user, comment)
                    .await?
            }
            "disputed" => {
                self.ledger
                    .dispute(orderer, reference, user, comment)
                    .await?
            }
            _ => {
                return Err(PrepaidError::InvalidText {
                    field: "verdict",
                    reason: "is neither attested nor disputed".into(),
                });
            }
        };
        let entry = NewEntry::new(
            self.actor,
            Action::PrepaidAttestation,
            "purchase",
            reference,
        )
        .after(&json!({ "orderer": orderer, "verdict": verdict }));
        self.access.audit(entry).await?;
        Ok(event)
    }

    /// Orders cards ([`Ledger::order_cards`]) for an orderer and programme
    /// the actor sees, audited as `prepaid.order` unless the reference was
    /// ordered before.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`] / [`PrepaidError::UnknownProgramme`]
    /// (in [`OrderError::Ledger`]) for one the actor may not see, the
    /// refusals of [`Ledger::order_cards`], [`OrderError::Store`].
    pub async fn order_cards(&self, order: NewOrder) -> Result<Ordered, OrderError> {
        self.ledger.scope_orderer(self.actor, &order.orderer)?;
        self.ledger.scope_programme(self.actor, &order.programme)?;
        let entry = NewEntry::new(self.actor, Action::PrepaidOrder, "orderer", &order.orderer)
            .after(&json!({ "programme": order.programme, "count": order.count,
                "reference": order.reference }));
        let ordered = self.ledger.order_cards(self.cards, order).await?;
        if !ordered.repeat {
            self.access.audit(entry).await?;
        }
        Ok(ordered)
    }

    /// Requests a card's PIN again ([`Ledger::reorder_pin`]), audited as
    /// `prepaid.pin-reorder` under the masked number.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`] (in [`OrderError::Ledger`]) for a
    /// card the actor may not see, the refusals of [`Ledger::reorder_pin`],
    /// [`OrderError::Store`].
    pub async fn reorder_pin(&self, pan: &Pan) -> Result<PinRequest, OrderError> {
        self.ledger.scope_pan(self.actor, self.cards, pan)?;
        let request = self.ledger.reorder_pin(self.cards, pan).await?;
        let entry = NewEntry::new(self.actor, Action::PrepaidPinReorder, "card", pan.masked());
        self.access.audit(entry).await?;
        Ok(request)
    }
}
