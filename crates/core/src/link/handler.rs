//! The boundary between the link and whatever decides: a [`Handler`] gets each
//! decoded financial request (authorizations, advices, reversals) with its
//! deadline and returns the answer. Network management never reaches it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use crate::iso8583::Message;
use crate::iso8583::fields::ResponseCode;

/// Fields copied from a request into an answer the link builds itself.
const ECHOED_FIELDS: &[u16] = &[2, 3, 4, 7, 11, 12, 13, 32, 33, 37, 41, 42, 49, 70, 90];

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The `[[switch]]` section's name.
    pub switch: String,
    pub peer: SocketAddr,
}

/// One request from a switch, with its time budget.
#[derive(Debug)]
pub struct Request {
    pub message: Message,
    /// When its frame arrived.
    pub received: Instant,
    /// When the answer must be ready (switch timeout minus the safety margin).
    pub deadline: Instant,
    pub origin: Arc<Origin>,
}

/// Decides requests. Implemented by the hub core; each call runs in its own task.
pub trait Handler: Send + Sync + 'static {
    /// The answer to a request (an 0110 to an 0100, an 0430 to an 0420, …).
    fn handle(&self, request: Request) -> impl Future<Output = Message> + Send;
}

/// Declines every request with 91 (issuer unavailable): what the link answers
/// while no hub core is configured behind it. Honest, not a fake approval.
#[derive(Debug, Clone, Copy, Default)]
pub struct IssuerUnavailable;

impl Handler for IssuerUnavailable {
    async fn handle(&self, request: Request) -> Message {
        answer(&request.message, ResponseCode::ISSUER_UNAVAILABLE)
    }
}

/// The answer to a request carrying only a response code: response MTI, the
/// request's header and key fields echoed, DE 39 set.
pub fn answer(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new(request.mti().response());
    reply.set_header(request.header().map(<[u8]>::to_vec));
    for &field in ECHOED_FIELDS {
        if let Some(value) = request.get(field) {
            reply.set(field, value);
        }
    }
    reply.set_response_code(code);
    reply
}
