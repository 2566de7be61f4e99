//! Errors of the ISO 8583 layer: decoding wire bytes, encoding messages,
//! loading dialect files and reading typed fields.
//!
//! Every decode error names the part of the message (header, MTI, bitmap or
//! field number) and the byte offset where the problem starts. Decode errors
//! are always the peer's fault and a retry of the same bytes cannot help.

use std::fmt;
use std::path::PathBuf;

/// The part of a message a decode or encode error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The dialect's message header (e.g. BASE24's `ISO…` header).
    Header,
    /// The message type indicator.
    Mti,
    /// The primary bitmap.
    PrimaryBitmap,
    /// A data element, by number (1 and 65 are the secondary and tertiary bitmaps).
    Field(u16),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => f.write_str("header"),
            Part::Mti => f.write_str("MTI"),
            Part::PrimaryBitmap => f.write_str("primary bitmap"),
            Part::Field(1) => f.write_str("field 1 (secondary bitmap)"),
            Part::Field(65) => f.write_str("field 65 (tertiary bitmap)"),
            Part::Field(n) => write!(f, "field {n}"),
        }
    }
}

/// Why a byte string is not a valid message of a dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the part was complete.
    #[error("{part}: needs {needed} bytes at offset {offset}, only {available} left")]
    ShortRead {
        part: Part,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The header does not carry the dialect's mandatory literal.
    #[error("header: expected {expected:?} at offset {offset}, found {found:?}")]
    MissingHeader {
        offset: usize,
        expected: String,
        found: String,
    },
    /// A hex bitmap with a character that is not a hex digit.
    #[error("{part}: invalid hex digit {byte:#04x} at offset {offset}")]
    BadBitmap { part: Part, offset: usize, byte: u8 },
    /// A variable-length prefix that is not a number in its encoding.
    #[error("{part}: invalid length prefix {raw:?} at offset {offset}")]
    BadLengthPrefix {
        part: Part,
        offset: usize,
        raw: String,
    },
    /// A length prefix larger than the field's maximum.
    #[error("{part}: length {length} exceeds max {max} at offset {offset}")]
    LengthOverMax {
        part: Part,
        offset: usize,
        length: usize,
        max: usize,
    },
    /// A character outside the field's content class (e.g. a letter in an `n` field).
    #[error("{part}: byte {byte:#04x} is not allowed in class {class} at offset {offset}")]
    BadCharacter {
        part: Part,
        offset: usize,
        byte: u8,
        class: &'static str,
    },
    /// A packed-BCD nibble that is not a decimal digit (or allowed pad).
    #[error("{part}: invalid BCD nibble {nibble:#x} at offset {offset}")]
    BadBcd {
        part: Part,
        offset: usize,
        nibble: u8,
    },
    /// A bit is set for a field the dialect does not define.
    #[error(
        "{part}: present in bitmap but not defined by dialect {dialect} (data at offset {offset})"
    )]
    UndefinedField {
        part: Part,
        offset: usize,
        dialect: String,
    },
    /// Bytes left over after the last field the bitmaps announce.
    #[error("{count} unexpected bytes after the last field at offset {offset}")]
    TrailingBytes { offset: usize, count: usize },
}

impl DecodeError {
    /// The part of the message the error refers to, when there is one.
    pub fn part(&self) -> Option<Part> {
        match self {
            DecodeError::ShortRead { part, .. }
            | DecodeError::BadBitmap { part, .. }
            | DecodeError::BadLengthPrefix { part, .. }
            | DecodeError::LengthOverMax { part, .. }
            | DecodeError::BadCharacter { part, .. }
            | DecodeError::BadBcd { part, .. }
            | DecodeError::UndefinedField { part, .. } => Some(*part),
            DecodeError::MissingHeader { .. } => Some(Part::Header),
            DecodeError::TrailingBytes { .. } => None,
        }
    }
}

/// Why a message cannot be encoded in a dialect. Always a fault of the code
/// building the message, never of a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The dialect requires a header and the message has none.
    #[error(
        "header: dialect {dialect} requires a {length}-byte header starting with {starts_with:?}"
    )]
    MissingHeader {
        dialect: String,
        length: usize,
        starts_with: String,
    },
    /// The header does not fit the dialect's header definition.
    #[error("header: {reason}")]
    BadHeader { reason: String },
    /// The message has a field the dialect does not define.
    #[error("{part}: not defined by dialect {dialect}")]
    UndefinedField { part: Part, dialect: String },
    /// A value longer than the field allows.
    #[error("{part}: length {length} exceeds max {max}")]
    TooLong {
        part: Part,
        length: usize,
        max: usize,
    },
    /// A binary fixed-length field whose value is not exactly its length.
    #[error("{part}: binary field needs exactly {expected} bytes, got {length}")]
    WrongLength {
        part: Part,
        length: usize,
        expected: usize,
    },
    /// A character outside the field's content class or encoding.
    #[error("{part}: byte {byte:#04x} at position {position} is not allowed in class {class}")]
    BadCharacter {
        part: Part,
        position: usize,
        byte: u8,
        class: &'static str,
    },
}

/// A problem in a dialect file. Loading reports all problems at once.
#[derive(Debug, thiserror::Error)]
pub enum DialectError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the dialect schema.
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    /// The file parses but describes an impossible dialect; one line per problem.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
    /// No shipped dialect and no file of that name.
    #[error("unknown dialect {name:?}: not a shipped dialect ({known}) and no file {path}")]
    Unknown {
        name: String,
        known: String,
        path: PathBuf,
    },
}

/// A typed field accessor found the field missing or not of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The message does not carry the field.
    #[error("field {field}: missing")]
    Missing { field: u16 },
    /// The field is present but its content does not fit the type.
    #[error("field {field}: {reason}")]
    Invalid { field: u16, reason: String },
    /// The field is present but its value is not one of its typed values.
    #[error("field {field}: {source}")]
    Value {
        field: u16,
        #[source]
        source: ValueError,
    },
}

/// A value that is not one of the typed values of a data element (the
/// reason [`Pan::new`](super::Pan::new), [`Amount::new`](super::Amount::new)
/// and the other validating constructors refuse it). PANs are never quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not 12 to 19 digits (the length only: a PAN is never quoted).
    #[error("PAN must be 12 to 19 digits, got {length} characters")]
    Pan { length: usize },
    /// More than the 12 digits of an amount field.
    #[error("amount {minor_units} exceeds 12 digits")]
    Amount { minor_units: u64 },
    /// More than the 6 digits of DE 11.
    #[error("STAN {value} exceeds 6 digits")]
    Stan { value: u32 },
    /// An expiry that is not 4 digits.
    #[error("expiry must be YYMM (4 digits)")]
    ExpiryShape,
    /// An expiry whose month is not 01 to 12.
    #[error("expiry month {month:02} is not 01 to 12")]
    ExpiryMonth { month: u8 },
    /// A response code that is not two letters or digits.
    #[error("response code {code:?} is not two letters or digits")]
    ResponseCode { code: String },
    /// A BASE24 header that is not `ISO` and 9 digits.
    #[error("BASE24 header {header:?} is not ISO + 9 digits")]
    Base24Header { header: String },
    /// An MTI that is not four digits.
    #[error("MTI {mti:?} is not four digits")]
    Mti { mti: String },
}

impl FieldError {
    pub(crate) fn invalid(field: u16, reason: impl Into<String>) -> Self {
        FieldError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// A field list (JSON or TOML) that does not fit a dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldListError {
    /// The text is not a field list (with the parser's line and column).
    #[error("not a field list: {0}")]
    Syntax(String),
    /// The MTI is not four digits.
    #[error("mti: {0}")]
    BadMti(#[source] ValueError),
    /// A field number the dialect does not define.
    #[error("field {field}: not defined by dialect {dialect}")]
    UndefinedField { field: u16, dialect: String },
    /// A binary field whose value is not an even number of hex digits.
    #[error("field {field}: binary value must be hex digits, got {value:?}")]
    BadHex { field: u16, value: String },
    /// A character outside Latin-1, which no ISO 8583 text encoding carries.
    #[error("field {field}: character {character:?} is not Latin-1")]
    NotLatin1 { field: u16, character: char },
}
