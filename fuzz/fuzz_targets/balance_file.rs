//! cargo-fuzz entry for the `balance_file` target (`fuzz/targets/balance_file.rs`).
//! Run from the repository root: `cargo +nightly fuzz run balance_file`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::balance_file::target(data));
