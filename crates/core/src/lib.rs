//! cardhub-core: the production library of cardhub, an authorization hub for card issuers whose accounts live in
//! legacy account systems. See `docs/` and the README for the whole picture.
#![forbid(unsafe_code)]

pub mod access;
pub mod account;
pub mod adapter;
pub mod api;
pub mod app;
pub mod backoffice;
pub mod cards;
pub mod config;
pub mod encoding;
pub mod fleet;
pub mod hub;
pub mod iso8583;
pub mod journal;
pub mod link;
pub mod mask;
pub mod metrics;
pub mod money;
pub mod prepaid;
pub mod soap_writer;
pub mod standin;
pub mod store;
pub mod web;
pub mod xml;
