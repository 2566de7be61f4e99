//! The hub's HTTP side: the JSON API for operators and the SOAP service
//! institutions call (`wsdl/hub.wsdl`).

mod access;
pub mod balances;
pub mod config;
mod error;
pub mod hub_soap;
mod operator;
mod prepaid;
mod prepaid_files;
mod prepaid_orders;
pub mod server;
pub mod tls;
