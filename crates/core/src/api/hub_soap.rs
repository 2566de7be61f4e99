//! The SOAP messages of the interface cardhub serves to institutions
//! (`wsdl/hub.wsdl`, types in `wsdl/hub.xsd`): reading a `StatusNotify` or
//! `SubmitBalances` request, and writing the answers and faults, in SOAP 1.1
//! or 1.2.
//!
//! Pure: no I/O, no business logic. The HTTP server hands over the body and
//! two headers and gets a [`HubCall`]; the hub decides and the server sends
//! what [`status_response`], [`balances_accepted`], [`balances_rejected`] or
//! [`fault`] render. The request is untrusted: it is read with the hardened
//! reader of [`adapter::xml`](crate::xml) (size checked first, no
//! DTD, no entities, depth and node limits), and every value is held to the
//! XSD's constraints. Envelope details (namespaces, Body, Fault layout) come
//! from [`adapter::soap`](crate::adapter::soap).
//!
//! Whole balance files travel in one request, so a body is read whole into
//! memory: at most [`DEFAULT_MAX_REQUEST_BYTES`] unless the server passes its
//! own limit to [`parse_request_limited`]. Peak memory is about 2.75 times
//! the body (the body, the `content` text, the decoded file), one more when
//! the base64 is split into lines (a copy without the whitespace).

mod answer;
mod code;
mod request;

use std::fmt;

use jiff::Timestamp;

use crate::adapter::soap;
use crate::standin::state::InstitutionState;
use crate::xml::XmlError;

pub use crate::adapter::soap::{FaultCode, Version as SoapVersion};
pub use answer::{balances_accepted, balances_rejected, fault, fault_http_status, status_response};
pub use code::HubFaultCode;
pub use request::{fault_version, parse_request, parse_request_limited};

/// The hub interface's XML namespace (`hub.xsd`'s targetNamespace).
pub const NAMESPACE: &str = "urn:cardhub:hub:v1";

/// The largest request [`parse_request`] reads: 64 MiB, a balance file of
/// about 48 MiB once base64 is undone.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 << 20;

/// `hub:Identifier`: a token of 1 to 64 characters.
const IDENTIFIER_MAX: usize = 64;
/// `hub:Text`: at most 512 characters.
const TEXT_MAX: usize = 512;

const STATUS_NOTIFY: &str = "StatusNotify";
const SUBMIT_BALANCES: &str = "SubmitBalances";

/// The state an institution signals (`hub:SignalledState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalledState {
    /// `OPEN`: online; after CLOSING or CLOSED, replay may start.
    Open,
    /// `CLOSING`: end of day starting; no more online requests.
    Closing,
    /// `CLOSED`: closed for end of day.
    Closed,
}

/// A request read from the Body, values checked against `hub.xsd`.
#[derive(Clone, PartialEq, Eq)]
pub enum HubCall {
    /// `hub:StatusNotify`.
    StatusNotify {
        /// Whitespace-collapsed, 1 to 64 characters.
        institution: String,
        state: SignalledState,
        /// Trimmed, at most 512 characters; `None` when the element is absent.
        reason: Option<String>,
        /// When the account system entered the state.
        time: Timestamp,
    },
    /// `hub:SubmitBalances`. Every element is required by the XSD.
    SubmitBalances {
        /// Whitespace-collapsed, 1 to 64 characters.
        institution: String,
        /// When the balances were taken.
        as_of: Timestamp,
        /// Trimmed, at most 512 characters (may be empty).
        file_name: String,
        /// The format's name in the institution's configuration; 1 to 64
        /// characters.
        format: String,
        /// The balance file, base64 undone.
        content: Vec<u8>,
    },
}

/// One line error of a refused balance file, as [`balances_rejected`]
/// renders it (and the JSON API lists it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = LineError)]
pub struct LineErrorOut {
    /// Line in the file, from 1; 0 for the file as a whole (rendered as 1
    /// over SOAP, the XSD's lowest).
    pub line: u64,
    /// A column number from 1 (rendered as `column`) or a column's name
    /// (rendered as `columnName`).
    pub column: Option<String>,
    /// What is wrong, without card numbers.
    pub reason: String,
}

impl From<crate::standin::balance_file::LineError> for LineErrorOut {
    fn from(e: crate::standin::balance_file::LineError) -> LineErrorOut {
        LineErrorOut {
            line: e.line,
            column: e.column,
            reason: e.reason,
        }
    }
}

/// Why a request cannot be read. Always the sender's fault: sending the same
/// request again cannot help. [`fault_code`](Self::fault_code) and
/// [`hub_code`](Self::hub_code) say how to answer it ([`HubSoapError::to_fault`]).
#[derive(Debug, thiserror::Error)]
pub enum HubSoapError {
    /// The body is larger than the limit (checked before parsing). `size`
    /// is what is known: the whole body, or as far as it was read.
    #[error("request body is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    /// A Content-Type that is neither SOAP 1.1's nor SOAP 1.2's.
    #[error(
        "Content-Type {found:?} is not SOAP: expected text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)"
    )]
    ContentType { found: String },
    /// A charset other than UTF-8 (or its subset US-ASCII).
    #[error("Content-Type charset {found:?} is not read; send UTF-8")]
    Charset { found: String },
    /// Not well-formed XML, a DOCTYPE, an entity, past a depth or node limit.
    #[error("request is not readable XML: {source}")]
    Xml {
        #[source]
        source: XmlError,
    },
    /// The root element is not an Envelope.
    #[error("request is not a SOAP envelope: root element is {{{ns}}}{local}")]
    NotEnvelope { ns: String, local: String },
    /// An Envelope in a namespace of no SOAP version cardhub speaks.
    #[error(
        "request is an Envelope in namespace {ns:?}, neither SOAP 1.1 ({}) nor SOAP 1.2 ({})",
        SoapVersion::V11.namespace(),
        SoapVersion::V12.namespace()
    )]
    UnknownEnvelope { ns: String },
    /// The envelope's version and the Content-Type's disagree.
    #[error(
        "request is a {envelope} envelope but its Content-Type {content_type:?} is {declared}'s"
    )]
    VersionMismatch {
        envelope: SoapVersion,
        declared: SoapVersion,
        content_type: String,
    },
    /// No Body, or a Body without an element.
    #[error("request: {0}")]
    Envelope(#[from] soap::SoapError),
    /// A Body with more than one element (document/literal wrapped has one).
    #[error(
        "request Body has {count} elements; expected exactly one (StatusNotify or SubmitBalances)"
    )]
    BodyElements { count: usize },
    /// A header block addressed to cardhub with mustUnderstand set.
    #[error("header block {{{ns}}}{local} has mustUnderstand set; cardhub does not process it")]
    MustUnderstand { ns: String, local: String },
    /// The Body's element is not an operation of hub.wsdl.
    #[error(
        "Body element {{{ns}}}{local} is not an operation: expected {{urn:cardhub:hub:v1}}StatusNotify or SubmitBalances"
    )]
    UnknownOperation { ns: String, local: String },
    /// The SOAP action names another operation than the Body.
    #[error(
        "SOAP action {action:?} does not match the Body's {operation} (expected \"urn:cardhub:hub:v1#{operation}\" or none)"
    )]
    ActionMismatch {
        action: String,
        operation: &'static str,
    },
    /// A required element is absent.
    #[error("{operation}: missing element hub:{element}")]
    Missing {
        operation: &'static str,
        element: &'static str,
    },
    /// A child element without a namespace (hub.xsd's elements are qualified).
    #[error(
        "{operation}: element {local} has no namespace; hub elements are qualified (urn:cardhub:hub:v1)"
    )]
    Unqualified {
        operation: &'static str,
        local: String,
    },
    /// A child element the operation does not have.
    #[error("{operation}: unexpected element {{{ns}}}{local} (expected {expected})")]
    Unexpected {
        operation: &'static str,
        ns: String,
        local: String,
        expected: String,
    },
    /// A child element repeated, or out of the XSD's order.
    #[error("{operation}: element hub:{element} is repeated or out of order (expected {expected})")]
    Order {
        operation: &'static str,
        element: &'static str,
        expected: String,
    },
    /// A value the XSD does not allow (shown cut to 40 characters).
    #[error("{operation}/{element}: {value:?} is not {expected}")]
    BadValue {
        operation: &'static str,
        element: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `content` is not base64. `offset` is a byte offset in the element's
    /// text (whitespace included, from 0).
    #[error("SubmitBalances/content: not base64: {problem} at byte {offset} of the element text")]
    Base64 { problem: String, offset: usize },
}

impl SignalledState {
    /// The XSD's value: `OPEN`, `CLOSING`, `CLOSED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignalledState::Open => "OPEN",
            SignalledState::Closing => "CLOSING",
            SignalledState::Closed => "CLOSED",
        }
    }

    fn parse(text: &str) -> Option<SignalledState> {
        [
            SignalledState::Open,
            SignalledState::Closing,
            SignalledState::Closed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl From<SignalledState> for InstitutionState {
    fn from(state: SignalledState) -> InstitutionState {
        match state {
            SignalledState::Open => InstitutionState::Open,
            SignalledState::Closing => InstitutionState::Closing,
            SignalledState::Closed => InstitutionState::Closed,
        }
    }
}

impl HubCall {
    /// The operation's name in hub.wsdl.
    pub fn operation(&self) -> &'static str {
        match self {
            HubCall::StatusNotify { .. } => STATUS_NOTIFY,
            HubCall::SubmitBalances { .. } => SUBMIT_BALANCES,
        }
    }

    /// The institution the request is from.
    pub fn institution(&self) -> &str {
        match self {
            HubCall::StatusNotify { institution, .. }
            | HubCall::SubmitBalances { institution, .. } => institution,
        }
    }
}

impl fmt::Debug for HubCall {
    /// The balance file's bytes are summarised: they are large, and they
    /// are account data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubCall::StatusNotify {
                institution,
                state,
                reason,
                time,
            } => f
                .debug_struct("StatusNotify")
                .field("institution", institution)
                .field("state", state)
                .field("reason", reason)
                .field("time", time)
                .finish(),
            HubCall::SubmitBalances {
                institution,
                as_of,
                file_name,
                format,
                content,
            } => f
                .debug_struct("SubmitBalances")
                .field("institution", institution)
                .field("as_of", as_of)
                .field("file_name", file_name)
                .field("format", format)
                .field("content", &format_args!("<{} bytes>", content.len()))
                .finish(),
        }
    }
}

impl HubSoapError {
    /// The SOAP fault code to answer with: `VersionMismatch` and
    /// `MustUnderstand` where SOAP says so, otherwise `Sender` (1.1 `Client`).
    pub fn fault_code(&self) -> FaultCode {
        self.hub_code().soap_code()
    }

    /// cardhub's code for the `HubFault` detail.
    pub fn hub_code(&self) -> HubFaultCode {
        match self {
            HubSoapError::TooLarge { .. } => HubFaultCode::RequestTooLarge,
            HubSoapError::ContentType { .. } | HubSoapError::Charset { .. } => {
                HubFaultCode::UnsupportedMediaType
            }
            HubSoapError::Xml { .. } => HubFaultCode::MalformedXml,
            HubSoapError::NotEnvelope { .. }
            | HubSoapError::Envelope(_)
            | HubSoapError::BodyElements { .. } => HubFaultCode::NotSoap,
            HubSoapError::UnknownEnvelope { .. } => HubFaultCode::VersionMismatch,
            // The Content-Type names the other version than the envelope:
            // the media type is wrong (a Sender fault, unlike SOAP's
            // VersionMismatch for an envelope of no known version).
            HubSoapError::VersionMismatch { .. } => HubFaultCode::UnsupportedMediaType,
            HubSoapError::MustUnderstand { .. } => HubFaultCode::MustUnderstand,
            HubSoapError::UnknownOperation { .. } => HubFaultCode::UnknownOperation,
            HubSoapError::ActionMismatch { .. } => HubFaultCode::ActionMismatch,
            HubSoapError::Missing { .. }
            | HubSoapError::Unqualified { .. }
            | HubSoapError::Unexpected { .. }
            | HubSoapError::Order { .. }
            | HubSoapError::BadValue { .. }
            | HubSoapError::Base64 { .. } => HubFaultCode::InvalidMessage,
        }
    }

    /// The fault envelope answering this error ([`fault`] with
    /// [`hub_code`](Self::hub_code) and the message). `v` is best
    /// [`fault_version`]'s.
    pub fn to_fault(&self, v: SoapVersion) -> String {
        fault(v, self.hub_code(), &self.to_string())
    }
}

/// A value for an error message: card numbers in it masked, at most 40
/// characters (faults are logged and may be kept by the caller).
fn shown(value: &str) -> String {
    clamp(&crate::mask::redact_pans(value), 40)
}

/// `text` cut to `max` characters, the last one `…` when cut.
fn clamp(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = text.char_indices().nth(max - 1).map_or(0, |(i, _)| i);
            format!("{}…", &text[..keep])
        }
    }
}

#[cfg(test)]
mod tests;
