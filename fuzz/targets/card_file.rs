//! Card files (`cards::file::parse`): a good file gives one row per card,
//! in line order, each PAN once; a refused file lists its bad lines
//! without quoting a card number in clear.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use cardhub_core::cards::config::Catalog;
use cardhub_core::cards::error::CardError;
use cardhub_core::cards::file::{FileLimits, parse};

static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::new(["bank-a", "bank-b"], ["standard", "prepaid"]));

pub fn target(data: &[u8]) {
    let limits = FileLimits {
        max_rows: 1000,
        max_bytes: 1 << 20,
    };
    match parse(data, Path::new("fuzz.csv"), &CATALOG, limits) {
        Ok(rows) => {
            let mut pans = HashSet::new();
            let mut last = 1;
            for row in &rows {
                // Non-decreasing: a lone CR ends a record but not a line.
                assert!(row.line >= last, "rows out of line order");
                last = row.line;
                assert!(pans.insert(&row.pan), "a card twice");
            }
        }
        Err(CardError::File { total, errors, .. }) => {
            assert!(
                !errors.is_empty() && total >= errors.len(),
                "{total} errors, {errors:?}"
            );
            for e in &errors {
                super::assert_quoted_values_masked("card file error", &e.to_string());
            }
        }
        Err(e @ CardError::FileTooLarge { .. }) => {
            super::assert_quoted_values_masked("card file error", &e.to_string());
        }
        Err(e) => panic!("{e} (only a refused file is expected here)"),
    }
}
