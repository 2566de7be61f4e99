//! cargo-fuzz entry for the `adapter_answer` target (`fuzz/targets/adapter_answer.rs`).
//! Run from the repository root: `cargo +nightly fuzz run adapter_answer`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::adapter_answer::target(data));
