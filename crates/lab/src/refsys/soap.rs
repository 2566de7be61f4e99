//! The reference account system's SOAP messages: reading a request of
//! `wsdl/account-system.wsdl` (Authorize, Load, Reverse, Advice,
//! BalanceInquiry) and writing its answer or a fault, in SOAP 1.1 or 1.2.
//!
//! Pure: no I/O, no ledger. The request is untrusted and read like
//! `api::hub_soap` reads the hub's: size first, then the reference
//! system's own reader ([`crate::xml`], independent of the hub's), the
//! envelope and Body by [`body`], each value held to the XSD's
//! constraints. Elements the ledger does not use (card, channel, terminal,
//! times) are accepted as sent.

use std::borrow::Cow;

use roxmltree::{Document, Node};

use super::xml::{self, XmlError};
use cardhub_core::account::Kind;
use cardhub_core::account::Operation;
use cardhub_core::soap_writer::{self, Fault, FaultCode, Version, escape};

/// The interface's XML namespace (`account-system.xsd`'s targetNamespace).
pub const NAMESPACE: &str = "urn:cardhub:account-system:v1";

/// The largest request read: requests are a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 64 << 10;

/// `as:TransactionId` and `as:Identifier`: at most 64 characters.
const ID_MAX: usize = 64;
/// `as:Text`: at most 512 characters.
const TEXT_MAX: usize = 512;

/// A request read from the Body, the values the ledger needs checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub operation: Operation,
    /// Exact string, 1 to 64 printable ASCII characters.
    pub transaction_id: String,
    /// Whitespace-collapsed, 1 to 64 characters.
    pub account: String,
    /// Minor units, at most `i64::MAX` (`xs:long`).
    pub amount: i64,
    /// ISO 4217 numeric.
    pub currency: u16,
    pub kind: Kind,
    /// Reverse (required) and Advice (optional).
    pub original_transaction_id: Option<String>,
    /// Advice only: the ISO 8583 DE 39 decision, two characters.
    pub decision: Option<String>,
}

/// The outcome of an operation as the answer element says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `APPROVED`, `DECLINED`, `UNKNOWN_ORIGINAL` or `ACKNOWLEDGED`.
    pub result: String,
    /// ISO 8583:1993 action code (see `adapters/canonical.toml`).
    pub code: String,
    /// One to six letters or digits, approvals only.
    pub auth_id: Option<String>,
    /// Available and ledger balance after, both or neither.
    pub balances: Option<(i64, i64)>,
    /// ISO 4217 numeric currency of the account the balances are of (for
    /// the vendor front ends; the canonical answer does not carry it).
    pub currency: Option<u16>,
    /// For operators; truncated to 512 characters when written.
    pub message: Option<String>,
}

/// Why a request cannot be read: always the sender's fault (a SOAP
/// `Client` / `Sender` fault); sending it again unchanged cannot help.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request body is {size} bytes; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("Content-Type {0:?} is not SOAP: expected text/xml or application/soap+xml")]
    ContentType(String),
    #[error("Content-Type says {declared} but the envelope is {envelope}")]
    VersionMismatch {
        declared: Version,
        envelope: Version,
    },
    #[error("request is not readable XML: {0}")]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("the Body must hold exactly one element, it holds {0}")]
    BodyElements(usize),
    #[error("{{{ns}}}{local} is not an operation of account-system.wsdl")]
    UnknownOperation { ns: String, local: String },
    #[error("action {found:?} is not the binding's {expected:?}")]
    Action {
        expected: String,
        found: Option<String>,
    },
    #[error("{operation}: element as:{element} is missing")]
    Missing {
        operation: &'static str,
        element: &'static str,
    },
    #[error("{operation}: element {element} is unexpected or repeated")]
    Unexpected {
        operation: &'static str,
        element: String,
    },
    #[error("{operation}: as:{element} {value:?} is not {expected}")]
    BadValue {
        operation: &'static str,
        element: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A request that is not the SOAP envelope expected (shared by the
/// SOAP front ends: this one and [`corebank`](super::corebank)).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The root element is not a SOAP Envelope of either version.
    #[error("request is not a SOAP envelope: root element is {{{ns}}}{local}")]
    NotEnvelope { ns: String, local: String },
    /// An Envelope of the other SOAP version.
    #[error("request is a {found} envelope; the service speaks {expected}")]
    WrongVersion { expected: Version, found: Version },
    /// The Envelope has no Body.
    #[error("{version} envelope has no Body")]
    NoBody { version: Version },
    /// The Body has no element.
    #[error("{version} Body is empty")]
    EmptyBody { version: Version },
}

/// The request element, answer element and name of `operation`.
pub fn element_names(operation: Operation) -> (&'static str, &'static str) {
    match operation {
        Operation::Authorize => ("Authorize", "AuthorizeResponse"),
        Operation::Load => ("Load", "LoadResponse"),
        Operation::Reverse => ("Reverse", "ReverseResponse"),
        Operation::Advice => ("Advice", "AdviceResponse"),
        Operation::BalanceInquiry => ("BalanceInquiry", "BalanceInquiryResponse"),
    }
}

/// The SOAP version a Content-Type's media type names, if any.
pub fn media_version(content_type: &str) -> Option<Version> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/xml") {
        Some(Version::V11)
    } else if media.eq_ignore_ascii_case("application/soap+xml") {
        Some(Version::V12)
    } else {
        None
    }
}

/// The version to write a fault in when the request could not be read: the
/// Content-Type's, SOAP 1.1 when it names neither.
pub fn fault_version(content_type: Option<&str>) -> Version {
    content_type.and_then(media_version).unwrap_or(Version::V11)
}

/// The action account-system.wsdl's bindings give `operation`.
pub fn action_of(operation: Operation) -> String {
    format!("{NAMESPACE}#{}", element_names(operation).0)
}

/// The action a request carries: SOAP 1.1's `SOAPAction` header, SOAP 1.2's
/// Content-Type `action` parameter, unquoted; `None` when it has none.
pub fn request_action(
    version: Version,
    content_type: Option<&str>,
    soap_action: Option<&str>,
) -> Option<String> {
    match version {
        Version::V11 => soap_action.map(unquoted),
        Version::V12 => content_type.and_then(|ct| {
            ct.split(';').skip(1).find_map(|param| {
                let (key, value) = param.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("action")
                    .then(|| unquoted(value))
            })
        }),
    }
}

/// An HTTP header value or parameter without its quotes and escapes.
fn unquoted(value: &str) -> String {
    let value = value.trim();
    let inner = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
    inner
        .unwrap_or(value)
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

/// Reads a request: the SOAP version from the envelope's namespace (which
/// must agree with `content_type` when one is given), the Body's single
/// element, then its values. The action must be the WSDL binding's for the
/// Body's operation, as a generated server insists (WS-I BP R2744): SOAP
/// 1.1 always carries one (`soap_action`, the header); SOAP 1.2 may leave
/// it out (`soapActionRequired="false"`).
///
/// # Errors
///
/// [`RequestError`]: too large, not SOAP, unreadable, an unknown operation,
/// a wrong action, a missing, repeated or unknown element, a value against
/// the XSD.
pub fn parse_request(
    body: &[u8],
    content_type: Option<&str>,
    soap_action: Option<&str>,
) -> Result<(Version, Request), RequestError> {
    if body.len() > MAX_REQUEST_BYTES {
        let (size, max) = (body.len(), MAX_REQUEST_BYTES);
        return Err(RequestError::TooLarge { size, max });
    }
    let declared = match content_type {
        Some(ct) => Some(media_version(ct).ok_or_else(|| RequestError::ContentType(shown(ct)))?),
        None => None,
    };
    let text = xml::decode(body)?;
    let doc = xml::parse(&text)?;
    let root_ns = xml::name(doc.root_element()).0;
    let version = Version::from_namespace(root_ns).unwrap_or(Version::V11);
    let at = self::body(&doc, version)?;
    if let Some(declared) = declared
        && declared != version
    {
        return Err(RequestError::VersionMismatch {
            declared,
            envelope: version,
        });
    }
    let count = xml::elements(at).count();
    let Some(call) = xml::elements(at).next().filter(|_| count == 1) else {
        return Err(RequestError::BodyElements(count));
    };
    let (ns, local) = xml::name(call);
    let operation = Operation::ALL
        .into_iter()
        .find(|&op| ns == NAMESPACE && element_names(op).0 == local)
        .ok_or_else(|| RequestError::UnknownOperation {
            ns: ns.to_owned(),
            local: local.to_owned(),
        })?;
    let expected = action_of(operation);
    let found = request_action(version, content_type, soap_action);
    match (version, found) {
        (_, Some(found)) if found == expected => {}
        (Version::V12, None) => {}
        (_, found) => {
            let found = found.map(|f| shown(&f));
            return Err(RequestError::Action { expected, found });
        }
    }
    Ok((version, read_request(call, operation)?))
}

/// The Body of a request that must be a `version` envelope, holding at
/// least one element. Written apart from the hub's `adapter::soap::body`
/// on purpose (see [`crate::xml`]).
///
/// # Errors
///
/// [`EnvelopeError`]: the root is not an Envelope, is the other version's,
/// has no Body, or the Body has no element.
pub fn body<'a, 'i>(
    doc: &'a Document<'i>,
    version: Version,
) -> Result<Node<'a, 'i>, EnvelopeError> {
    let root = doc.root_element();
    let (ns, local) = xml::name(root);
    match Version::from_namespace(ns) {
        Some(found) if local == "Envelope" && found != version => {
            return Err(EnvelopeError::WrongVersion {
                expected: version,
                found,
            });
        }
        Some(_) if local == "Envelope" => {}
        _ => {
            return Err(EnvelopeError::NotEnvelope {
                ns: ns.to_owned(),
                local: local.to_owned(),
            });
        }
    }
    let body =
        xml::child(root, version.namespace(), "Body").ok_or(EnvelopeError::NoBody { version })?;
    match xml::elements(body).next() {
        Some(_) => Ok(body),
        None => Err(EnvelopeError::EmptyBody { version }),
    }
}

/// The elements of `AccountRequestType` and its extensions.
const ELEMENTS: [&str; 17] = [
    "transactionId",
    "institution",
    "account",
    "card",
    "amount",
    "currency",
    "channel",
    "kind",
    "terminalId",
    "merchantId",
    "transmissionTime",
    "rrn",
    "deadline",
    "originalTransactionId",
    "decision",
    "decidedBy",
    "reason",
];

/// One request element's children by name (each at most once), their text.
struct Fields<'d> {
    operation: &'static str,
    found: [Option<Cow<'d, str>>; ELEMENTS.len()],
}

impl<'d> Fields<'d> {
    fn read(call: Node<'d, '_>, operation: &'static str) -> Result<Self, RequestError> {
        let mut found = [const { None }; ELEMENTS.len()];
        for child in xml::elements(call) {
            let (ns, local) = xml::name(child);
            let index = ELEMENTS.iter().position(|&n| n == local);
            let slot = index.and_then(|i| found.get_mut(i));
            match slot.filter(|s| s.is_none() && ns == NAMESPACE) {
                Some(slot) => *slot = Some(xml::text(child)),
                None => {
                    let element = shown(&format!("{{{ns}}}{local}"));
                    return Err(RequestError::Unexpected { operation, element });
                }
            }
        }
        Ok(Fields { operation, found })
    }

    fn optional(&self, name: &'static str) -> Option<&str> {
        let index = ELEMENTS.iter().position(|&n| n == name)?;
        self.found.get(index)?.as_deref()
    }

    fn required(&self, name: &'static str) -> Result<&str, RequestError> {
        self.optional(name).ok_or(RequestError::Missing {
            operation: self.operation,
            element: name,
        })
    }

    fn bad(&self, element: &'static str, value: &str, expected: &'static str) -> RequestError {
        RequestError::BadValue {
            operation: self.operation,
            element,
            value: shown(value),
            expected,
        }
    }

    /// `as:TransactionId`: 1 to 64 characters from `!` to `~`.
    fn transaction_id(&self, name: &'static str) -> Result<String, RequestError> {
        let text = self.required(name)?;
        let ok =
            (1..=ID_MAX).contains(&text.len()) && text.bytes().all(|b| (b'!'..=b'~').contains(&b));
        ok.then(|| text.to_owned())
            .ok_or_else(|| self.bad(name, text, "1 to 64 printable ASCII characters"))
    }
}

fn read_request(call: Node<'_, '_>, operation: Operation) -> Result<Request, RequestError> {
    let name = element_names(operation).0;
    let f = Fields::read(call, name)?;
    for required in [
        "institution",
        "card",
        "channel",
        "terminalId",
        "transmissionTime",
        "rrn",
        "deadline",
    ] {
        f.required(required)?;
    }
    let transaction_id = f.transaction_id("transactionId")?;
    let text = f.required("account")?;
    let account = text.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    if !(1..=ID_MAX).contains(&account.chars().count()) {
        return Err(f.bad("account", text, "an identifier of 1 to 64 characters"));
    }
    let text = f.required("amount")?;
    let amount = text
        .parse::<i64>()
        .ok()
        .filter(|a| *a >= 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            f.bad(
                "amount",
                text,
                "minor units, digits only (xs:long, not negative)",
            )
        })?;
    let text = f.required("currency")?;
    let currency = Some(text)
        .filter(|t| t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u16>().ok())
        .ok_or_else(|| f.bad("currency", text, "an ISO 4217 numeric code of three digits"))?;
    let text = f.required("kind")?;
    let kind = parse_kind(text).ok_or_else(|| {
        f.bad(
            "kind",
            text,
            "PURCHASE, CASH, BALANCE_INQUIRY, LOAD or REFUND",
        )
    })?;
    let original_transaction_id = match operation {
        Operation::Reverse => Some(f.transaction_id("originalTransactionId")?),
        Operation::Advice if f.optional("originalTransactionId").is_some() => {
            Some(f.transaction_id("originalTransactionId")?)
        }
        _ => refuse(&f, "originalTransactionId")?,
    };
    let decision = match operation {
        Operation::Advice => {
            f.required("decidedBy")?;
            f.required("reason")?;
            let text = f.required("decision")?;
            let ok = text.len() == 2
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
            if !ok {
                return Err(f.bad(
                    "decision",
                    text,
                    "an ISO 8583 response code of two characters",
                ));
            }
            Some(text.to_owned())
        }
        _ => {
            for extra in ["decidedBy", "reason"] {
                refuse::<()>(&f, extra)?;
            }
            refuse(&f, "decision")?
        }
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

/// An element the operation does not have is an error; `Ok(None)` when absent.
fn refuse<T>(f: &Fields<'_>, name: &'static str) -> Result<Option<T>, RequestError> {
    match f.optional(name) {
        Some(_) => Err(RequestError::Unexpected {
            operation: f.operation,
            element: format!("as:{name}"),
        }),
        None => Ok(None),
    }
}

fn parse_kind(text: &str) -> Option<Kind> {
    Some(match text {
        "PURCHASE" => Kind::Purchase,
        "CASH" => Kind::Cash,
        "BALANCE_INQUIRY" => Kind::BalanceInquiry,
        "LOAD" => Kind::Load,
        "REFUND" => Kind::Refund,
        _ => return None,
    })
}

/// The envelope holding `operation`'s answer element.
pub fn answer(version: Version, operation: Operation, answer: &Answer) -> String {
    let element = element_names(operation).1;
    soap_writer::message(version, |body| {
        body.push_str(&format!(
            r#"<as:{element} xmlns:as="{NAMESPACE}"><as:result>"#
        ));
        body.push_str(&answer.result);
        body.push_str("</as:result><as:resultCode>");
        escape(&answer.code, body);
        body.push_str("</as:resultCode>");
        if let Some(id) = &answer.auth_id {
            body.push_str("<as:authorizationId>");
            escape(id, body);
            body.push_str("</as:authorizationId>");
        }
        if let Some((available, ledger)) = answer.balances {
            body.push_str(&format!(
                "<as:availableBalance>{available}</as:availableBalance><as:ledgerBalance>{ledger}</as:ledgerBalance>"
            ));
        }
        if let Some(message) = &answer.message {
            body.push_str("<as:message>");
            escape(&truncated(message, TEXT_MAX), body);
            body.push_str("</as:message>");
        }
        body.push_str(&format!("</as:{element}>"));
    })
}

/// The envelope holding a Fault whose detail is an `as:AccountSystemFault`
/// with the given code and message.
pub fn fault(version: Version, soap_code: FaultCode, code: &str, message: &str) -> String {
    let mut detail = format!(r#"<as:AccountSystemFault xmlns:as="{NAMESPACE}"><as:code>"#);
    escape(&truncated(code, 32), &mut detail);
    detail.push_str("</as:code><as:message>");
    escape(&truncated(message, TEXT_MAX), &mut detail);
    detail.push_str("</as:message></as:AccountSystemFault>");
    let fault = Fault::new(soap_code, message, Some(&detail));
    soap_writer::message(version, |out| {
        soap_writer::write_fault(version, &fault, out)
    })
}

fn truncated(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A value as shown in an error: at most 64 characters, controls escaped.
fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(ID_MAX)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > ID_MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fixtures/soap/canonical")
            .join(name);
        std::fs::read(path).unwrap()
    }

    /// The SOAPAction header a SOAP 1.1 client sends for `operation`.
    fn header(operation: Operation) -> Option<String> {
        Some(format!("\"{}\"", action_of(operation)))
    }

    #[test]
    fn the_canonical_samples_are_read() {
        let (v, r) = parse_request(
            &sample("authorize-request.soap11.xml"),
            Some("text/xml"),
            header(Operation::Authorize).as_deref(),
        )
        .unwrap();
        assert_eq!(v, Version::V11);
        assert_eq!(r.operation, Operation::Authorize);
        assert_eq!(r.transaction_id, "01KANDF3XR3T5V7W9X1Z2A3B4C");
        assert_eq!(
            (r.account.as_str(), r.amount, r.currency),
            ("A-1001", 12550, 840)
        );
        assert_eq!(r.kind, Kind::Purchase);

        let ct = "application/soap+xml; charset=utf-8";
        let (v, _) =
            parse_request(&sample("authorize-request.soap12.xml"), Some(ct), None).unwrap();
        assert_eq!(v, Version::V12);

        let reverse = header(Operation::Reverse);
        let (_, r) = parse_request(
            &sample("reverse-request.soap11.xml"),
            None,
            reverse.as_deref(),
        )
        .unwrap();
        assert_eq!(
            r.original_transaction_id.as_deref(),
            Some("01KANDF3XR3T5V7W9X1Z2A3B4C")
        );
        let advice = header(Operation::Advice);
        let (_, r) = parse_request(
            &sample("advice-request.soap11.xml"),
            None,
            advice.as_deref(),
        )
        .unwrap();
        assert_eq!((r.kind, r.decision.as_deref()), (Kind::Cash, Some("00")));
        for (name, op) in [
            ("load-request.soap11.xml", Operation::Load),
            (
                "balance-inquiry-request.soap11.xml",
                Operation::BalanceInquiry,
            ),
        ] {
            parse_request(&sample(name), None, header(op).as_deref()).unwrap();
        }
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let good = String::from_utf8(sample("authorize-request.soap11.xml")).unwrap();
        let cases = [
            (good.replace(">12550<", ">-5<"), "amount"),
            (good.replace(">840<", ">USD<"), "currency"),
            (good.replace(">PURCHASE<", ">GIFT<"), "kind"),
            (good.replace("<as:rrn>532609123456</as:rrn>", ""), "rrn"),
            (
                good.replace("as:Authorize>", "as:Steal>"),
                "not an operation",
            ),
            (
                good.replace(
                    "</as:deadline>",
                    "</as:deadline><as:deadline>x</as:deadline>",
                ),
                "repeated",
            ),
            (
                good.replace("<!DOCTYPE", "").replace(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                    "<!DOCTYPE x [<!ENTITY a \"b\">]>",
                ),
                "XML",
            ),
        ];
        let action = header(Operation::Authorize);
        let action = action.as_deref();
        for (xml, want) in cases {
            let err = parse_request(xml.as_bytes(), None, action)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = parse_request(good.as_bytes(), Some("application/soap+xml"), action).unwrap_err();
        assert!(matches!(err, RequestError::VersionMismatch { .. }), "{err}");
        let err = parse_request(good.as_bytes(), Some("application/json"), action).unwrap_err();
        assert!(matches!(err, RequestError::ContentType(_)), "{err}");
    }

    /// As a server generated from the WSDL: the binding's action or a
    /// Client fault (SOAP 1.1 always carries one; SOAP 1.2 may omit it).
    #[test]
    fn the_action_must_be_the_bindings() {
        let v11 = sample("authorize-request.soap11.xml");
        let v12 = sample("authorize-request.soap12.xml");
        let ct12 =
            |action: &str| format!("application/soap+xml; charset=utf-8; action=\"{action}\"");
        let slash = "urn:cardhub:account-system:v1/Authorize";
        let wrong = [
            parse_request(&v11, Some("text/xml"), Some(&format!("\"{slash}\""))),
            parse_request(&v11, Some("text/xml"), None),
            parse_request(&v11, Some("text/xml"), header(Operation::Load).as_deref()),
            parse_request(&v12, Some(&ct12(slash)), None),
        ];
        for refused in wrong {
            let err = refused.unwrap_err();
            assert!(matches!(err, RequestError::Action { .. }), "{err}");
            assert!(err.to_string().contains("v1#Authorize"), "{err}");
        }
        let right = ct12(&action_of(Operation::Authorize));
        parse_request(&v12, Some(&right), None).unwrap();
        parse_request(&v11, None, Some("urn:cardhub:account-system:v1#Authorize")).unwrap();
    }

    /// What the hub's canonical adapter sends, read by this reader (which
    /// shares no code with the hub's): values with markup in them come out
    /// as the hub meant them, in both SOAP versions.
    #[test]
    fn requests_written_by_the_hubs_adapter_read_back() {
        use cardhub_core::account::Channel;
        use cardhub_core::account::{AccountRequest, AdviceDecision, Decider};
        use cardhub_core::adapter::Adapter;
        use cardhub_core::iso8583::fields::ResponseCode;
        use cardhub_core::money::{Currency, Money};

        let dir =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("adapters");
        let file = std::fs::read_to_string(dir.join("canonical.toml")).unwrap();
        let request = AccountRequest {
            transaction_id: "01K<&>'\"X".into(),
            institution: "bank-a".into(),
            account: "A-1001".into(),
            card: "476173******0010".into(),
            kind: Kind::Cash,
            financial: false,
            channel: Channel::Atm,
            amount: Money::new(12550, Currency::from_numeric(978).unwrap()),
            terminal: "ATM<01>&".into(),
            merchant: Some("CAFÉ & <Co> \"x\"".into()),
            merchant_name: None,
            transmission_time: "1122091405".into(),
            rrn: "532609123456".into(),
            original_transaction_id: Some("orig&<1>".into()),
            decision: Some(AdviceDecision {
                code: ResponseCode::APPROVED,
                decided_by: Decider::StandIn,
                reason: "stand-in: <late> & slow".into(),
            }),
            clear_pan: None,
            listen_until: None,
            decision_row: None,
            deadline: tokio::time::Instant::now(),
        };
        for (transport, version) in [("soap11", Version::V11), ("soap12", Version::V12)] {
            let text = file.replace(
                "transport = \"soap11\"",
                &format!("transport = \"{transport}\""),
            );
            let adapter = Adapter::from_toml(&text, &dir).unwrap();
            for operation in Operation::ALL {
                let sent = adapter.encode_request(operation, &request).unwrap();
                let action = format!("\"{}\"", action_of(operation));
                let (read_version, read) = parse_request(&sent, None, Some(&action))
                    .unwrap_or_else(|e| panic!("{transport} {operation:?}: {e}"));
                assert_eq!(read_version, version);
                assert_eq!(read.operation, operation);
                assert_eq!(read.transaction_id, request.transaction_id);
                assert_eq!(read.account, "A-1001");
                assert_eq!(read.currency, 978);
                if operation != Operation::BalanceInquiry {
                    assert_eq!(
                        (read.amount, read.kind),
                        (12550, Kind::Cash),
                        "{operation:?}"
                    );
                }
                let original = matches!(operation, Operation::Reverse | Operation::Advice);
                let expected = original.then_some("orig&<1>");
                assert_eq!(read.original_transaction_id.as_deref(), expected);
                let decision = (operation == Operation::Advice).then_some("00");
                assert_eq!(read.decision.as_deref(), decision);
            }
        }
    }

    #[test]
    fn answers_and_faults_read_back() {
        let a = Answer {
            result: "APPROVED".into(),
            code: "000".into(),
            auth_id: Some("000042".into()),
            balances: Some((-5, 10)),
            currency: Some(840),
            message: Some("a <b> & c".into()),
        };
        for version in [Version::V11, Version::V12] {
            let written = answer(version, Operation::Load, &a);
            let doc = roxmltree::Document::parse(&written).unwrap();
            let at = body(&doc, version).unwrap();
            let el = xml::child(at, NAMESPACE, "LoadResponse").unwrap();
            let text = |n| xml::text(xml::child(el, NAMESPACE, n).unwrap()).into_owned();
            assert_eq!(text("availableBalance"), "-5");
            assert_eq!(text("message"), "a <b> & c");

            let written = fault(version, FaultCode::Receiver, "907", "closed");
            let doc = roxmltree::Document::parse(&written).unwrap();
            let ns = version.namespace();
            let f = xml::child(body(&doc, version).unwrap(), ns, "Fault").unwrap();
            let reason = match version {
                Version::V11 => xml::child(f, "", "faultstring"),
                Version::V12 => xml::child(f, ns, "Reason").and_then(|r| xml::child(r, ns, "Text")),
            };
            assert_eq!(reason.map(xml::text).as_deref(), Some("closed"));
            let detail = match version {
                Version::V11 => xml::child(f, "", "detail"),
                Version::V12 => xml::child(f, ns, "Detail"),
            };
            let vendor = detail.and_then(|d| xml::child(d, NAMESPACE, "AccountSystemFault"));
            let code = vendor.and_then(|v| xml::child(v, NAMESPACE, "code"));
            assert_eq!(code.map(xml::text).as_deref(), Some("907"));
        }
    }
}
