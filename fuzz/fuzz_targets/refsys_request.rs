//! cargo-fuzz entry for the `refsys_request` target (`fuzz/targets/refsys_request.rs`).
//! Run from the repository root: `cargo +nightly fuzz run refsys_request`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::refsys_request::target(data));
