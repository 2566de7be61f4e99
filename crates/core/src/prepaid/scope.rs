//! Tenant isolation of the prepaid ledger: whether an [`Actor`] may touch
//! an orderer, a programme, a card account, a card or an order. An orderer's
//! users see only their own orderer; the bank (admins, auditors, the
//! machine token, the CLI) sees every one; bank operators none. Whatever is
//! out of scope is refused as unknown ([`PrepaidError::UnknownCard`], ...),
//! exactly as if it did not exist, so a caller cannot even learn that it
//! does by editing a URL.
//!
//! The JSON API runs one of these checks before each prepaid operation it
//! makes for a caller; the role a route needs is checked before that
//! (`api::access`).

use crate::store::sql::OptionalExtension;

use super::orders::OrderError;
use super::{Ledger, PrepaidError};
use crate::access::Actor;
use crate::cards::CardRegistry;
use crate::iso8583::fields::Pan;

impl Ledger {
    /// Refuses, as unknown, an orderer `actor` may not see.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownOrderer`].
    pub fn scope_orderer(&self, actor: &Actor, orderer: &str) -> Result<(), PrepaidError> {
        if actor.sees_orderer(orderer) {
            Ok(())
        } else {
            Err(PrepaidError::UnknownOrderer {
                orderer: orderer.into(),
            })
        }
    }

    /// Refuses, as unknown, a programme of an orderer `actor` may not see.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownProgramme`], [`PrepaidError::Store`].
    pub fn scope_programme(&self, actor: &Actor, programme: &str) -> Result<(), PrepaidError> {
        let orderer = self.owner(
            "SELECT orderer FROM prepaid_programmes WHERE id = ?1",
            programme,
        )?;
        match orderer {
            Some(o) if actor.sees_orderer(&o) => Ok(()),
            None if actor.sees_every_orderer() => Ok(()),
            _ => Err(PrepaidError::UnknownProgramme {
                programme: programme.into(),
            }),
        }
    }

    /// Refuses, as unknown, a card account of an orderer `actor` may not see.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`], [`PrepaidError::Store`].
    pub fn scope_card(&self, actor: &Actor, account: &str) -> Result<(), PrepaidError> {
        let orderer = self.owner(
            "SELECT orderer FROM prepaid_accounts WHERE kind = 'card' AND name = ?1",
            account,
        )?;
        match orderer {
            Some(o) if actor.sees_orderer(&o) => Ok(()),
            // The bank gets the ledger's own answer for an unknown card.
            None if actor.sees_every_orderer() => Ok(()),
            _ => Err(PrepaidError::UnknownCard {
                account: account.into(),
            }),
        }
    }

    /// Refuses, as unknown, a card (by number) of an orderer `actor` may
    /// not see.
    ///
    /// # Errors
    /// [`PrepaidError::UnknownCard`] (with the masked number),
    /// [`PrepaidError::Cards`], [`PrepaidError::Store`].
    pub fn scope_pan(
        &self,
        actor: &Actor,
        cards: &CardRegistry,
        pan: &Pan,
    ) -> Result<(), PrepaidError> {
        if actor.sees_every_orderer() {
            return Ok(());
        }
        match cards.get(pan)? {
            Some(card) => self
                .scope_card(actor, &card.account)
                .map_err(|_| unknown_pan(pan)),
            None => Err(unknown_pan(pan)),
        }
    }

    /// Refuses, as unknown, an order of an orderer `actor` may not see.
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], [`OrderError::Ledger`] for the store.
    pub fn scope_order(&self, actor: &Actor, order: i64) -> Result<(), OrderError> {
        let orderer: Option<String> = self
            .store
            .read(|c| {
                c.prepare_cached("SELECT orderer FROM prepaid_orders WHERE id = ?1")?
                    .query_row([order], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| OrderError::Ledger(e.into()))?;
        match orderer {
            Some(o) if actor.sees_orderer(&o) => Ok(()),
            None if actor.sees_every_orderer() => Ok(()),
            _ => Err(OrderError::UnknownOrder { order }),
        }
    }

    /// The orderer `sql` finds for `id`.
    fn owner(&self, sql: &str, id: &str) -> Result<Option<String>, PrepaidError> {
        Ok(self.store.read(|c| {
            c.prepare_cached(sql)?
                .query_row([id], |r| r.get::<Option<String>>(0))
                .optional()
                .map(Option::flatten)
        })?)
    }
}

fn unknown_pan(pan: &Pan) -> PrepaidError {
    PrepaidError::UnknownCard {
        account: pan.masked(),
    }
}
