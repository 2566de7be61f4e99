//! cargo-fuzz entry for the `decode` target (`fuzz/targets/decode.rs`).
//! Run from the repository root: `cargo +nightly fuzz run decode`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::decode::target(data));
