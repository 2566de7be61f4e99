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
use crate::hub::model::{CanonicalRequest, MessageRole};
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
        financial: financial_of(c),
        channel: c.channel,
        amount: c.amount,
        terminal: c.keys.terminal.clone(),
        merchant: c.merchant.clone(),
        merchant_name: c.merchant_name.clone(),
        transmission_time: c.keys.transmission_time.clone(),
        rrn: c.keys.rrn.clone(),
        original_transaction_id: None,
        decision: None,
        clear_pan: Some(c.pan.clone()),
        listen_until: None,
        decision_row: None,
        deadline: c.deadline,
    }
}

/// Whether the switch's request is a financial request (class 2: 0200):
/// approved, it is final.
fn financial_of(c: &CanonicalRequest) -> bool {
    c.role == MessageRole::Request && c.keys.mti.class() == 2
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;
    use crate::iso8583::Message;
    use crate::link::handler::Origin;

    fn request(processing_code: &str) -> Request {
        let mut m = Message::new("0201".parse().unwrap());
        m.set(2, "4761739001010010");
        m.set(3, processing_code);
        m.set(4, "000000002000");
        m.set(7, "1122030201");
        m.set(11, "000077");
        m.set(32, "4761739");
        m.set(41, "ATM00001        ");
        m.set(49, "978");
        let now = Instant::now();
        Request {
            message: m,
            received: now,
            deadline: now,
            origin: Arc::new(Origin {
                switch: "visa".into(),
                peer: "127.0.0.1:0".parse().unwrap(),
            }),
        }
    }

    #[test]
    fn a_request_is_read_once_into_keys_and_its_canonical_form() {
        let r = request("010000");
        let m = map(&r);
        let c = m.canonical.as_ref().unwrap();
        assert_eq!(m.keys, c.keys);
        assert_eq!(m.keys.mti.as_str(), "0200");
        assert_eq!(m.keys.terminal, "ATM00001");
        assert!(m.repeat);
        assert_eq!(m.amount_minor, 2000);
        assert_eq!(m.pan_masked.as_deref(), Some("476173******0010"));
    }

    #[test]
    fn a_message_that_is_no_request_still_has_what_the_duplicate_check_needs() {
        let r = request("990000");
        let m = map(&r);
        assert!(matches!(
            m.canonical,
            Err(MappingError::InvalidTransaction(_))
        ));
        assert_eq!(
            (
                m.keys.mti.as_str(),
                m.keys.stan.as_str(),
                m.keys.acquirer.as_str()
            ),
            ("0200", "000077", "4761739")
        );
        assert_eq!(m.amount_minor, 2000);
        assert_eq!(m.pan_masked.as_deref(), Some("476173******0010"));
    }
}
