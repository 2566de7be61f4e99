//! cargo-fuzz entry for the `answer` target (`fuzz/targets/answer.rs`).
//! Run from the repository root: `cargo +nightly fuzz run answer`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::answer::target(data));
