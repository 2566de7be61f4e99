//! Dialect files (TOML text → compiled `iso8583::Dialect`): a file either
//! compiles or is refused with a reason, and a dialect that compiles keeps
//! the codec's round trip (see `decode`) on the decode seeds and on the
//! messages of the shipped dialects' corpus.

use std::sync::LazyLock;

use cardhub_core::iso8583::Dialect;

/// Messages to decode with a fuzzed dialect: the `decode` corpus.
static MESSAGES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let dir = super::repo().join("fuzz/corpus/decode");
    let mut all: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("corpus entry").path()).expect("corpus file"))
        .collect();
    all.sort();
    all
});

pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Dialect::from_toml("fuzz", text) {
        Ok(dialect) => {
            for message in MESSAGES.iter() {
                super::decode::round_trip(&dialect, message);
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal without a reason"),
    }
}
