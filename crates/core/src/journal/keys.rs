//! The switch's keys of a message and the duplicate key they define.

use crate::iso8583::Mti;

/// The switch's keys of a message: DE 7, 11, 32, 41 (and 37).
///
/// Equality and hashing are the **duplicate key**: the MTI without its
/// repeat digit, DE 7, DE 11, DE 32 and DE 41 (not DE 37). It is the same
/// everywhere a repeat is recognised: the map of requests in flight, the
/// seen-keys filter (its fingerprint is this hash), the journal lookup and
/// the journal's unique index (`journal_duplicate_key`).
#[derive(Debug, Clone)]
pub struct SwitchKeys {
    /// The MTI without the repeat digit (0101 → 0100).
    pub mti: Mti,
    pub transmission_time: String,
    pub stan: String,
    pub acquirer: String,
    /// DE 41 without trailing pad.
    pub terminal: String,
    pub rrn: String,
}

impl SwitchKeys {
    /// The duplicate key's fields, in the journal index's column order.
    fn duplicate_key(&self) -> (&str, &str, &str, &str, &str) {
        (
            &self.transmission_time,
            &self.stan,
            &self.acquirer,
            &self.terminal,
            self.mti.as_str(),
        )
    }
}

impl PartialEq for SwitchKeys {
    fn eq(&self, other: &Self) -> bool {
        self.duplicate_key() == other.duplicate_key()
    }
}

impl Eq for SwitchKeys {}

impl std::hash::Hash for SwitchKeys {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.duplicate_key().hash(state);
    }
}
