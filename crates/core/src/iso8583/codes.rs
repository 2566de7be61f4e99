//! Response codes the hub itself gives (ISO 8583:1987 usage).

use super::fields::ResponseCode;

/// Builds a constant code; only valid two-character literals are used.
const fn code(c: &[u8; 2]) -> ResponseCode {
    ResponseCode::from_bytes(*c)
}

pub const APPROVED: ResponseCode = ResponseCode::APPROVED;
pub const DO_NOT_HONOR: ResponseCode = code(b"05");
pub const INVALID_TRANSACTION: ResponseCode = ResponseCode::INVALID_TRANSACTION;
pub const INVALID_AMOUNT: ResponseCode = code(b"13");
pub const INVALID_CARD: ResponseCode = code(b"14");
pub const ORIGINAL_NOT_FOUND: ResponseCode = code(b"25");
pub const FORMAT_ERROR: ResponseCode = ResponseCode::FORMAT_ERROR;
pub const LOST: ResponseCode = code(b"41");
pub const STOLEN: ResponseCode = code(b"43");
pub const INSUFFICIENT_FUNDS: ResponseCode = code(b"51");
pub const EXPIRED: ResponseCode = code(b"54");
pub const NOT_PERMITTED: ResponseCode = code(b"57");
pub const EXCEEDS_AMOUNT_LIMIT: ResponseCode = code(b"61");
pub const RESTRICTED: ResponseCode = code(b"62");
pub const EXCEEDS_COUNT_LIMIT: ResponseCode = code(b"65");
pub const ISSUER_UNAVAILABLE: ResponseCode = ResponseCode::ISSUER_UNAVAILABLE;
pub const DUPLICATE: ResponseCode = code(b"94");
pub const SYSTEM_ERROR: ResponseCode = ResponseCode::SYSTEM_ERROR;
