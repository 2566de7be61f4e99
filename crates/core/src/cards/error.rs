//! Errors of the card layer: PAN keys, card files, the registry.
//!
//! No error carries a clear PAN or key material: cards are named by their
//! masked form, keys by their configuration name. Key and file errors are the
//! operator's to fix (a retry cannot help); store errors are ours and may pass.

use std::fmt;
use std::path::PathBuf;

use crate::cards::card::CardStatus;
use crate::store::StoreError;

/// One problem in a card file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line in the file (line 1 is the header).
    pub line: u64,
    /// Header name of the column, or `None` when the whole row is wrong.
    pub column: Option<String>,
    /// What is wrong, without the clear PAN.
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// Why a card operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// Neither an environment variable nor an inline value is configured.
    #[error(
        "security.{key}: no key configured; set {key}_env (environment variable) or {key} (inline, tests only)"
    )]
    KeyMissing { key: &'static str },
    /// Both sources are configured; which one wins would be a guess.
    #[error("security.{key}: both {key}_env and {key} are set; configure one")]
    KeyTwice { key: &'static str },
    /// The named environment variable is not set (or not text).
    #[error("security.{key}_env: environment variable {var} is not set")]
    KeyEnvUnset { key: &'static str, var: String },
    /// The key text is not 32 bytes of hex.
    #[error("security.{key} (from {origin}): {problem}")]
    KeyInvalid {
        key: &'static str,
        /// `environment variable NAME` or `inline value`.
        origin: String,
        problem: String,
    },
    /// The hash and encryption keys are the same bytes.
    #[error("security: pan_hash_key and pan_encryption_key must be different keys")]
    KeysEqual,
    /// The configured key is not the one the stored cards were written with.
    #[error("security.{key} does not match the key the stored cards were written with")]
    KeyMismatch { key: &'static str },
    /// A stored encrypted PAN that fails authentication or has an unknown format.
    #[error("stored PAN cannot be decrypted: {reason}")]
    Decrypt { reason: &'static str },
    /// A PAN could not be encrypted: the operating system's random source
    /// failed (no nonce).
    #[error("cannot encrypt a PAN: {0}")]
    Encrypt(String),
    /// The card file cannot be read.
    #[error("{path}: {source}")]
    FileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The card file is past the size or row bound.
    #[error("{path}: card file too large (more than {limit})")]
    FileTooLarge { path: PathBuf, limit: String },
    /// The card file has bad lines; nothing was applied. `errors` holds the
    /// first ones (bounded), `total` counts them all.
    #[error(
        "{path}: {total} error(s), nothing imported; first: {}",
        first_error(errors)
    )]
    File {
        path: PathBuf,
        total: usize,
        errors: Vec<LineError>,
    },
    /// No card with this PAN is registered.
    #[error("card {card} is not registered")]
    UnknownCard {
        /// Masked PAN.
        card: String,
    },
    /// An institution id that is not in the configuration.
    #[error("institution {institution:?} is not configured ([[institution]])")]
    UnknownInstitution { institution: String },
    /// A replacement card's PAN is registered already (masked).
    #[error("card {card} is registered already")]
    CardExists { card: String },
    /// A limits profile that is not in the configuration.
    #[error("limits profile {profile:?} is not configured ([limits.{profile}])")]
    UnknownProfile { profile: String },
    /// `unblock` of a card that is not blocked (lost, stolen … stay so).
    #[error("card {card} is {status}, not blocked; use set-status to change it")]
    NotBlocked { card: String, status: CardStatus },
    /// Re-keying found a stored card the current keys do not open; nothing
    /// was changed.
    #[error("card {card}: {reason}; nothing re-keyed")]
    RekeyCard {
        /// Masked PAN.
        card: String,
        reason: &'static str,
    },
    /// The new keys are the current ones: re-keying would change nothing.
    #[error("the new keys are the current ones; nothing to re-key")]
    RekeySameKeys,
    /// Cards were added or changed while re-keying read them; nothing was
    /// changed.
    #[error("cards changed during re-keying (is a hub or an import running?); nothing re-keyed")]
    RekeyConflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn first_error(errors: &[LineError]) -> String {
    errors.first().map(ToString::to_string).unwrap_or_default()
}

impl CardError {
    /// Whether trying the same operation again later can help: transient
    /// store failures and a failed random source; everything else is in the
    /// configuration, the input or the data.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CardError::Store(e) if e.is_retryable())
            || matches!(self, CardError::Encrypt(_))
    }
}
