pub mod hub_soap;
