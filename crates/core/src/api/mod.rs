//! The hub's HTTP side: the JSON API for operators and the SOAP service
//! institutions call (`wsdl/hub.wsdl`).

pub mod balances;
pub mod config;
pub mod hub_soap;
pub mod server;
pub mod tls;
