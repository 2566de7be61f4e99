//! ISO 8583 messages: dialects as data files, a codec that does no I/O, the
//! message type with typed accessors, and a JSON field-list form for tools.
//!
//! This layer knows bytes and fields only. It does not frame messages on a
//! socket (see `link`) and does not decide anything (see `hub`).

mod accessors;
mod codec;
pub mod codes;
pub mod dialect;
pub(crate) mod ebcdic;
pub mod error;
pub mod field_list;
pub mod fields;
mod message;

pub use codec::PartialDecode;
pub use dialect::{Dialect, FieldSpec};
pub use error::{
    DecodeError, DialectError, EncodeError, FieldError, FieldListError, Part, ValueError,
};
pub use field_list::FieldList;
pub use fields::de;
pub use message::{Message, Mti};
