//! HomeBank XML v3 as the home-banking host reads and writes it: an
//! `HBRequest` document (function in its `func` attribute, values in
//! attributes) read into a ledger [`Request`], an `HBResponse` written from
//! the ledger's [`Answer`] with HomeBank's `Status` codes, in ISO-8859-1 as
//! the host sends it (samples: `fixtures/vendors/homebank-xml/`).
//!
//! Pure: no I/O, no authentication (HTTP basic, the server's, in
//! [`super::vendors`]). Read by the reference system's own reader
//! ([`crate::xml`], independent of the hub's) by the interface's
//! documented shape, not by cardhub's adapter file.

use roxmltree::Node;

use super::ledger::codes;
use super::soap::{Answer, Request};
use super::xml::{self, XmlError};
use cardhub_core::account::Kind;
use cardhub_core::account::Operation;
use cardhub_core::soap_writer::escape;

/// The interface's namespace (the documents' default namespace).
pub const NAMESPACE: &str = "http://homebank.example/hbx/3";
/// The one URL path of every function (as in `adapters/homebank-xml.toml`).
pub const PATH: &str = "/hbx/v3";
/// The largest request read.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;
/// The answer's Content-Type.
pub const CONTENT_TYPE: &str = "text/xml; charset=ISO-8859-1";

/// What an answer echoes of its request (`func`, `ref`), as far as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub func: String,
    pub reference: String,
}

/// A request read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub echo: Echo,
    pub request: Request,
}

/// Why a request cannot be read: the sender's fault, answered with Status
/// code `-1` (syntax error) and this text.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request is {0} bytes; the limit is {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    #[error("not readable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("root element is {{{ns}}}{local}, not HBRequest version 3")]
    Root { ns: String, local: String },
    #[error("func {0:?} is not AUTH, CRED, REVS, ADVC or BALQ")]
    Func(String),
    #[error("{func}: element {element} is unexpected or repeated")]
    Unexpected { func: &'static str, element: String },
    #[error("{func}: {element}/@{attribute} is missing")]
    Missing {
        func: &'static str,
        element: &'static str,
        attribute: &'static str,
    },
    #[error("{func}: {element} {value:?} is not {expected}")]
    BadValue {
        func: &'static str,
        element: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// The functions, their operations and the elements each may hold.
const FUNCS: [(&str, Operation, &[&str]); 5] = [
    (
        "AUTH",
        Operation::Authorize,
        &["Header", "Account", "Card", "Amount", "Txn"],
    ),
    (
        "CRED",
        Operation::Load,
        &["Header", "Account", "Card", "Amount", "Txn"],
    ),
    (
        "REVS",
        Operation::Reverse,
        &["Header", "Original", "Account", "Amount", "Txn"],
    ),
    (
        "ADVC",
        Operation::Advice,
        &[
            "Header", "Original", "Account", "Card", "Amount", "Txn", "Decision",
        ],
    ),
    ("BALQ", Operation::BalanceInquiry, &["Header", "Account"]),
];

const KINDS: [(&str, Kind); 5] = [
    ("PAYMENT", Kind::Purchase),
    ("CASH", Kind::Cash),
    ("ENQUIRY", Kind::BalanceInquiry),
    ("DEPOSIT", Kind::Load),
    ("REFUND", Kind::Refund),
];

/// A request's elements by name, each at most once.
struct Elements<'d, 'i> {
    func: &'static str,
    found: Vec<(&'d str, Node<'d, 'i>)>,
}

impl<'d, 'i> Elements<'d, 'i> {
    fn get(&self, name: &str) -> Option<Node<'d, 'i>> {
        self.found
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
    }

    fn attribute(
        &self,
        element: &'static str,
        attribute: &'static str,
    ) -> Result<&'d str, RequestError> {
        self.get(element)
            .and_then(|e| e.attribute(attribute))
            .ok_or(RequestError::Missing {
                func: self.func,
                element,
                attribute,
            })
    }

    fn bad(&self, element: &'static str, value: &str, expected: &'static str) -> RequestError {
        RequestError::BadValue {
            func: self.func,
            element,
            value: value.chars().take(64).collect(),
            expected,
        }
    }

    /// A reference: 1 to 64 printable ASCII characters.
    fn reference(&self, element: &'static str) -> Result<String, RequestError> {
        let text = self.attribute(element, "ref")?;
        let ok = (1..=64).contains(&text.len()) && text.bytes().all(|b| (b'!'..=b'~').contains(&b));
        ok.then(|| text.to_owned())
            .ok_or_else(|| self.bad(element, text, "1 to 64 printable ASCII characters"))
    }
}

/// Reads a request body.
///
/// # Errors
///
/// `(echo, error)`: what the `-1` answer echoes and why the request was
/// refused.
pub fn parse_request(body: &[u8]) -> Result<Call, (Echo, RequestError)> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err((Echo::default(), RequestError::TooLarge(body.len())));
    }
    let unreadable = |e: XmlError| (Echo::default(), e.into());
    let text = xml::decode(body).map_err(unreadable)?;
    let doc = xml::parse(&text).map_err(unreadable)?;
    let root = doc.root_element();
    let attr = |name| root.attribute(name).unwrap_or_default();
    let header = xml::child(root, NAMESPACE, "Header");
    let echo = Echo {
        func: attr("func").chars().take(4).collect(),
        reference: header
            .and_then(|h| h.attribute("ref"))
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect(),
    };
    read(root)
        .map(|request| Call {
            echo: echo.clone(),
            request,
        })
        .map_err(|e| (echo, e))
}

fn read(root: Node<'_, '_>) -> Result<Request, RequestError> {
    let (ns, local) = xml::name(root);
    if (ns, local) != (NAMESPACE, "HBRequest") || root.attribute("version") != Some("3") {
        let (ns, local) = (ns.to_owned(), local.to_owned());
        return Err(RequestError::Root { ns, local });
    }
    let func = root.attribute("func").unwrap_or_default();
    let (func, operation, allowed) = FUNCS
        .into_iter()
        .find(|(f, _, _)| *f == func)
        .ok_or_else(|| RequestError::Func(func.chars().take(16).collect()))?;
    let mut found = Vec::new();
    for child in xml::elements(root) {
        let (ns, local) = xml::name(child);
        let repeated = found.iter().any(|(n, _)| *n == local);
        if ns != NAMESPACE || !allowed.contains(&local) || repeated {
            let element = format!("{{{ns}}}{local}");
            return Err(RequestError::Unexpected { func, element });
        }
        found.push((local, child));
    }
    let e = Elements { func, found };
    let transaction_id = e.reference("Header")?;
    let account = e.attribute("Account", "no")?.trim().to_owned();
    if !(1..=64).contains(&account.chars().count()) {
        return Err(e.bad(
            "Account",
            &account,
            "an account number of 1 to 64 characters",
        ));
    }
    let (amount, currency) = match operation {
        Operation::BalanceInquiry => (0, 0),
        _ => amount(&e)?,
    };
    let kind = match operation {
        Operation::BalanceInquiry => Kind::BalanceInquiry,
        // A reversal undoes its original; it names no type.
        Operation::Reverse => Kind::Purchase,
        _ => {
            let text = e.attribute("Txn", "type")?;
            let kind = KINDS.iter().find(|(k, _)| *k == text).map(|(_, k)| *k);
            let channel = e.attribute("Txn", "channel")?;
            if !["ATM", "POS", "WEB"].contains(&channel) {
                return Err(e.bad("Txn", channel, "channel ATM, POS or WEB"));
            }
            kind.ok_or_else(|| {
                e.bad(
                    "Txn",
                    text,
                    "type PAYMENT, CASH, ENQUIRY, DEPOSIT or REFUND",
                )
            })?
        }
    };
    if operation != Operation::BalanceInquiry {
        for attribute in ["terminal", "rrn", "sent"] {
            e.attribute("Txn", attribute)?;
        }
    }
    let original_transaction_id = match operation {
        Operation::Reverse => Some(e.reference("Original")?),
        Operation::Advice if e.get("Original").is_some() => Some(e.reference("Original")?),
        _ => None,
    };
    let decision = match operation {
        Operation::Advice => {
            let code = e.attribute("Decision", "code")?;
            let ok = code.len() == 2
                && code
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
            if !ok {
                return Err(e.bad("Decision", code, "an ISO 8583 response code"));
            }
            let by = e.attribute("Decision", "by")?;
            if !["STANDIN", "SCHEME", "HUB"].contains(&by) {
                return Err(e.bad("Decision", by, "by STANDIN, SCHEME or HUB"));
            }
            e.attribute("Decision", "reason")?;
            Some(code.to_owned())
        }
        _ => None,
    };
    Ok(Request {
        operation,
        transaction_id,
        account,
        amount,
        currency,
        kind,
        original_transaction_id,
        decision,
    })
}

/// `<Amount currency="840">12550</Amount>`: minor units, ISO 4217 numeric.
fn amount(e: &Elements<'_, '_>) -> Result<(i64, u16), RequestError> {
    let text = e.attribute("Amount", "currency")?;
    let currency = Some(text)
        .filter(|t| t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| e.bad("Amount", text, "currency: three digits (ISO 4217)"))?;
    let node = e.get("Amount").ok_or(RequestError::Missing {
        func: e.func,
        element: "Amount",
        attribute: "currency",
    })?;
    let text = xml::text(node);
    let text = &*text;
    let amount = Some(text)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| e.bad("Amount", text, "minor units, digits only"))?;
    Ok((amount, currency))
}

/// The answer to a request read by [`parse_request`], from the ledger's
/// answer: HomeBank's Status code and text, the approval id, the balances
/// (attributes of `Balance`; for BALQ the older `Balances` elements).
pub fn answer(echo: &Echo, operation: Operation, answer: &Answer) -> Vec<u8> {
    let (code, text) = match answer.code.as_str() {
        codes::APPROVED | codes::REVERSED => ("0", "OK"),
        codes::INSUFFICIENT_FUNDS => ("101", "NO COVER"),
        codes::UNKNOWN_ACCOUNT => ("106", "ACCOUNT UNKNOWN"),
        codes::INVALID_TRANSACTION => ("107", "FUNCTION NOT ALLOWED"),
        codes::INVALID_AMOUNT => ("107", "AMOUNT EXCEEDS ORIGINAL"),
        codes::DUPLICATE => ("108", "DUPLICATE REF"),
        codes::ORIGINAL_NOT_FOUND => ("109", "ORIGINAL NOT FOUND"),
        _ => ("900", "HOST ERROR"),
    };
    let mut inner = String::new();
    if let Some(id) = answer.auth_id.as_deref().filter(|_| code == "0") {
        inner.push_str("  <Auth id=\"");
        escape(id, &mut inner);
        inner.push_str("\"/>\n");
    }
    // As the samples: no balances for an original not found.
    let balances = answer.balances.filter(|_| code != "109");
    if let (Some((available, booked)), Some(currency)) = (balances, answer.currency) {
        if operation == Operation::BalanceInquiry {
            // The home-banking accounts of the demo have no credit line.
            inner.push_str(&format!(
                "  <Balances currency=\"{currency:03}\">\n    <Available>{available}</Available>\n    \
                 <Booked>{booked}</Booked>\n    <CreditLine>0</CreditLine>\n  </Balances>\n"
            ));
        } else {
            inner.push_str(&format!(
                "  <Balance available=\"{available}\" booked=\"{booked}\" currency=\"{currency:03}\"/>\n"
            ));
        }
    }
    document(echo, code, text, &inner)
}

/// An answer holding only a Status: `-1` for a request [`parse_request`]
/// refused, `900` when the host cannot process it now.
pub fn status(echo: &Echo, code: &str, text: &str) -> Vec<u8> {
    document(echo, code, text, "")
}

fn document(echo: &Echo, code: &str, text: &str, inner: &str) -> Vec<u8> {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<HBResponse xmlns=\"{NAMESPACE}\" version=\"3\" func=\""
    );
    escape(&echo.func, &mut out);
    out.push_str("\" ref=\"");
    escape(&echo.reference, &mut out);
    out.push_str("\">\n  <Status code=\"");
    escape(code, &mut out);
    out.push_str("\" text=\"");
    escape(&text.chars().take(80).collect::<String>(), &mut out);
    out.push_str("\"/>\n");
    out.push_str(inner);
    out.push_str("</HBResponse>\n");
    // ISO-8859-1: byte n is U+00nn; anything past it cannot be sent.
    out.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> String {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fixtures/adapters/homebank-xml")
            .join(name);
        std::fs::read_to_string(path)
            .unwrap()
            .replace('…', "20261122091407")
    }

    #[test]
    fn the_adapter_golden_requests_are_read() {
        let c = parse_request(golden("authorize.request.xml").as_bytes()).unwrap();
        assert_eq!(c.echo.func, "AUTH");
        assert_eq!(c.request.operation, Operation::Authorize);
        assert_eq!((c.request.amount, c.request.currency), (12550, 840));
        let c = parse_request(golden("reverse.request.xml").as_bytes()).unwrap();
        assert_eq!(
            c.request.original_transaction_id.as_deref(),
            Some("0193A2B4C5D60001")
        );
        let c = parse_request(golden("advice.request.xml").as_bytes()).unwrap();
        assert_eq!(
            (c.request.kind, c.request.decision.as_deref()),
            (Kind::Cash, Some("00"))
        );
        for name in ["load.request.xml", "balance_inquiry.request.xml"] {
            parse_request(golden(name).as_bytes()).unwrap();
        }
    }

    #[test]
    fn bad_requests_are_refused_with_what_can_be_echoed() {
        let good = golden("authorize.request.xml");
        for (bad, want) in [
            (good.replace(">12550<", ">125.50<"), "minor units"),
            (good.replace("func=\"AUTH\"", "func=\"PAYX\""), "func"),
            (good.replace("type=\"PAYMENT\"", "type=\"GIFT\""), "type"),
            (good.replace("<Account no=\"4711002\"/>", ""), "Account/@no"),
            (good.replace("version=\"3\"", "version=\"2\""), "version 3"),
        ] {
            let (echo, e) = parse_request(bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
            assert_eq!(echo.reference, "0193A2B4C5D60001");
        }
    }

    #[test]
    fn answers_carry_status_attributes_and_latin1() {
        let echo = Echo {
            func: "BALQ".into(),
            reference: "R1".into(),
        };
        let a = Answer {
            result: "APPROVED".into(),
            code: codes::APPROVED.into(),
            auth_id: None,
            balances: Some((81450, 94000)),
            currency: Some(840),
            message: None,
        };
        let written = answer(&echo, Operation::BalanceInquiry, &a);
        let text = xml::decode(&written).unwrap();
        let doc = xml::parse(&text).unwrap();
        let balances = xml::child(doc.root_element(), NAMESPACE, "Balances").unwrap();
        let booked = xml::child(balances, NAMESPACE, "Booked").unwrap();
        assert_eq!(xml::text(booked), "94000");
        let status = status(
            &Echo {
                func: "AUTH".into(),
                reference: "é".into(),
            },
            "-1",
            "SYNTAX",
        );
        assert!(status.contains(&0xE9), "é in ISO-8859-1");
    }
}
