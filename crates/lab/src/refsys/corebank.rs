//! CoreBank CardAuth 2009 as the vendor's service reads and writes it
//! (`fixtures/vendors/legacy-soap12/CoreBankCardAuth.wsdl`): a SOAP 1.2
//! request carrying a WS-Security UsernameToken with PasswordDigest, read
//! into a ledger [`Request`] (decimal amounts, alphabetic currencies,
//! vendor enums); an answer written from the ledger's [`Answer`] with
//! CoreBank's textual statuses, or a SOAP fault with a `cb:CoreBankFault`.
//!
//! Pure: no I/O. Read by the reference system's own reader
//! ([`crate::xml`], independent of the hub's), the envelope found by
//! [`super::soap::body`]; the token is checked by the
//! OASIS UsernameToken profile: known user, `PasswordDigest`, a Created
//! within [`FRESHNESS`] of now, a nonce not seen in that window, and
//! `Base64(SHA-1(nonce + created + password))`.
//!
//! As the WSDL says, a repeated TxnRef is answered `DUPLICATE` and never
//! applied twice (unlike the canonical interface, which answers a repeat
//! with its first answer).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::{SignedDuration, Timestamp};
use roxmltree::{Document, Node};

use super::ledger::codes;
use super::soap::{Answer, EnvelopeError, Request, media_version, request_action};
use super::xml::{self, XmlError};
use cardhub_core::account::Kind;
use cardhub_core::account::Operation;
use cardhub_core::adapter::soap::{PASSWORD_DIGEST, WSSE, WSU, password_digest};
use cardhub_core::money::{Currency, Money};
use cardhub_core::soap_writer::{self, Fault, FaultCode, Subcode, Version, escape};

/// The service's namespace.
pub const NAMESPACE: &str = "http://corebank.example/cardauth/2009";
/// The endpoint's path (as in `adapters/legacy-soap12.toml`).
pub const PATH: &str = "/services/CardAuth2009";
/// The largest request read.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;
/// How far a token's Created may be from now, either way; nonces are
/// remembered this long.
pub const FRESHNESS: SignedDuration = SignedDuration::from_mins(5);
/// Nonces remembered at most (the oldest are forgotten first).
const MAX_NONCES: usize = 100_000;
/// CoreBank's fault code for a request it cannot read (the demo server's
/// choice; the WSDL names only the pattern `CB-Ennnn`).
pub const UNREADABLE: &str = "CB-E1001";
/// CoreBank refusing the amount itself: a reversal past what remains.
pub const INVALID_AMOUNT: &str = "CB-E1004";
/// The ledger locked by the end-of-day batch.
pub const LEDGER_UNAVAILABLE: &str = "CB-E9001";

/// The UsernameToken the service accepts.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Nonces of accepted tokens within [`FRESHNESS`]: a token is used once.
#[derive(Default)]
pub struct Nonces {
    seen: HashSet<String>,
    order: VecDeque<(Timestamp, String)>,
}

impl Nonces {
    /// Remembers `nonce` accepted at `now`; `false` if it was seen already.
    fn first_use(&mut self, nonce: &str, now: Timestamp) -> bool {
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) <= FRESHNESS && self.order.len() < MAX_NONCES {
                break;
            }
            self.seen.remove(old);
            self.order.pop_front();
        }
        if !self.seen.insert(nonce.to_owned()) {
            return false;
        }
        self.order.push_back((now, nonce.to_owned()));
        true
    }
}

/// The operations: request element, answer element, SOAP action's last
/// segment, and the elements each request may hold (`?` = optional).
const OPERATIONS: [(Operation, &str, &[&str]); 5] = [
    (Operation::Authorize, "ReserveFunds", FUNDS),
    (Operation::Load, "CreditAccount", FUNDS),
    (
        Operation::Reverse,
        "CancelReservation",
        &[
            "TxnRef",
            "OrigTxnRef",
            "AcctNo",
            "CardMask",
            "Amt",
            "Ccy",
            "TermId",
            "RetrievalRef",
            "ReplyBy",
        ],
    ),
    (
        Operation::Advice,
        "PostAdvice",
        &[
            "TxnRef",
            "OrigTxnRef?",
            "AcctNo",
            "CardMask",
            "Amt",
            "Ccy",
            "TxnType",
            "Channel",
            "TermId",
            "MerchId?",
            "RetrievalRef",
            "ActionCode",
            "DecidedBy",
            "Reason",
        ],
    ),
    (
        Operation::BalanceInquiry,
        "GetBalance",
        &[
            "TxnRef",
            "AcctNo",
            "CardMask",
            "Ccy",
            "Channel",
            "TermId",
            "RetrievalRef",
            "ReplyBy",
        ],
    ),
];

const FUNDS: &[&str] = &[
    "TxnRef",
    "AcctNo",
    "CardMask",
    "Amt",
    "Ccy",
    "TxnType",
    "Channel",
    "TermId",
    "MerchId?",
    "RetrievalRef",
    "ReplyBy",
];

const KINDS: [(&str, Kind); 5] = [
    ("DEBIT_HOLD", Kind::Purchase),
    ("CASH_WITHDRAWAL", Kind::Cash),
    ("BALANCE_ENQUIRY", Kind::BalanceInquiry),
    ("CREDIT", Kind::Load),
    ("REFUND_CREDIT", Kind::Refund),
];

/// A request read and authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub request: Request,
}

/// Why a request is refused; the sender's fault (a `Sender` fault, HTTP
/// 400). [`RequestError::Authentication`] is answered without a CoreBank
/// detail (`wsse:FailedAuthentication`), and the reason is only logged.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request is {0} bytes; the limit is {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    #[error("Content-Type {0:?} is not application/soap+xml")]
    ContentType(String),
    #[error("not readable XML: {0}")]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("security token refused: {0}")]
    Authentication(&'static str),
    #[error("the Body must hold exactly one element, it holds {0}")]
    BodyElements(usize),
    #[error("{{{ns}}}{local} is not an operation of CoreBankCardAuth")]
    UnknownOperation { ns: String, local: String },
    #[error("action {found:?} does not name {expected}")]
    Action {
        expected: &'static str,
        found: String,
    },
    #[error("{operation}: element {element} is unexpected, repeated or missing")]
    Elements {
        operation: &'static str,
        element: String,
    },
    #[error("{operation}: cb:{element} {value:?} is not {expected}")]
    BadValue {
        operation: &'static str,
        element: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Reads and authenticates a request. `content_type` is the HTTP header
/// (its `action` parameter must name the Body's operation, the WSDL's
/// `soapActionRequired`); `now` judges the token's Created.
///
/// # Errors
///
/// [`RequestError`].
pub fn parse_request(
    body: &[u8],
    content_type: &str,
    credentials: &Credentials,
    nonces: &mut Nonces,
    now: Timestamp,
) -> Result<Call, RequestError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge(body.len()));
    }
    if media_version(content_type) != Some(Version::V12) {
        return Err(RequestError::ContentType(
            content_type.chars().take(64).collect(),
        ));
    }
    let text = xml::decode(body)?;
    let doc = xml::parse(&text)?;
    let at = super::soap::body(&doc, Version::V12)?;
    authenticate(&doc, credentials, nonces, now)?;
    let count = xml::elements(at).count();
    let Some(call) = xml::elements(at).next().filter(|_| count == 1) else {
        return Err(RequestError::BodyElements(count));
    };
    let (ns, local) = xml::name(call);
    let (operation, name, allowed) = OPERATIONS
        .into_iter()
        .find(|(_, name, _)| ns == NAMESPACE && *name == local)
        .ok_or_else(|| RequestError::UnknownOperation {
            ns: ns.to_owned(),
            local: local.to_owned(),
        })?;
    let action = request_action(Version::V12, Some(content_type), None).unwrap_or_default();
    if action != format!("{NAMESPACE}/{name}") {
        let found = action.chars().take(128).collect();
        return Err(RequestError::Action {
            expected: name,
            found,
        });
    }
    let fields = Fields::read(call, name, allowed)?;
    Ok(Call {
        request: fields.request(operation)?,
    })
}

/// Checks the `wsse:Security` header's UsernameToken.
fn authenticate(
    doc: &Document<'_>,
    credentials: &Credentials,
    nonces: &mut Nonces,
    now: Timestamp,
) -> Result<(), RequestError> {
    let refuse = |why| Err(RequestError::Authentication(why));
    let header = xml::child(doc.root_element(), Version::V12.namespace(), "Header");
    let token = header
        .and_then(|h| xml::child(h, WSSE, "Security"))
        .and_then(|s| xml::child(s, WSSE, "UsernameToken"));
    let Some(token) = token else {
        return refuse("no wsse:Security UsernameToken");
    };
    let text = |ns, local| xml::child(token, ns, local).map(xml::text);
    if text(WSSE, "Username").as_deref() != Some(credentials.username.as_str()) {
        return refuse("unknown user");
    }
    let password = xml::child(token, WSSE, "Password");
    if password.and_then(|p| p.attribute("Type")) != Some(PASSWORD_DIGEST) {
        return refuse("password is not a PasswordDigest");
    }
    let (Some(nonce), Some(created)) = (text(WSSE, "Nonce"), text(WSU, "Created")) else {
        return refuse("PasswordDigest without Nonce or Created");
    };
    let Ok(nonce_bytes) = BASE64.decode(&*nonce) else {
        return refuse("Nonce is not Base64");
    };
    match created.parse::<Timestamp>() {
        Ok(at) if now.duration_since(at).abs() <= FRESHNESS => {}
        _ => return refuse("Created is not a time within 5 minutes of now"),
    }
    let expected = password_digest(&nonce_bytes, &created, &credentials.password);
    let sent = password.map(xml::text).unwrap_or_default();
    if !super::same_secret(expected.as_bytes(), sent.as_bytes()) {
        return refuse("wrong PasswordDigest");
    }
    if !nonces.first_use(&nonce, now) {
        return refuse("Nonce already used");
    }
    Ok(())
}

/// A request element's children by name, in the WSDL's order, their text.
struct Fields<'d> {
    operation: &'static str,
    found: Vec<(&'static str, Cow<'d, str>)>,
}

impl<'d> Fields<'d> {
    /// The children, which must follow `allowed` in order (a `?` marks an
    /// optional one), each once.
    fn read(
        call: Node<'d, '_>,
        operation: &'static str,
        allowed: &[&'static str],
    ) -> Result<Self, RequestError> {
        let wrong = |element: String| RequestError::Elements { operation, element };
        let mut found = Vec::new();
        let mut expected = allowed.iter().peekable();
        for child in xml::elements(call) {
            let (ns, local) = xml::name(child);
            loop {
                let Some(next) = expected.next() else {
                    return Err(wrong(format!("{{{ns}}}{local}")));
                };
                let (name, optional) = match next.strip_suffix('?') {
                    Some(name) => (name, true),
                    None => (*next, false),
                };
                if ns == NAMESPACE && name == local {
                    found.push((name, xml::text(child)));
                    break;
                }
                if !optional {
                    return Err(wrong(format!("cb:{name}")));
                }
            }
        }
        if let Some(missing) = expected.find(|n| !n.ends_with('?')) {
            return Err(wrong(format!("cb:{missing}")));
        }
        Ok(Fields { operation, found })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.found
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| &**text)
    }

    /// A field the element list made required (empty text if absent).
    fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    fn bad(&self, element: &'static str, expected: &'static str) -> RequestError {
        RequestError::BadValue {
            operation: self.operation,
            element,
            value: self.text(element).chars().take(64).collect(),
            expected,
        }
    }

    fn txn_ref(&self, name: &'static str) -> Result<String, RequestError> {
        let t = self.text(name);
        let ok = (1..=20).contains(&t.chars().count()) && !t.chars().any(char::is_control);
        ok.then(|| t.to_owned())
            .ok_or_else(|| self.bad(name, "a TxnRef of 1 to 20 characters"))
    }

    fn request(&self, operation: Operation) -> Result<Request, RequestError> {
        let transaction_id = self.txn_ref("TxnRef")?;
        let account = self.text("AcctNo");
        if !(1..=34).contains(&account.chars().count()) {
            return Err(self.bad("AcctNo", "an account number of 1 to 34 characters"));
        }
        let ccy = self.text("Ccy");
        let currency = Some(ccy)
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
            .and_then(|c| Currency::parse(c).ok())
            .ok_or_else(|| self.bad("Ccy", "an ISO 4217 alphabetic code"))?;
        let amount = match self.get("Amt") {
            None => 0,
            Some(text) => Money::parse_decimal(text, currency)
                .ok()
                .and_then(|m| i64::try_from(m.minor).ok())
                .ok_or_else(|| self.bad("Amt", "a decimal amount with the currency's decimals"))?,
        };
        let kind = match self.get("TxnType") {
            Some(t) => KINDS
                .iter()
                .find(|(k, _)| *k == t)
                .map(|(_, k)| *k)
                .ok_or_else(|| self.bad("TxnType", "a TxnTypeType"))?,
            None if operation == Operation::BalanceInquiry => Kind::BalanceInquiry,
            // A reversal undoes its original; it names no type.
            None => Kind::Purchase,
        };
        if let Some(channel) = self.get("Channel")
            && !["ATM_NETWORK", "CARD_PRESENT", "CARD_NOT_PRESENT"].contains(&channel)
        {
            return Err(self.bad("Channel", "a ChannelType"));
        }
        if let Some(reply_by) = self.get("ReplyBy")
            && reply_by.parse::<Timestamp>().is_err()
        {
            return Err(self.bad("ReplyBy", "an xs:dateTime with its offset"));
        }
        let original_transaction_id = match self.get("OrigTxnRef") {
            Some(_) => Some(self.txn_ref("OrigTxnRef")?),
            None => None,
        };
        let decision = match operation {
            Operation::Advice => {
                let code = self.text("ActionCode");
                let ok = code.len() == 2
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
                if !ok {
                    return Err(self.bad("ActionCode", "an ISO 8583 response code"));
                }
                if !["STIP", "NETWORK", "HUB"].contains(&self.text("DecidedBy")) {
                    return Err(self.bad("DecidedBy", "a DecidedByType"));
                }
                Some(code.to_owned())
            }
            _ => None,
        };
        Ok(Request {
            operation,
            transaction_id,
            account: account.to_owned(),
            amount,
            currency: currency.numeric,
            kind,
            original_transaction_id,
            decision,
        })
    }
}

/// An answer to send: HTTP status and the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub xml: String,
}

/// The answer to `request` from the ledger's answer (`repeat`: the ledger
/// had seen its TxnRef, answered `DUPLICATE`). A reversal past what
/// remains is CoreBank refusing the amount: fault `CB-E1004`.
pub fn answer(request: &Request, answer: &Answer, repeat: bool) -> Reply {
    let op = request.operation;
    let (status, text) = match answer.code.as_str() {
        _ if repeat => ("DUPLICATE", "TxnRef already processed"),
        codes::APPROVED if op == Operation::Advice => ("ACCEPTED", "Advice posted"),
        codes::APPROVED if op == Operation::Load => ("APPROVED", "Credited"),
        codes::APPROVED if op == Operation::BalanceInquiry => ("APPROVED", ""),
        codes::APPROVED => ("APPROVED", "Funds reserved"),
        codes::REVERSED => ("CANCELLED", "Reservation released"),
        codes::INSUFFICIENT_FUNDS => ("INSUFFICIENT_FUNDS", "Available balance too low"),
        codes::UNKNOWN_ACCOUNT => ("UNKNOWN_ACCOUNT", "Account not on file"),
        codes::ORIGINAL_NOT_FOUND => ("NO_ORIGINAL", "Original TxnRef not found"),
        codes::DUPLICATE => ("DUPLICATE", "TxnRef already processed"),
        codes::INVALID_TRANSACTION => ("NOT_PERMITTED", answer.message.as_deref().unwrap_or("")),
        codes::INVALID_AMOUNT => {
            let detail = answer.message.as_deref().unwrap_or("Amt not acceptable");
            return fault(
                FaultCode::Sender,
                INVALID_AMOUNT,
                "Amount not acceptable",
                detail,
                Some(&request.transaction_id),
            );
        }
        _ => ("SYSTEM_ERROR", "Unexpected ledger result"),
    };
    response(request, status, text, (!repeat).then_some(answer))
}

/// `SYSTEM_ERROR`: CoreBank could not decide, and says so with a status.
pub fn system_error(request: &Request, text: &str) -> Reply {
    response(request, "SYSTEM_ERROR", text, None)
}

/// The `<Operation>Response` envelope; approval code and balances from
/// `answer` when given.
fn response(request: &Request, status: &str, text: &str, answer: Option<&Answer>) -> Reply {
    let element = element_name(request.operation);
    let xml = soap_writer::message(Version::V12, |body| {
        body.push_str(&format!(
            r#"<cb:{element}Response xmlns:cb="{NAMESPACE}"><cb:TxnRef>"#
        ));
        escape(&request.transaction_id, body);
        body.push_str("</cb:TxnRef><cb:Status>");
        body.push_str(status);
        body.push_str("</cb:Status>");
        if !text.is_empty() {
            body.push_str("<cb:StatusText>");
            escape(text, body);
            body.push_str("</cb:StatusText>");
        }
        if let Some(answer) = answer {
            if let Some(id) = answer.auth_id.as_deref().filter(|_| status == "APPROVED") {
                body.push_str("<cb:ApprovalCode>");
                escape(id, body);
                body.push_str("</cb:ApprovalCode>");
            }
            let currency = answer.currency.and_then(|c| Currency::from_numeric(c).ok());
            // As the samples: no balances for an original not found.
            let balances = answer.balances.filter(|_| status != "NO_ORIGINAL");
            if let (Some((available, ledger)), Some(currency)) = (balances, currency) {
                body.push_str(&format!(
                "<cb:Balances><cb:Available>{}</cb:Available><cb:Ledger>{}</cb:Ledger><cb:Ccy>{}</cb:Ccy></cb:Balances>",
                decimal(available, currency),
                decimal(ledger, currency),
                currency.code
            ));
            }
        }
        body.push_str(&format!("</cb:{element}Response>"));
    });
    Reply { status: 200, xml }
}

/// The request element's name of `operation`.
fn element_name(operation: Operation) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(op, _, _)| *op == operation)
        .map_or("", |(_, name, _)| name)
}

/// A signed decimal in the currency's units (`-12.40`).
fn decimal(minor: i64, currency: Currency) -> String {
    let text = Money::new(minor.unsigned_abs(), currency).to_decimal();
    if minor < 0 { format!("-{text}") } else { text }
}

/// A fault with a `cb:CoreBankFault` detail: HTTP 400 for `Sender`, else 500.
pub fn fault(
    code: FaultCode,
    fault_code: &str,
    reason: &str,
    text: &str,
    txn_ref: Option<&str>,
) -> Reply {
    let mut detail = format!(r#"<cb:CoreBankFault xmlns:cb="{NAMESPACE}"><cb:FaultCode>"#);
    detail.push_str(fault_code);
    detail.push_str("</cb:FaultCode><cb:FaultText>");
    escape(&text.chars().take(512).collect::<String>(), &mut detail);
    detail.push_str("</cb:FaultText>");
    if let Some(r) = txn_ref {
        detail.push_str("<cb:TxnRef>");
        escape(r, &mut detail);
        detail.push_str("</cb:TxnRef>");
    }
    detail.push_str("</cb:CoreBankFault>");
    let xml = soap12_fault(&Fault::new(code, reason, Some(&detail)));
    let status = if code == FaultCode::Sender { 400 } else { 500 };
    Reply { status, xml }
}

/// The WS-Security layer's fault (HTTP 400): `Sender` with the subcode
/// `wsse:FailedAuthentication`, no CoreBank detail, nothing said of why.
pub fn authentication_fault() -> Reply {
    let subcode = Subcode {
        prefix: "wsse",
        namespace: WSSE,
        local: "FailedAuthentication",
    };
    let reason = "The security token could not be authenticated or authorized";
    let fault = Fault {
        subcode: Some(subcode),
        ..Fault::new(FaultCode::Sender, reason, None)
    };
    let xml = soap12_fault(&fault);
    Reply { status: 400, xml }
}

fn soap12_fault(fault: &Fault<'_>) -> String {
    soap_writer::message(Version::V12, |out| {
        soap_writer::write_fault(Version::V12, fault, out);
    })
}

#[cfg(test)]
#[path = "corebank_tests.rs"]
mod tests;
