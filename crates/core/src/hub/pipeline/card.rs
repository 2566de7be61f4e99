//! The card step: the card is known, its status allows the request, it has
//! not expired, DE 14 is its expiry, the request is in its currency and a
//! load carries its channel's card-number prefix —
//! and, after the decision, an approved first load activates a prepaid card.

use std::sync::Arc;

use jiff::Timestamp;
use tracing::error;

use super::{Hub, Refusal};
use crate::account::Kind;
use crate::cards::card::{Card, CardStatus, Product};
use crate::hub::model::CanonicalRequest;
use crate::iso8583::codes;
use crate::journal::decision::Decision;

impl Hub {
    /// The card checks: known, usable status, not expired, right currency.
    pub(super) fn check_card(&self, c: &CanonicalRequest) -> Result<Arc<Card>, Refusal> {
        let Some(card) = self.cards.lookup(&c.pan) else {
            return Err(Refusal::new(codes::INVALID_CARD, "unknown card", None));
        };
        let card = self.activated_elsewhere(card);
        let first_load = c.kind == Kind::Load && card.product == Product::Prepaid;
        let refused = match card.status {
            CardStatus::Active => None,
            CardStatus::Inactive if first_load => None,
            CardStatus::Inactive => Some((codes::RESTRICTED, "card not activated")),
            CardStatus::Blocked => Some((codes::RESTRICTED, "card blocked")),
            CardStatus::Lost => Some((codes::LOST, "card reported lost")),
            CardStatus::Stolen => Some((codes::STOLEN, "card reported stolen")),
            CardStatus::Expired => Some((codes::EXPIRED, "card expired")),
            CardStatus::Closed => Some((codes::INVALID_CARD, "card closed")),
        };
        if let Some((code, reason)) = refused {
            return Err(Refusal::new(code, reason, Some(&card)));
        }
        if c.kind == Kind::Load
            && let Some(institution) = self.institutions.get(&card.institution)
            && let Some(prefix) = institution.load_prefixes.of(c.channel)
            && !c.pan.expose().starts_with(prefix)
        {
            let reason = format!(
                "{} load terminals load only cards starting {prefix}",
                c.channel.as_str()
            );
            return Err(Refusal::new(codes::NOT_PERMITTED, reason, Some(&card)));
        }
        let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let this_month = ((now.year() % 100) as u8, now.month() as u8);
        if (card.expiry.year, card.expiry.month) < this_month {
            return Err(Refusal::new(codes::EXPIRED, "card expired", Some(&card)));
        }
        if c.expiry.is_some_and(|e| e != card.expiry) {
            return Err(Refusal::new(
                codes::INVALID_CARD,
                "expiry date does not match the card",
                Some(&card),
            ));
        }
        if c.amount.currency != card.currency && c.kind != Kind::BalanceInquiry {
            let reason = format!(
                "transaction currency {} differs from the account currency {}",
                c.amount.currency.code, card.currency.code
            );
            return Err(Refusal::new(codes::NOT_PERMITTED, reason, Some(&card)));
        }
        Ok(card)
    }

    /// The card as the store has it when the snapshot says a prepaid card
    /// is inactive and other instances may write the store: another
    /// instance's first load may have activated it since this instance's
    /// last refresh (up to a second ago), and its holder pays at once.
    /// The snapshot's card when it is current, or the store cannot say.
    fn activated_elsewhere(&self, card: Arc<Card>) -> Arc<Card> {
        if card.status != CardStatus::Inactive || card.product != Product::Prepaid || !self.shared()
        {
            return card;
        }
        match self.cards.get_by_hash(&card.pan_hash) {
            Ok(Some(stored)) if stored.status != card.status => Arc::new(stored),
            Ok(_) => card,
            Err(e) => {
                error!(card = %card.pan_masked, error = %e, "card not read again from the store");
                card
            }
        }
    }

    /// An approved load of an inactive prepaid card activates it, durably,
    /// before the answer leaves: the next purchase is authorized. When the
    /// registry cannot be written the load stays approved (it is booked)
    /// and the journal says the card was not activated.
    pub(super) async fn activate_on_first_load(
        &self,
        c: &CanonicalRequest,
        card: &Card,
        decision: &mut Decision,
    ) {
        if !is_first_load(c, card) || !decision.approved() {
            return;
        }
        if let Err(e) = self.cards.activate(&c.pan).await {
            error!(card = %card.pan_masked, error = %e, "prepaid card not activated by its first load");
            decision.reason = format!("{}; card NOT activated: {e}", decision.reason);
        }
    }
}

/// Whether `c` is the first load of an inactive prepaid card (which the
/// load activates).
pub(super) fn is_first_load(c: &CanonicalRequest, card: &Card) -> bool {
    c.kind == Kind::Load && card.product == Product::Prepaid && card.status == CardStatus::Inactive
}
