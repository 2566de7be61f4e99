//! cargo-fuzz entry for the `template` target (`fuzz/targets/template.rs`).
//! Run from the repository root: `cargo +nightly fuzz run template`.
#![no_main]

#[allow(dead_code)]
#[path = "../targets/mod.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::template::target(data));
