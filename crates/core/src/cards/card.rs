//! A registered card: what the hub needs to check and route a request, with
//! the PAN only as keyed hash and masked form.

use crate::mask::redact_pans;
use std::fmt;
use std::str::FromStr;

use crate::cards::pan::PanHash;
use crate::iso8583::fields::Expiry;
use crate::money::Currency;

/// A card as the hub sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Keyed hash of the PAN: the registry key.
    pub pan_hash: PanHash,
    /// First 6 + last 4 digits, for display and logs.
    pub pan_masked: String,
    /// Expiry on the card (YYMM), checked against DE 14.
    pub expiry: Expiry,
    pub status: CardStatus,
    /// Account at the institution the card draws on.
    pub account: String,
    /// `[[institution]]` id keeping the account.
    pub institution: String,
    /// Account currency; requests in other currencies are refused.
    pub currency: Currency,
    /// `[limits.<profile>]` name.
    pub profile: String,
    pub product: Product,
}

/// What a card may do. Only `Active` cards are authorized; an `Inactive`
/// prepaid card accepts its first load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardStatus {
    Active,
    /// Issued but not usable yet (e.g. a prepaid card never loaded).
    Inactive,
    /// Temporarily blocked by the issuer or the holder; can be unblocked.
    Blocked,
    Lost,
    Stolen,
    /// Past its use, whatever the expiry date says.
    Expired,
    /// Closed for good.
    Closed,
}

/// Kind of card program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// Draws on a bank account kept by the institution's account system.
    Debit,
    /// Draws on a prepaid balance; starts inactive, the first load activates.
    Prepaid,
}

/// A name that is not one of a fixed set (status, product).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl CardStatus {
    /// Every status, in the order documented.
    pub const ALL: [CardStatus; 7] = [
        CardStatus::Active,
        CardStatus::Inactive,
        CardStatus::Blocked,
        CardStatus::Lost,
        CardStatus::Stolen,
        CardStatus::Expired,
        CardStatus::Closed,
    ];

    /// Lowercase name, as in card files, the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Inactive => "inactive",
            CardStatus::Blocked => "blocked",
            CardStatus::Lost => "lost",
            CardStatus::Stolen => "stolen",
            CardStatus::Expired => "expired",
            CardStatus::Closed => "closed",
        }
    }
}

impl Product {
    /// Every product.
    pub const ALL: [Product; 2] = [Product::Debit, Product::Prepaid];

    /// Lowercase name, as in card files and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Debit => "debit",
            Product::Prepaid => "prepaid",
        }
    }
}

impl FromStr for CardStatus {
    type Err = UnknownName;

    /// Case-insensitive name.
    fn from_str(s: &str) -> Result<CardStatus, UnknownName> {
        CardStatus::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                what: "card status",
                value: redact_pans(s),
                expected: "active, inactive, blocked, lost, stolen, expired, closed",
            })
    }
}

impl FromStr for Product {
    type Err = UnknownName;

    /// Case-insensitive name.
    fn from_str(s: &str) -> Result<Product, UnknownName> {
        Product::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName {
                what: "product",
                value: redact_pans(s),
                expected: "debit, prepaid",
            })
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in CardStatus::ALL {
            assert_eq!(s.as_str().parse::<CardStatus>(), Ok(s));
        }
        for p in Product::ALL {
            assert_eq!(p.as_str().parse::<Product>(), Ok(p));
        }
        assert_eq!("LOST".parse::<CardStatus>(), Ok(CardStatus::Lost));
        let err = "frozen".parse::<CardStatus>().unwrap_err().to_string();
        assert!(
            err.contains("\"frozen\"") && err.contains("blocked"),
            "{err}"
        );
        assert!("credit".parse::<Product>().is_err());
    }

    #[test]
    fn card_numbers_in_unknown_names_are_masked() {
        let err = "4761739001010010".parse::<CardStatus>().unwrap_err();
        assert!(!err.to_string().contains("4761739001010010"), "{err}");
    }
}
