//! cardhub-lab: what checks, shows and measures cardhub but is not part of
//! it — the reference account system ([`refsys`]), the switch simulator
//! ([`sim`]), the end-to-end benchmark ([`bench`]) and the demo ([`demo`]).
//! Nothing here is linked into the production library (`cardhub-core`).
#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
mod loopback;
pub mod refsys;
pub mod sim;
