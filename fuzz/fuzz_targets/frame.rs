//! cargo-fuzz entry for the `frame` target (`fuzz/targets/frame.rs`).
//! Run from the repository root: `cargo +nightly fuzz run frame`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::frame::target(data));
