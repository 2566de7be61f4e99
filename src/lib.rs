//! cardhub: an authorization hub for card issuers whose accounts live in
//! legacy account systems. See `docs/` and the README for the whole picture.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod api;
pub mod backoffice;
pub mod cards;
pub mod cli;
pub mod config;
pub mod hub;
pub mod iso8583;
pub mod link;
pub mod mask;
pub mod metrics;
pub mod money;
pub mod refsys;
pub mod sim;
pub mod soap_writer;
pub mod standin;
pub mod store;
