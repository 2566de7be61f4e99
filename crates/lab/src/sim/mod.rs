//! The switch simulator: talks to a running hub as a card switch would.
//!
//! A [`SimClient`] dials the hub over TCP and reuses the link's own
//! connection machinery (framing, answer matching by MTI class + DE 41 +
//! DE 11, answers to the hub's echo tests), so the simulator speaks exactly
//! the protocol the link speaks. On top of it: [`send`] sends one request and
//! returns its answer, [`flood`] sends many from a template, at a rate or a
//! concurrency, and reports response codes and latency percentiles.
//!
//! This module does not decide anything and does not listen: it is a client
//! for operators, tests and benchmarks. It never prints card data; callers
//! show answers through a masked [`FieldList`](cardhub_core::iso8583::FieldList).

mod cards;
mod client;
pub mod flood;
mod report;
pub mod send;
pub mod template;

use std::path::PathBuf;

use cardhub_core::iso8583::{DecodeError, FieldListError, Mti, ValueError};
use cardhub_core::link::LinkError;

pub use cards::{load_cards, parse_cards};
pub use client::SimClient;
pub use flood::{FloodOptions, Pace, flood};
pub use report::{FloodReport, Latency};
pub use send::{Exchange, MessageSpec, SendOptions, send};

/// Errors of the simulator. Messages carry the context (address, path, line,
/// field); the underlying cause is the error's `source()`.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The hub cannot be reached (is it running? retrying may help).
    #[error("connecting to {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The header for the messages the simulator builds does not fit the dialect.
    #[error("header {header:?}: {reason}")]
    Header { header: String, reason: String },
    /// The dialect needs a header and none was given, nor can one be derived.
    #[error("dialect {dialect} needs a message header (--header)")]
    HeaderRequired { dialect: String },
    /// The sign-on went unanswered or could not be sent.
    #[error("signing on to {address}")]
    SignOn {
        address: String,
        #[source]
        source: LinkError,
    },
    /// The hub answered the sign-on with another code than 00.
    #[error("sign-on to {address} refused with response code {code}")]
    SignOnRefused { address: String, code: String },
    /// A request went unanswered (timeout, connection lost) or could not be sent.
    #[error("{mti} request")]
    Request {
        mti: Mti,
        #[source]
        source: LinkError,
    },
    /// A request template (fixture) that cannot be used.
    #[error("template {}", path.display())]
    Template {
        path: PathBuf,
        #[source]
        source: TemplateError,
    },
    /// The cards file cannot be read.
    #[error("cards file {}", path.display())]
    CardsRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the cards file that is not a card number.
    #[error("cards file {}, line {line}: {source}", path.display())]
    Cards {
        path: PathBuf,
        line: usize,
        #[source]
        source: ValueError,
    },
    /// A cards file with nothing but comments and blank lines.
    #[error("cards file {} holds no card numbers", path.display())]
    NoCards { path: PathBuf },
    /// A value given for a typed field that does not pass its check (PAN, amount).
    #[error("field {field}: {source}")]
    Field {
        field: u16,
        #[source]
        source: ValueError,
    },
    /// The fields given for a request do not make a message of the dialect.
    #[error("building the request")]
    Build(#[source] FieldListError),
    /// A flood or send option out of range.
    #[error("{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
}

impl SimError {
    /// Whether the error is an answer that did not come in time.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SimError::Request {
                source: LinkError::Timeout(_),
                ..
            }
        )
    }

    /// Whether trying again later can help (the hub unreachable, slow or
    /// gone); the other errors are in the simulator's input.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SimError::Connect { .. }
                | SimError::SignOn { .. }
                | SimError::SignOnRefused { .. }
                | SimError::Request {
                    source: LinkError::Timeout(_) | LinkError::Closed,
                    ..
                }
        )
    }
}

/// Why a template file is not a usable request.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot be read")]
    Read(#[source] std::io::Error),
    #[error("is {size} bytes, more than the {max} a template may have")]
    TooLarge { size: u64, max: u64 },
    /// Neither `.hex`, `.json` nor `.toml`.
    #[error("is not a .hex, .json or .toml file")]
    UnknownKind,
    #[error("is not hex")]
    Hex(#[source] hex::FromHexError),
    #[error("is not a message of the dialect")]
    Decode(#[source] DecodeError),
    #[error("is not a field list of the dialect")]
    FieldList(#[source] FieldListError),
    /// An answer or other message that expects no answer cannot be sent as a request.
    #[error("holds a {mti}, which is not a request")]
    NotARequest { mti: Mti },
}

/// An error and its causes on one line, `outer: cause: cause`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
