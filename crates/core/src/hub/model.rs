//! The canonical request: one financial message from the switch in the
//! hub's terms, independent of ISO 8583's layout. `mapping` builds it, once.

use tokio::time::Instant;

use crate::account::{Channel, Kind};
use crate::iso8583::fields::{Expiry, OriginalData, Pan, ResponseCode};
use crate::journal::keys::SwitchKeys;
use crate::money::Money;

/// The message's role (from the MTI class and function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRole {
    /// 0100 / 0200: decide now.
    Request,
    /// 0120 / 0220: the switch stood in, or a completion — record and pass on.
    Advice,
    /// 0400 / 0420: undo an earlier transaction (0420 is the advice form).
    Reversal { advice: bool },
}

/// One financial request from the switch, in the hub's terms.
#[derive(Debug, Clone)]
pub struct CanonicalRequest {
    pub role: MessageRole,
    pub repeat: bool,
    pub kind: Kind,
    pub channel: Channel,
    /// DE 4 in DE 49's currency.
    pub amount: Money,
    pub pan: Pan,
    pub expiry: Option<Expiry>,
    /// DE 42.
    pub merchant: Option<String>,
    /// DE 43, trimmed; `None` when absent or blank.
    pub merchant_name: Option<String>,
    pub mcc: Option<u16>,
    pub keys: SwitchKeys,
    /// DE 90 of reversals and advices.
    pub original: Option<OriginalData>,
    /// DE 95's actual amount: what remains after a partial reversal.
    pub replacement: Option<u64>,
    /// DE 39 of an advice: the decision the switch made.
    pub advice_code: Option<ResponseCode>,
    pub received: Instant,
    pub deadline: Instant,
}
