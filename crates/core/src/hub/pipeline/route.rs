//! The route step: card → institution → its account system. The
//! institution's state then decides whether the account system is asked
//! (`open`) or stand-in decides.

use std::sync::Arc;

use super::limits::Reserved;
use super::{Hub, Refusal};
use crate::account::AccountSystem;
use crate::cards::card::Card;
use crate::iso8583::codes;
use crate::standin::state::Institution;

/// A reserved request and where it goes.
pub(super) struct Routed {
    pub(super) reserved: Reserved,
    pub(super) institution: Arc<Institution>,
    /// `None`: the institution has no account system, stand-in decides.
    pub(super) system: Option<Arc<dyn AccountSystem>>,
}

impl Hub {
    /// Finds the card's institution and account system; an institution not
    /// configured declines (91) and gives the reservation back.
    pub(super) fn route(&self, reserved: Reserved) -> Result<Routed, Refusal> {
        let Some(institution) = self.institutions.get(&reserved.card.institution).cloned() else {
            let reason = format!("institution {:?} not configured", reserved.card.institution);
            let card = self.unreserve(reserved);
            return Err(Refusal::new(codes::ISSUER_UNAVAILABLE, reason, Some(&card)));
        };
        let system = self.system_of(&reserved.card).cloned();
        Ok(Routed {
            reserved,
            institution,
            system,
        })
    }

    /// The account system of the card's institution, where one is configured.
    pub(super) fn system_of(&self, card: &Card) -> Option<&Arc<dyn AccountSystem>> {
        self.routes
            .get(&card.institution)
            .and_then(|r| r.account_system.as_ref())
    }
}
