//! cargo-fuzz entry for the `config` target (`fuzz/targets/config.rs`).
//! Run from the repository root: `cargo +nightly fuzz run config`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::config::target(data));
