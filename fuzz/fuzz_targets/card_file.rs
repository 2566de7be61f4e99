//! cargo-fuzz entry for the `card_file` target (`fuzz/targets/card_file.rs`).
//! Run from the repository root: `cargo +nightly fuzz run card_file`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::card_file::target(data));
