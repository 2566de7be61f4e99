//! The accounts file: CSV `account,available,currency` with a header line.
//! `available` is a decimal in the currency's units (`940.00` USD, `1500`
//! JPY; a leading `-` for an overdrawn account); the currency is alphabetic
//! (`USD`) or numeric (`840`) ISO 4217. Read whole; every bad line is
//! reported at once and nothing is loaded.

use std::path::Path;

use super::ledger::Opening;
use cardhub_core::money::{Currency, Money, MoneyError};

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
    #[error("accounts file {path}:\n  {}", .lines.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Lines { path: String, lines: Vec<LineError> },
}

/// One bad line of an accounts file.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    pub line: u64,
    pub problem: LineProblem,
}

/// What is wrong with a line.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("header is {0:?}, expected account,available,currency")]
    Header(Vec<String>),
    /// Not CSV (or a header that cannot be read).
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("expected 3 columns, found {0}")]
    Columns(usize),
    #[error("account must be 1 to 64 characters")]
    AccountLength,
    #[error("account {0} is repeated")]
    Repeated(String),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("{0} is too large")]
    TooLarge(String),
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
/// One [`LineError`] per bad line.
pub fn parse(bytes: &[u8]) -> Result<Vec<Opening>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut errors = Vec::new();
    let header = |problem| LineError { line: 1, problem };
    match reader.headers() {
        Ok(h) if h.iter().collect::<Vec<_>>() == ["account", "available", "currency"] => {}
        Ok(h) => errors.push(header(LineProblem::Header(
            h.iter().map(str::to_owned).collect(),
        ))),
        Err(e) => errors.push(header(e.into())),
    }
    let mut accounts: Vec<Opening> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(LineError {
                    line,
                    problem: e.into(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let problem = match opening(&record) {
            Ok(a) if accounts.iter().any(|b| b.account == a.account) => {
                LineProblem::Repeated(a.account)
            }
            Ok(a) => {
                accounts.push(a);
                continue;
            }
            Err(problem) => problem,
        };
        errors.push(LineError { line, problem });
    }
    if errors.is_empty() {
        Ok(accounts)
    } else {
        Err(errors)
    }
}

fn opening(record: &csv::StringRecord) -> Result<Opening, LineProblem> {
    let (Some(account), Some(available), Some(currency), None) =
        (record.get(0), record.get(1), record.get(2), record.get(3))
    else {
        return Err(LineProblem::Columns(record.len()));
    };
    if !(1..=64).contains(&account.chars().count()) {
        return Err(LineProblem::AccountLength);
    }
    let currency = Currency::parse(currency)?;
    let (negative, digits) = match available.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, available),
    };
    let money = Money::parse_decimal(digits, currency)?;
    let minor =
        i64::try_from(money.minor).map_err(|_| LineProblem::TooLarge(available.to_owned()))?;
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
        assert!(
            matches!(
                errors[0],
                LineError {
                    line: 2,
                    problem: LineProblem::Money(_)
                }
            ),
            "{errors:?}"
        );
        assert!(
            matches!(
                errors[1],
                LineError {
                    line: 3,
                    problem: LineProblem::Money(_)
                }
            ),
            "{errors:?}"
        );
        assert!(
            matches!(
                errors[2],
                LineError {
                    line: 5,
                    problem: LineProblem::Csv(_)
                }
            ),
            "{errors:?}"
        );
        assert!(errors[0].to_string().starts_with("line 2:"), "{errors:?}");
        let errors = parse(b"acct,bal,ccy\n").unwrap_err();
        assert!(
            matches!(&errors[0].problem, LineProblem::Header(h) if h == &["acct", "bal", "ccy"]),
            "{errors:?}"
        );
    }
}
