//! Money: integer minor units of an ISO 4217 currency. Never floats.
//!
//! The currency table holds the numeric code, alphabetic code and exponent
//! (digits after the decimal point) of the currencies cardhub is expected to
//! see; an unknown numeric code is an error, never a guess.

use std::fmt;

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    /// Numeric code, as in DE 49.
    pub numeric: u16,
    /// Alphabetic code, e.g. `EUR`.
    pub code: &'static str,
    /// Minor-unit digits: 2 for EUR, 0 for JPY, 3 for KWD.
    pub exponent: u8,
}

/// ISO 4217 currencies (numeric, code, exponent).
const CURRENCIES: &[(u16, &str, u8)] = &[
    (36, "AUD", 2),
    (48, "BHD", 3),
    (124, "CAD", 2),
    (156, "CNY", 2),
    (203, "CZK", 2),
    (208, "DKK", 2),
    (344, "HKD", 2),
    (348, "HUF", 2),
    (352, "ISK", 0),
    (356, "INR", 2),
    (392, "JPY", 0),
    (400, "JOD", 3),
    (410, "KRW", 0),
    (414, "KWD", 3),
    (484, "MXN", 2),
    (512, "OMR", 3),
    (554, "NZD", 2),
    (578, "NOK", 2),
    (634, "QAR", 2),
    (643, "RUB", 2),
    (682, "SAR", 2),
    (702, "SGD", 2),
    (710, "ZAR", 2),
    (752, "SEK", 2),
    (756, "CHF", 2),
    (764, "THB", 2),
    (784, "AED", 2),
    (788, "TND", 3),
    (826, "GBP", 2),
    (840, "USD", 2),
    (946, "RON", 2),
    (949, "TRY", 2),
    (975, "BGN", 2),
    (978, "EUR", 2),
    (985, "PLN", 2),
    (986, "BRL", 2),
];

impl Currency {
    /// The currency with this numeric code.
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] when the code is not in the table.
    pub fn from_numeric(numeric: u16) -> Result<Currency, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(n, _, _)| *n == numeric)
            .map(|&(numeric, code, exponent)| Currency {
                numeric,
                code,
                exponent,
            })
            .ok_or(MoneyError::UnknownCurrency(numeric))
    }

    /// The currency with this alphabetic code (`EUR`) or numeric code (`978`).
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] / [`MoneyError::UnknownCode`] when not in the table.
    pub fn parse(text: &str) -> Result<Currency, MoneyError> {
        if let Ok(n) = text.parse::<u16>() {
            return Currency::from_numeric(n);
        }
        CURRENCIES
            .iter()
            .find(|(_, c, _)| c.eq_ignore_ascii_case(text))
            .map(|&(numeric, code, exponent)| Currency {
                numeric,
                code,
                exponent,
            })
            .ok_or_else(|| MoneyError::UnknownCode(text.to_string()))
    }
}

/// An amount of money: minor units and currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: u64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: u64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Parses a decimal amount in the currency's units ("12.50" EUR → 1250).
    /// More decimals than the currency has are an error, never rounded.
    ///
    /// # Errors
    /// [`MoneyError::BadAmount`] for anything but digits with an optional
    /// point and at most `exponent` decimals, or an amount past `u64`.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadAmount(text.to_string());
        let (units, decimals) = text.split_once('.').unwrap_or((text, ""));
        let exp = usize::from(currency.exponent);
        if units.is_empty()
            || decimals.len() > exp
            || (text.contains('.') && decimals.is_empty())
            || !units
                .bytes()
                .chain(decimals.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let padded = format!("{units}{decimals:0<exp$}");
        padded
            .parse::<u64>()
            .map(|minor| Money::new(minor, currency))
            .map_err(|_| bad())
    }

    /// The amount as a decimal string in the currency's units ("12.50").
    pub fn to_decimal(&self) -> String {
        let exp = u32::from(self.currency.exponent);
        if exp == 0 {
            return self.minor.to_string();
        }
        let scale = 10u64.pow(exp);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency.code)
    }
}

/// Money that cannot be read or is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown ISO 4217 currency {0}")]
    UnknownCurrency(u16),
    #[error("unknown currency code {0:?}")]
    UnknownCode(String),
    #[error("{0:?} is not an amount in the currency's units")]
    BadAmount(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_and_formatting() {
        let eur = Currency::from_numeric(978).unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("414").unwrap();
        assert_eq!((eur.code, eur.exponent), ("EUR", 2));
        assert_eq!(Money::new(1250, eur).to_decimal(), "12.50");
        assert_eq!(Money::new(5, eur).to_string(), "0.05 EUR");
        assert_eq!(Money::new(1250, jpy).to_decimal(), "1250");
        assert_eq!(Money::new(1250, kwd).to_decimal(), "1.250");
        assert_eq!(
            Currency::from_numeric(999),
            Err(MoneyError::UnknownCurrency(999))
        );
    }

    #[test]
    fn decimal_parsing_is_exact() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::parse_decimal("12.5", eur).unwrap().minor, 1250);
        assert_eq!(Money::parse_decimal("12", eur).unwrap().minor, 1200);
        assert_eq!(Money::parse_decimal("0.01", eur).unwrap().minor, 1);
        for bad in [
            "12.345",
            "",
            ".5",
            "12.",
            "-1",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(Money::parse_decimal(bad, eur).is_err(), "{bad}");
        }
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::parse_decimal("1.5", jpy).is_err());
    }
}
