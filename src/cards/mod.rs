//! Cards, accounts and limits: the card registry the hub checks every
//! request against. Card numbers are kept only as a keyed hash (lookup), the
//! masked form and an encrypted value.

pub mod config;
