//! The map step: the switch's message read once. Whatever the pipeline
//! needs from the ISO 8583 message — the switch keys, the canonical request
//! (role, kind, channel, amount, original data), and what a retransmission
//! check and a journal row need even from a message that is not a valid
//! request — is taken here, and the later steps never read the message
//! again (only the answer is built from it). The account system's request
//! is built here too, from the canonical request, the card and the
//! transaction id.

use crate::account::AccountRequest;
use crate::cards::card::Card;
use crate::hub::mapping::{self, MappingError};
use crate::hub::model::CanonicalRequest;
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::TxnId;
use crate::link::Request;

/// A link request as the pipeline reads it, mapped once.
pub(super) struct Mapped<'r> {
    /// The link's request: its arrival, its switch, the message the answer
    /// is built from.
    pub(super) request: &'r Request,
    /// The duplicate key (empty strings for missing fields).
    pub(super) keys: SwitchKeys,
    /// The MTI's repeat flag.
    pub(super) repeat: bool,
    /// DE 2, masked, when readable.
    pub(super) pan_masked: Option<String>,
    /// DE 4 as sent, 0 when missing or unreadable: what a retransmission is
    /// compared with.
    pub(super) amount_minor: i64,
    /// The canonical request, or why the message is not one.
    pub(super) canonical: Result<CanonicalRequest, MappingError>,
}

/// A request the hub decides: mapped, canonical, with its transaction id.
/// The context every step after the duplicate check reads.
pub(super) struct Txn<'a> {
    pub(super) m: &'a Mapped<'a>,
    pub(super) c: &'a CanonicalRequest,
    pub(super) id: TxnId,
}

/// Maps a link request: the message is read here and nowhere else.
pub(super) fn map(request: &Request) -> Mapped<'_> {
    let msg = &request.message;
    let canonical = mapping::to_canonical(msg, request.received, request.deadline);
    let keys = match &canonical {
        Ok(c) => c.keys.clone(),
        Err(_) => mapping::switch_keys(msg),
    };
    Mapped {
        request,
        keys,
        repeat: msg.mti().is_repeat(),
        pan_masked: msg.pan().ok().map(|p| p.masked()),
        amount_minor: msg.amount().map_or(0, |a| a.minor_units() as i64),
        canonical,
    }
}

/// The account system's request for a canonical request on `card` under
/// `txn_id` (no original, no decision: the caller sets those it has).
pub(super) fn account_request(c: &CanonicalRequest, card: &Card, txn_id: TxnId) -> AccountRequest {
    AccountRequest {
        transaction_id: txn_id.to_string(),
        institution: card.institution.clone(),
        account: card.account.clone(),
        card: card.pan_masked.clone(),
        kind: c.kind,
        channel: c.channel,
        amount: c.amount,
        terminal: c.keys.terminal.clone(),
        merchant: c.merchant.clone(),
        transmission_time: c.keys.transmission_time.clone(),
        rrn: c.keys.rrn.clone(),
        original_transaction_id: None,
        decision: None,
        clear_pan: Some(c.pan.clone()),
        listen_until: None,
        deadline: c.deadline,
    }
}
