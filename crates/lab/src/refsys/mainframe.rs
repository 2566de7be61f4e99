//! The CARDAUTH mainframe's records, as the host reads and writes them
//! (`fixtures/vendors/mainframe-fixed/LAYOUT.md`): a 134-byte ASCII request
//! of any transaction code read into a ledger [`Request`], a 70-byte answer
//! written from the ledger's [`Answer`] with the host's RESULT codes.
//!
//! Pure: no I/O, no framing (the two-byte length is the server's, in
//! [`super::vendors`]). Read by the layout document, not by cardhub's
//! adapter file, so a mistake in one shows against the other.

use super::ledger::codes;
use super::soap::{Answer, Request};
use cardhub_core::account::Kind;
use cardhub_core::account::Operation;

/// Length of every request record.
pub const REQUEST_LEN: usize = 134;
/// Length of every answer record.
pub const ANSWER_LEN: usize = 70;

/// What an answer echoes of its request: the transaction code with `02`
/// and the SEQ-NO, as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// The answer's TRAN-CODE (`AU02` …).
    pub tran_code: String,
    /// The request's SEQ-NO, six digits (`000000` when unreadable).
    pub seq: String,
}

/// A request record read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub echo: Echo,
    pub request: Request,
}

/// Why a request record cannot be read: always the sender's fault, answered
/// `FE` (format error) with the column in the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {0} bytes; a request is {REQUEST_LEN}")]
    Length(usize),
    #[error("record is not ASCII")]
    NotAscii,
    #[error("TRAN-CODE {0:?} is not AU01, LD01, RV01, AD01 or BI01")]
    TranCode(String),
    #[error("{field} (position {position}) {value:?} is not {expected}")]
    Field {
        field: &'static str,
        /// 1-based, as in the host's copybook.
        position: usize,
        value: String,
        expected: &'static str,
    },
}

impl RecordError {
    /// The 1-based column the error is at (1 for the record as a whole).
    fn position(&self) -> usize {
        match self {
            RecordError::Field { position, .. } => *position,
            _ => 1,
        }
    }
}

/// The transaction codes and their operations.
const TRAN_CODES: [(&str, Operation); 5] = [
    ("AU01", Operation::Authorize),
    ("LD01", Operation::Load),
    ("RV01", Operation::Reverse),
    ("AD01", Operation::Advice),
    ("BI01", Operation::BalanceInquiry),
];

/// Reads a request record (without its length prefix).
///
/// # Errors
///
/// `(echo, error)`: the answer to write (an `FE` through [`refusal`]) and
/// why — wrong length, not ASCII, an unknown TRAN-CODE, a field against
/// the layout.
pub fn read(record: &[u8]) -> Result<Record, (Echo, RecordError)> {
    let echo = echo_of(record);
    let fail = |e| Err((echo.clone(), e));
    if record.len() != REQUEST_LEN {
        return fail(RecordError::Length(record.len()));
    }
    let Ok(text) = std::str::from_utf8(record).map(|t| t.to_owned()) else {
        return fail(RecordError::NotAscii);
    };
    if !text.is_ascii() {
        return fail(RecordError::NotAscii);
    }
    match fields(&text) {
        Ok(request) => Ok(Record { echo, request }),
        Err(e) => fail(e),
    }
}

/// The answer's TRAN-CODE and SEQ-NO, read leniently from any bytes.
fn echo_of(record: &[u8]) -> Echo {
    let tran = record.get(0..4).and_then(|b| std::str::from_utf8(b).ok());
    let tran_code = match tran {
        Some(t) if t.bytes().all(|b| b.is_ascii_alphanumeric()) => format!("{}02", &t[..2]),
        _ => "XX02".to_owned(),
    };
    let seq = record
        .get(4..10)
        .filter(|b| b.iter().all(u8::is_ascii_digit))
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("000000")
        .to_owned();
    Echo { tran_code, seq }
}

/// One field by its layout offset and length; `text` is ASCII and long enough.
struct Field<'t> {
    name: &'static str,
    offset: usize,
    value: &'t str,
}

impl<'t> Field<'t> {
    fn at(text: &'t str, name: &'static str, offset: usize, len: usize) -> Field<'t> {
        Field {
            name,
            offset,
            value: &text[offset..offset + len],
        }
    }

    fn bad(&self, expected: &'static str) -> RecordError {
        RecordError::Field {
            field: self.name,
            position: self.offset + 1,
            value: self.value.to_owned(),
            expected,
        }
    }

    fn is_blank(&self) -> bool {
        self.value.bytes().all(|b| b == b' ')
    }

    /// Left-aligned text: trailing spaces dropped; blank is an error.
    fn text(&self) -> Result<&'t str, RecordError> {
        let t = self.value.trim_end_matches(' ');
        match t.is_empty() || t.starts_with(' ') || t.bytes().any(|b| b.is_ascii_control()) {
            true => Err(self.bad("left-aligned text")),
            false => Ok(t),
        }
    }

    /// Zero-filled digits.
    fn number(&self) -> Result<u64, RecordError> {
        match self.value.bytes().all(|b| b.is_ascii_digit()) {
            true => self.value.parse().map_err(|_| self.bad("digits")),
            false => Err(self.bad("zero-filled digits")),
        }
    }

    /// One of `codes`' vendor values.
    fn code<T: Copy>(&self, codes: &[(&str, T)], expected: &'static str) -> Result<T, RecordError> {
        codes
            .iter()
            .find(|(c, _)| *c == self.value)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.bad(expected))
    }
}

const KINDS: [(&str, Kind); 5] = [
    ("PU", Kind::Purchase),
    ("CW", Kind::Cash),
    ("BI", Kind::BalanceInquiry),
    ("CR", Kind::Load),
    ("RF", Kind::Refund),
];

fn fields(text: &str) -> Result<Request, RecordError> {
    let f = |name, offset, len| Field::at(text, name, offset, len);
    let tran = &text[0..4];
    let operation = TRAN_CODES
        .iter()
        .find(|(c, _)| *c == tran)
        .map(|(_, op)| *op)
        .ok_or_else(|| RecordError::TranCode(tran.to_owned()))?;
    f("SEQ-NO", 4, 6).number()?;
    let transaction_id = f("TXN-ID", 10, 16).text()?.to_owned();
    // Account numbers are numbers: the zero fill is not part of them.
    let account = f("ACCT-NO", 26, 12).number()?.to_string();
    let amount = f("AMOUNT", 38, 12).number()?;
    let currency = f("CCY", 50, 3).number()?;
    let kind = f("TXN-TYPE", 53, 2);
    let kind = match operation {
        // A reversal undoes its original, whatever this record says.
        Operation::Reverse if kind.is_blank() => Kind::Purchase,
        _ => kind.code(&KINDS, "PU, CW, BI, CR or RF")?,
    };
    f("CHANNEL", 55, 1).code(&[("A", ()), ("P", ()), ("O", ())], "A, P or O")?;
    f("TERM-ID", 56, 8).text()?;
    f("RRN", 79, 12).text()?;
    f("XMIT-TIME", 91, 10).number()?;
    let reply_by = f("REPLY-BY", 101, 14);
    if !(operation == Operation::Advice && reply_by.is_blank()) {
        reply_by.number()?;
    }
    let original = f("ORIG-TXN-ID", 115, 16);
    let original_transaction_id = match operation {
        Operation::Reverse => Some(original.text()?.to_owned()),
        Operation::Advice if !original.is_blank() => Some(original.text()?.to_owned()),
        _ => None,
    };
    let decision = match operation {
        Operation::Advice => {
            let resp = f("ADV-RESP", 131, 2);
            if !resp
                .value
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            {
                return Err(resp.bad("an ISO 8583 response code"));
            }
            f("ADV-SOURCE", 133, 1).code(&[("S", ()), ("N", ()), ("H", ())], "S, N or H")?;
            Some(resp.value.to_owned())
        }
        _ => None,
    };
    let too_large =
        |field: &'static str, offset: usize, len: usize| f(field, offset, len).bad("in range");
    Ok(Request {
        operation,
        transaction_id,
        account,
        amount: i64::try_from(amount).map_err(|_| too_large("AMOUNT", 38, 12))?,
        currency: u16::try_from(currency).map_err(|_| too_large("CCY", 50, 3))?,
        kind,
        original_transaction_id,
        decision,
    })
}

/// The answer to a request read by [`read`], from the ledger's answer:
/// its code in the host's RESULT table, the host's message, the balances.
pub fn answer(echo: &Echo, operation: Operation, answer: &Answer) -> Vec<u8> {
    let (result, message) = match answer.code.as_str() {
        codes::APPROVED | codes::REVERSED => (
            "AP",
            match operation {
                Operation::Authorize => "APPROVED",
                Operation::Load => "CREDITED",
                Operation::Reverse => "REVERSED",
                Operation::Advice => "ADVICE POSTED",
                Operation::BalanceInquiry => "",
            },
        ),
        codes::INSUFFICIENT_FUNDS => ("NF", "INSUFFICIENT FUNDS"),
        codes::UNKNOWN_ACCOUNT => ("NA", "NO SUCH ACCOUNT"),
        codes::ORIGINAL_NOT_FOUND => ("NO", "ORIGINAL NOT FOUND"),
        codes::DUPLICATE => ("DP", "DUPLICATE TXN-ID"),
        codes::INVALID_TRANSACTION => ("FE", "TXN-TYPE OR CCY REFUSED"),
        codes::INVALID_AMOUNT => ("FE", "AMOUNT OVER ORIGINAL"),
        _ => ("SE", "UNEXPECTED LEDGER CODE"),
    };
    let auth_id = (result == "AP")
        .then_some(answer.auth_id.as_deref())
        .flatten();
    // As the samples: no balances for an original not found.
    let balances = answer.balances.filter(|_| result != "NO");
    write(echo, result, auth_id, message, balances)
}

/// The `FE` answer to a record [`read`] refused.
pub fn refusal(echo: &Echo, error: &RecordError) -> Vec<u8> {
    let message = format!("FORMAT ERROR COL {:03}", error.position());
    write(echo, "FE", None, &message, None)
}

/// An `SE` answer: the host could not process the request (closed for end
/// of day, the ledger failed).
pub fn system_error(echo: &Echo, message: &str) -> Vec<u8> {
    write(echo, "SE", None, message, None)
}

/// The 70-byte answer record.
fn write(
    echo: &Echo,
    result: &str,
    auth_id: Option<&str>,
    message: &str,
    balances: Option<(i64, i64)>,
) -> Vec<u8> {
    let mut out = String::with_capacity(ANSWER_LEN);
    out.push_str(&echo.tran_code);
    out.push_str(&echo.seq);
    out.push_str(result);
    left(&mut out, auth_id.unwrap_or(""), 6);
    left(&mut out, &message.to_ascii_uppercase(), 24);
    let fits = balances
        .filter(|(a, l)| a.unsigned_abs() < 10u64.pow(13) && l.unsigned_abs() < 10u64.pow(13));
    match fits {
        Some((available, ledger)) => {
            for balance in [available, ledger] {
                out.push(if balance < 0 { '-' } else { '+' });
                out.push_str(&format!("{:013}", balance.unsigned_abs()));
            }
        }
        None => out.push_str(&" ".repeat(28)),
    }
    out.into_bytes()
}

/// `text` left-aligned in `len` columns: cut or space-filled, ASCII only.
fn left(out: &mut String, text: &str, len: usize) {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(len)
        .collect();
    out.push_str(&format!("{ascii:<len$}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LAYOUT.md's example request.
    const EXAMPLE: &str = "AU010000010193A2B4C5D60001004711000123000000012550840PUPTERM0042000012345678901532609123456112209140520261122091407                   ";

    #[test]
    fn the_layout_example_is_read() {
        let r = read(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            r.echo,
            Echo {
                tran_code: "AU02".into(),
                seq: "000001".into()
            }
        );
        let q = r.request;
        assert_eq!(q.operation, Operation::Authorize);
        assert_eq!(q.transaction_id, "0193A2B4C5D60001");
        assert_eq!(
            (q.account.as_str(), q.amount, q.currency),
            ("4711000123", 12550, 840)
        );
        assert_eq!(q.kind, Kind::Purchase);
        assert_eq!((q.original_transaction_id, q.decision), (None, None));
    }

    #[test]
    fn bad_records_are_refused_at_their_column() {
        let bad = |at: usize, with: &str| {
            let mut t = EXAMPLE.to_owned();
            t.replace_range(at..at + with.len(), with);
            read(t.as_bytes()).unwrap_err()
        };
        let (echo, e) = bad(38, "00000001255X");
        assert_eq!(echo.tran_code, "AU02");
        assert_eq!(
            String::from_utf8(refusal(&echo, &e)).unwrap(),
            "AU02000001FE      FORMAT ERROR COL 039                                "
        );
        assert!(matches!(bad(0, "ZZ01").1, RecordError::TranCode(_)));
        assert!(matches!(
            bad(53, "XX").1,
            RecordError::Field {
                field: "TXN-TYPE",
                ..
            }
        ));
        assert!(matches!(
            bad(10, " ").1,
            RecordError::Field {
                field: "TXN-ID",
                ..
            }
        ));
        let (echo, e) = read(&EXAMPLE.as_bytes()[..100]).unwrap_err();
        assert_eq!((echo.seq.as_str(), e), ("000001", RecordError::Length(100)));
    }

    #[test]
    fn answers_are_70_columns_with_signed_balances() {
        let echo = Echo {
            tran_code: "AU02".into(),
            seq: "000042".into(),
        };
        let a = Answer {
            result: "DECLINED".into(),
            code: codes::INSUFFICIENT_FUNDS.into(),
            auth_id: None,
            balances: Some((-1240, -1240)),
            currency: Some(840),
            message: Some("insufficient funds".into()),
        };
        let got = String::from_utf8(answer(&echo, Operation::Authorize, &a)).unwrap();
        assert_eq!(
            got,
            "AU02000042NF      INSUFFICIENT FUNDS      -0000000001240-0000000001240"
        );
    }
}
