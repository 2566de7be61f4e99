//! One fuzz target per parser: `fn target(data: &[u8])` feeds untrusted
//! bytes to the real parser and panics when an invariant breaks (a round
//! trip that does not come back, an error that loses its context or shows a
//! card number). Both drivers include this module with `#[path]`:
//! `tests/fuzz.rs` (stable, seeds + a seeded mutator, run by `cargo test`)
//! and the cargo-fuzz crate in `fuzz/` (nightly libFuzzer, coverage-guided).
//! Seeds live in `fuzz/corpus/<target>/`. See docs/performance.md, "Fuzzing".

use std::path::PathBuf;

pub mod adapter_answer;
pub mod adapter_file;
pub mod answer;
pub mod balance_file;
pub mod card_file;
pub mod config;
pub mod decode;
pub mod dialect;
pub mod frame;
pub mod hub_request;
pub mod refsys_request;
pub mod template;

/// A fuzz target: panics when an invariant breaks on `data`.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its corpus folder and cargo-fuzz bin).
pub const ALL: &[(&str, Target)] = &[
    ("adapter_answer", adapter_answer::target),
    ("adapter_file", adapter_file::target),
    ("answer", answer::target),
    ("balance_file", balance_file::target),
    ("card_file", card_file::target),
    ("config", config::target),
    ("decode", decode::target),
    ("dialect", dialect::target),
    ("frame", frame::target),
    ("hub_request", hub_request::target),
    ("refsys_request", refsys_request::target),
    ("template", template::target),
];

/// The repository root, whichever crate (the main one or `fuzz/`) includes
/// this module.
pub fn repo() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if manifest.ends_with("fuzz") {
        manifest.parent().map(PathBuf::from).unwrap_or(manifest)
    } else {
        manifest
    }
}

/// Panics when a quoted value in `text` (`"…"`, as error messages quote
/// what they echo) shows a run of 12 or more digits: a card number in
/// clear, where such runs must be masked.
pub fn assert_quoted_values_masked(what: &str, text: &str) {
    let (mut quoted, mut escaped, mut run) = (false, false, 0);
    for c in text.chars() {
        // An escape (`\0`, `\"`) is one character of the value, not a digit.
        let digit = quoted && !escaped && c.is_ascii_digit();
        if c == '"' && !escaped {
            quoted = !quoted;
        }
        escaped = c == '\\' && !escaped;
        run = if digit { run + 1 } else { 0 };
        assert!(run < 12, "{what} quotes a 12+ digit run in clear: {text}");
    }
}

/// A request as the hub sends it to an account system (answers are read
/// against it, templates render it).
pub fn account_request() -> cardhub_core::account::AccountRequest {
    use cardhub_core::account::{Channel, Kind};
    use cardhub_core::money::{Currency, Money};
    cardhub_core::account::AccountRequest {
        transaction_id: "0193A2B4C5D60001".into(),
        institution: "bank-a".into(),
        account: "A-1001".into(),
        card: "476173******0010".into(),
        kind: Kind::Purchase,
        financial: false,
        channel: Channel::Pos,
        amount: Money::new(12550, Currency::from_numeric(840).expect("USD")),
        terminal: "TERM0042".into(),
        merchant: Some("000012345678901".into()),
        merchant_name: None,
        transmission_time: "1122091405".into(),
        rrn: "532609123456".into(),
        original_transaction_id: None,
        decision: None,
        clear_pan: None,
        listen_until: None,
        decision_row: None,
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
    }
}
