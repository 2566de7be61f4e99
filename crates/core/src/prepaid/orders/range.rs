//! A programme's card range: the PANs it issues (prefix, serial, Luhn
//! check digit) and the expiry of its cards.

use super::OrderError;
use crate::iso8583::fields::{Expiry, Pan};

/// The card range a programme issues its cards from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRange {
    /// The BIN and issuer digits every PAN starts with: 6 to 11 digits.
    pub prefix: String,
    /// Digits of a PAN, check digit included: 12 to 19 (16 usually), at
    /// least the prefix and 2.
    pub pan_length: u8,
    /// Months from the order to the card's expiry month: 1 to 120.
    pub validity_months: u8,
    /// The `[[institution]]` id (of mode `prepaid`) the cards belong to.
    pub institution: String,
    /// The cards' `[limits.<profile>]`.
    pub profile: String,
}

/// Checks a range before it is stored.
pub(super) fn check_range(r: &CardRange) -> Result<(), OrderError> {
    let bad = |field, reason: &str| {
        Err(OrderError::InvalidRange {
            field,
            reason: reason.to_string(),
        })
    };
    if !(6..=11).contains(&r.prefix.len()) || !r.prefix.bytes().all(|b| b.is_ascii_digit()) {
        return bad("prefix", "must be 6 to 11 digits");
    }
    if !(12..=19).contains(&r.pan_length) || usize::from(r.pan_length) < r.prefix.len() + 2 {
        return bad(
            "pan_length",
            "must be 12 to 19 and at least the prefix's digits and 2",
        );
    }
    if !(1..=120).contains(&r.validity_months) {
        return bad("validity_months", "must be 1 to 120");
    }
    if r.institution.is_empty() {
        return bad("institution", "is empty");
    }
    if r.profile.is_empty() {
        return bad("profile", "is empty");
    }
    Ok(())
}

/// The PAN at `serial` of a range: prefix, serial zero-padded, Luhn check
/// digit; `None` past the range's last serial.
pub(super) fn pan_at(range: &CardRange, serial: i64) -> Option<Pan> {
    let width = usize::from(range.pan_length).checked_sub(range.prefix.len() + 1)?;
    let body = format!("{}{serial:0width$}", range.prefix);
    if serial < 0 || body.len() != usize::from(range.pan_length) - 1 {
        return None;
    }
    let check = luhn_check_digit(&body);
    Pan::new(&format!("{body}{check}")).ok()
}

/// The digit that makes `body` and it pass the Luhn check.
fn luhn_check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// The expiry `months` after the month of `now_us` (UTC): the card is
/// valid through the end of that month.
pub(super) fn expiry_after(now_us: i64, months: u8) -> Result<Expiry, OrderError> {
    let date = jiff::Timestamp::from_microsecond(now_us)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
        .map_err(|e| OrderError::InvalidOrder {
            field: "time",
            reason: e.to_string(),
        })?;
    let total = i32::from(date.year()) * 12 + i32::from(date.month()) - 1 + i32::from(months);
    Expiry::parse(&format!("{:02}{:02}", total / 12 % 100, total % 12 + 1)).map_err(|e| {
        OrderError::InvalidOrder {
            field: "expiry",
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(prefix: &str, pan_length: u8) -> CardRange {
        CardRange {
            prefix: prefix.into(),
            pan_length,
            validity_months: 36,
            institution: "city".into(),
            profile: "prepaid".into(),
        }
    }

    #[test]
    fn pans_are_prefix_serial_and_a_luhn_digit() {
        let r = range("476173", 16);
        let pan = pan_at(&r, 1).unwrap();
        assert!(pan.expose().starts_with("476173000000001"));
        assert!(pan.luhn_ok());
        for serial in 0..200 {
            assert!(pan_at(&r, serial).unwrap().luhn_ok(), "{serial}");
        }
        // 4761739 + 3 serial digits + check: 999 is the last.
        let small = range("47617390", 12);
        assert!(pan_at(&small, 999).is_some());
        assert!(pan_at(&small, 1000).is_none());
        assert!(pan_at(&small, -1).is_none());
    }

    #[test]
    fn expiry_is_the_validity_after_the_order_month() {
        // 2025-03-15 UTC.
        let t = jiff::Timestamp::from_second(1_742_000_000)
            .unwrap()
            .as_microsecond();
        assert_eq!(expiry_after(t, 36).unwrap().to_string(), "2803");
        assert_eq!(expiry_after(t, 10).unwrap().to_string(), "2601");
        assert_eq!(super::super::utc_date(t), "20250315");
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_range(&range("476173", 16)).is_ok());
        assert!(matches!(
            check_range(&range("47617", 16)),
            Err(OrderError::InvalidRange {
                field: "prefix",
                ..
            })
        ));
        assert!(matches!(
            check_range(&range("47617300001", 12)),
            Err(OrderError::InvalidRange {
                field: "pan_length",
                ..
            })
        ));
    }
}
