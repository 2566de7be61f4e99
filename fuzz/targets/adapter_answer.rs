//! An account system's answer as each shipped adapter reads it
//! (`Adapter::decode_answer`): SOAP 1.1 and 1.2 envelopes and faults, plain
//! XML, fixed-width records. Any answer gives an answer or an error, and an
//! error (which is logged) never quotes a card number in clear.
//!
//! Input: byte 0 picks the HTTP status (even: 200, odd: 500), the rest is
//! the answer's body.

use std::sync::LazyLock;

use cardhub::adapter::Adapter;
use cardhub::hub::account_system::{AccountRequest, Operation};

/// The adapters in `adapters/`.
static ADAPTERS: LazyLock<Vec<Adapter>> = LazyLock::new(|| {
    let dir = super::repo().join("adapters");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("adapters entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Adapter::load(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
});

static REQUEST: LazyLock<AccountRequest> = LazyLock::new(super::account_request);

pub fn target(data: &[u8]) {
    let [status, body @ ..] = data else {
        return;
    };
    let status = if status % 2 == 0 { 200 } else { 500 };
    for adapter in ADAPTERS.iter() {
        for operation in Operation::ALL {
            if let Err(e) = adapter.decode_answer(operation, status, body, &REQUEST) {
                let what = format!("{} {operation:?}: error", adapter.name());
                super::assert_quoted_values_masked(&what, &e.to_string());
            }
        }
    }
}
