//! Cards, accounts and limits: the card registry the hub checks every
//! request against. Card numbers are kept only as a keyed hash (lookup), the
//! masked form and an encrypted value.
//!
//! - [`pan`]: the PAN keys, keyed hash and encryption.
//! - [`card`]: a card, its status and product.
//! - [`file`](mod@file): the card file (CSV), checked whole before it is applied.
//! - [`registry`]: the cards in the store and an in-memory snapshot for lookups.
//!
//! This layer does not decide authorizations: the hub reads a card's status,
//! expiry and limits profile and answers; see `docs/cards.md`.

pub mod card;
pub mod config;
mod db;
pub mod error;
pub mod file;
pub mod pan;
pub mod registry;

pub use card::{Card, CardStatus, Product};
pub use error::{CardError, LineError};
pub use pan::{PanHash, PanKeys};
pub use registry::{CardQuery, CardRef, CardRegistry, ChangedBy, ImportReport};
