//! cargo-fuzz entry for the `hub_request` target (`fuzz/targets/hub_request.rs`).
//! Run from the repository root: `cargo +nightly fuzz run hub_request`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::hub_request::target(data));
