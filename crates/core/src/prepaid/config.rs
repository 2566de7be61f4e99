//! `[prepaid]`: hub-wide settings of the prepaid ledger. Orderers,
//! programmes and card accounts live in the store (see `docs/prepaid.md`).

use std::path::PathBuf;

use serde::Deserialize;

/// `[prepaid]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrepaidConfig {
    /// The maximum balance per card, in minor units of the programme's
    /// currency, for programmes created without their own.
    pub default_max_balance: u64,
    /// The folder the API writes card production and PIN mailer files to,
    /// for the transfer to the card producer (relative to the config
    /// file). `None`: the API writes none (the CLI writes to a path given).
    pub outbox: Option<PathBuf>,
}

impl Default for PrepaidConfig {
    fn default() -> Self {
        PrepaidConfig {
            default_max_balance: 150_000,
            outbox: None,
        }
    }
}

impl PrepaidConfig {
    /// Problems with the values, for the config check.
    pub fn problems(&self) -> Vec<String> {
        if self.default_max_balance == 0 || i64::try_from(self.default_max_balance).is_err() {
            vec![format!(
                "prepaid.default_max_balance {} must be between 1 and {}",
                self.default_max_balance,
                i64::MAX
            )]
        } else {
            Vec::new()
        }
    }
}
