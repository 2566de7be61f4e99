//! Balance files (`standin::balance_file`) in each example format of
//! `fixtures/balances/formats.toml` (CSV, fixed-width, XML). A file read
//! whole and found good hands every row to the sink once, per account, and
//! its hash is that of the bytes given; a refused file names at least one
//! problem, each on a line the file has, with card numbers masked.
//!
//! Input: byte 0 picks the limits (bit 0: small) and whether the as-of is
//! also supplied (bit 1), the rest is the file.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use cardhub_core::standin::balance_file::{
    BalanceFileError, BalanceFormat, MAX_REPORTED_PROBLEMS, ReadLimits, read_with_limits,
};
use sha2::{Digest, Sha256};

static FORMATS: LazyLock<BTreeMap<String, BalanceFormat>> = LazyLock::new(|| {
    let path = super::repo().join("fixtures/balances/formats.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
});

pub fn target(data: &[u8]) {
    let [mode, file @ ..] = data else {
        return;
    };
    let limits = if mode & 1 == 1 {
        ReadLimits {
            max_bytes: 4096,
            max_rows: 3,
            max_record_bytes: 80,
        }
    } else {
        ReadLimits::default()
    };
    let supplied = (mode & 2 == 2).then(|| "2026-03-01T00:00:00Z".parse().expect("timestamp"));
    // A file of n newlines has n + 1 lines; an error may point one past
    // the last (an element or trailer missing at the end).
    let lines = file.iter().filter(|&&b| b == b'\n').count() as u64 + 2;
    for (name, format) in FORMATS.iter() {
        let mut rows = Vec::new();
        let outcome = read_with_limits(format, file, supplied, limits, |row| {
            rows.push(row);
            Ok(())
        });
        match outcome {
            Ok(summary) => {
                assert_eq!(summary.rows, rows.len() as u64, "{name}: rows counted");
                let hash: [u8; 32] = Sha256::digest(file).into();
                assert_eq!(summary.sha256, hash, "{name}: a good file's hash");
                let mut accounts = HashSet::new();
                for row in &rows {
                    assert!(!row.account.is_empty(), "{name}: empty account");
                    assert!(
                        (1..=lines).contains(&row.line),
                        "{name}: row on line {}",
                        row.line
                    );
                    assert!(accounts.insert(&row.account), "{name}: account twice");
                }
            }
            Err(BalanceFileError::Invalid { problems, more }) => {
                assert!(!problems.is_empty(), "{name}: refused without a problem");
                assert!(
                    problems.len() <= MAX_REPORTED_PROBLEMS,
                    "{name}: problems kept"
                );
                assert!(more == 0 || problems.len() == MAX_REPORTED_PROBLEMS);
                for p in &problems {
                    assert!(
                        p.line <= lines,
                        "{name}: problem on line {} of {lines}",
                        p.line
                    );
                    super::assert_quoted_values_masked(name, &p.to_string());
                }
            }
            Err(e) => panic!("{name}: {e} (only an invalid file is expected here)"),
        }
    }
}
