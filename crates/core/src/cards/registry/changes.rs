//! Single-card changes (status, limits profile) by a person, each with its
//! audit row in the same store write, and the hub's own activation of a
//! prepaid card on its first load.

use serde_json::json;

use super::{CardRegistry, now_us};
use crate::access::Actor;
use crate::access::audit::{self, Action, NewEntry};
use crate::cards::card::{Card, CardStatus};
use crate::cards::db::{self, Change, Changed};
use crate::cards::error::CardError;
use crate::cards::pan::PanHash;
use crate::iso8583::fields::Pan;
use crate::mask::redact_pans;

/// A card named for a change: its lookup key and, for errors and the
/// audit log, its masked PAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRef {
    pub hash: PanHash,
    /// First 6 + last 4 digits.
    pub masked: String,
}

impl From<&Card> for CardRef {
    fn from(card: &Card) -> CardRef {
        CardRef {
            hash: card.pan_hash,
            masked: card.pan_masked.clone(),
        }
    }
}

/// Who changes a card and why: the audit log's row, written in the same
/// store write as the change (a change that changes nothing writes none).
#[derive(Debug, Clone, Copy)]
pub struct ChangedBy<'a> {
    pub actor: &'a Actor,
    pub reason: Option<&'a str>,
}

impl CardRegistry {
    /// The card with this PAN, named for a change.
    pub fn card_ref(&self, pan: &Pan) -> CardRef {
        CardRef {
            hash: self.keys.hash(pan),
            masked: pan.masked(),
        }
    }

    /// Sets a card's status; returns the card as stored. Audited (action
    /// `card.status`) in the same store write when it changes anything.
    ///
    /// # Errors
    /// [`CardError::UnknownCard`] (masked), [`CardError::Store`].
    pub async fn set_status(
        &self,
        card: &CardRef,
        status: CardStatus,
        by: ChangedBy<'_>,
    ) -> Result<Card, CardError> {
        self.change(card, Change::Status(status), Some(by)).await
    }

    /// Unblocks a blocked card (to `active`). Lost, stolen and other cards
    /// are refused: their status changes only explicitly. Audited as
    /// `card.status`.
    ///
    /// # Errors
    /// [`CardError::NotBlocked`], [`CardError::UnknownCard`], [`CardError::Store`].
    pub async fn unblock(&self, card: &CardRef, by: ChangedBy<'_>) -> Result<Card, CardError> {
        self.change(card, Change::Unblock, Some(by)).await
    }

    /// Gives a card another limits profile, which must be configured.
    /// Audited as `card.profile`.
    ///
    /// # Errors
    /// [`CardError::UnknownProfile`], [`CardError::UnknownCard`], [`CardError::Store`].
    pub async fn set_profile(
        &self,
        card: &CardRef,
        profile: &str,
        by: ChangedBy<'_>,
    ) -> Result<Card, CardError> {
        if !self.catalog.has_profile(profile) {
            return Err(CardError::UnknownProfile {
                profile: redact_pans(profile),
            });
        }
        self.change(card, Change::Profile(profile.to_string()), Some(by))
            .await
    }

    /// Activates a prepaid card on its first load: the hub's own change,
    /// journalled with the load rather than audited.
    ///
    /// # Errors
    /// [`CardError::UnknownCard`] (masked), [`CardError::Store`].
    pub(crate) async fn activate(&self, pan: &Pan) -> Result<Card, CardError> {
        self.change(
            &self.card_ref(pan),
            Change::Status(CardStatus::Active),
            None,
        )
        .await
    }

    /// Applies `change`, with its audit row when `by` names who asked.
    async fn change(
        &self,
        card: &CardRef,
        change: Change,
        by: Option<ChangedBy<'_>>,
    ) -> Result<Card, CardError> {
        let hash = card.hash;
        let now = now_us();
        let action = match change {
            Change::Status(_) | Change::Unblock => Action::CardStatus,
            Change::Profile(_) => Action::CardProfile,
        };
        let audit = by.map(|by| {
            let entry = NewEntry::new(by.actor, action, "card", card.masked.clone());
            (entry, by.reason.map(str::to_string))
        });
        let changed = self
            .store
            .write(move |conn| {
                let changed = db::change(conn, &hash, &change, now)?;
                if let (Changed::Done { old, card, .. }, Some((entry, reason))) = (&changed, &audit)
                {
                    let entry = entry
                        .clone()
                        .before(&json!({ "status": old.status.as_str(), "profile": old.profile }))
                        .after(&json!({
                            "status": card.status.as_str(),
                            "profile": card.profile,
                            "reason": reason,
                        }));
                    audit::record(conn, &entry)?;
                }
                Ok(changed)
            })
            .await?;
        match changed {
            Changed::Missing => Err(CardError::UnknownCard {
                card: card.masked.clone(),
            }),
            Changed::NotBlocked(status) => Err(CardError::NotBlocked {
                card: card.masked.clone(),
                status,
            }),
            Changed::Same(card) => Ok(card),
            Changed::Done { card, versions, .. } => {
                self.patch(versions, vec![card.clone()]);
                Ok(card)
            }
        }
    }
}
