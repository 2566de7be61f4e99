//! The hub core: the authorization pipeline every financial request from the
//! switch goes through — map, check for duplicates, check the card and its
//! limits, route to the account system, journal durably, answer.

pub mod account_system;
pub(crate) mod call;
pub mod config;
pub mod journal;
pub mod limits;
pub mod mapping;
pub mod model;
pub mod pipeline;
pub mod seen;
pub mod service;
pub mod txn_id;
