//! cargo-fuzz entry for the `adapter_file` target (`fuzz/targets/adapter_file.rs`).
//! Run from the repository root: `cargo +nightly fuzz run adapter_file`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::adapter_file::target(data));
