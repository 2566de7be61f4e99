//! cargo-fuzz entry for the `dialect` target (`fuzz/targets/dialect.rs`).
//! Run from the repository root: `cargo +nightly fuzz run dialect`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::dialect::target(data));
