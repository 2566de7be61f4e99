//! The hub core: the authorization pipeline every financial request from the
//! switch goes through — map, check for duplicates, check the card and its
//! limits, route to the account system, journal durably, answer.

pub(crate) mod call;
pub mod limits;
pub mod mapping;
pub mod model;
pub mod pipeline;
pub mod seen;
