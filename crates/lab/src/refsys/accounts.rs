//! The accounts file: CSV `account,available,currency` with a header line.
//! `available` is a decimal in the currency's units (`940.00` USD, `1500`
//! JPY; a leading `-` for an overdrawn account); the currency is alphabetic
//! (`USD`) or numeric (`840`) ISO 4217. Read whole; every bad line is
//! reported at once and nothing is loaded.

use std::path::Path;

use super::ledger::Opening;
use cardhub_core::money::{Currency, Money};

/// The largest accounts file read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// An accounts file that cannot be used. The operator's to fix.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("accounts file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("accounts file {path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("accounts file {path}:\n  {}", .lines.join("\n  "))]
    Lines { path: String, lines: Vec<String> },
}

/// Reads the accounts file at `path`.
///
/// # Errors
///
/// [`AccountsError`]: unreadable, too large, or bad lines (all listed).
pub fn read(path: &Path) -> Result<Vec<Opening>, AccountsError> {
    let name = path.display().to_string();
    let io = |source| AccountsError::Io {
        path: name.clone(),
        source,
    };
    if std::fs::metadata(path).map_err(io)?.len() > MAX_FILE_BYTES {
        return Err(AccountsError::TooLarge { path: name });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse(&bytes).map_err(|lines| AccountsError::Lines { path: name, lines })
}

/// Parses an accounts file's content; `Err` lists every bad line.
///
/// # Errors
///
/// One message per bad line (`line N: …`).
pub fn parse(bytes: &[u8]) -> Result<Vec<Opening>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut errors = Vec::new();
    match reader.headers() {
        Ok(h) if h.iter().collect::<Vec<_>>() == ["account", "available", "currency"] => {}
        Ok(h) => errors.push(format!(
            "line 1: header is {:?}, expected account,available,currency",
            h.iter().collect::<Vec<_>>()
        )),
        Err(e) => errors.push(format!("line 1: {e}")),
    }
    let mut accounts: Vec<Opening> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        match opening(&record) {
            Ok(a) if accounts.iter().any(|b| b.account == a.account) => {
                errors.push(format!("line {line}: account {} is repeated", a.account));
            }
            Ok(a) => accounts.push(a),
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(accounts)
    } else {
        Err(errors)
    }
}

fn opening(record: &csv::StringRecord) -> Result<Opening, String> {
    let (Some(account), Some(available), Some(currency), None) =
        (record.get(0), record.get(1), record.get(2), record.get(3))
    else {
        return Err(format!("expected 3 columns, found {}", record.len()));
    };
    if !(1..=64).contains(&account.chars().count()) {
        return Err("account must be 1 to 64 characters".into());
    }
    let currency = Currency::parse(currency).map_err(|e| e.to_string())?;
    let (negative, digits) = match available.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, available),
    };
    let money = Money::parse_decimal(digits, currency).map_err(|e| e.to_string())?;
    let minor = i64::try_from(money.minor).map_err(|_| format!("{available} is too large"))?;
    Ok(Opening {
        account: account.to_owned(),
        available: if negative { -minor } else { minor },
        currency: currency.numeric,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_by_the_currency_exponent() {
        let got =
            parse(b"account,available,currency\nA-1001,940.00,USD\nJ-1,1500,392\nO-1,-0.5,EUR\n")
                .unwrap();
        let minor: Vec<_> = got.iter().map(|a| (a.available, a.currency)).collect();
        assert_eq!(minor, [(94000, 840), (1500, 392), (-50, 978)]);
    }

    #[test]
    fn every_bad_line_is_reported() {
        let errors =
            parse(b"account,available,currency\nA,1.234,USD\nB,1,XXX\nA,1,USD\nC,1\n").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("line 2:"), "{errors:?}");
        assert!(errors[1].starts_with("line 3:"), "{errors:?}");
        let errors = parse(b"acct,bal,ccy\n").unwrap_err();
        assert!(errors[0].contains("header"), "{errors:?}");
    }
}
