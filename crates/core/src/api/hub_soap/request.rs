//! Reading a request: Content-Type and action, envelope, headers, the
//! Body's element, and each value against hub.xsd.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;

use super::{
    DEFAULT_MAX_REQUEST_BYTES, HubCall, HubSoapError, IDENTIFIER_MAX, NAMESPACE, STATUS_NOTIFY,
    SUBMIT_BALANCES, SignalledState, SoapVersion, TEXT_MAX, shown,
};
use crate::adapter::soap;
use crate::xml::{Document, Limits, NodeId};

/// SOAP 1.1 `actor` / 1.2 `role` values that address cardhub (absent also does).
const ROLES_FOR_US: [&str; 3] = [
    "http://schemas.xmlsoap.org/soap/actor/next",
    "http://www.w3.org/2003/05/soap-envelope/role/next",
    "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver",
];

/// Checks on one operation's child elements, in the XSD's order.
struct Sequence<'d, const N: usize> {
    doc: &'d Document,
    operation: &'static str,
    names: [&'static str; N],
    found: [Option<NodeId>; N],
}

impl<'d, const N: usize> Sequence<'d, N> {
    /// Assigns `parent`'s element children to `names`, refusing unknown,
    /// unqualified, repeated and out-of-order elements.
    fn read(
        doc: &'d Document,
        parent: NodeId,
        operation: &'static str,
        names: [&'static str; N],
    ) -> Result<Self, HubSoapError> {
        let mut seq = Sequence {
            doc,
            operation,
            names,
            found: [None; N],
        };
        let mut next = 0;
        for child in doc.children(parent) {
            let (ns, local) = doc.name(child);
            let index = names.iter().position(|&n| n == local);
            let index = match index {
                Some(i) if ns == NAMESPACE => i,
                Some(_) if ns.is_empty() => {
                    let local = local.to_owned();
                    return Err(HubSoapError::Unqualified { operation, local });
                }
                _ => {
                    return Err(HubSoapError::Unexpected {
                        operation,
                        ns: ns.to_owned(),
                        local: local.to_owned(),
                        expected: seq.expected(),
                    });
                }
            };
            if index < next {
                let element = names[index];
                let expected = seq.expected();
                return Err(HubSoapError::Order {
                    operation,
                    element,
                    expected,
                });
            }
            seq.found[index] = Some(child);
            next = index + 1;
        }
        Ok(seq)
    }

    fn expected(&self) -> String {
        format!("hub:{}, in this order", self.names.join(", hub:"))
    }

    /// The trimmed text of element `index`, `None` when absent.
    fn optional(&self, index: usize) -> Result<Option<&'d str>, HubSoapError> {
        let Some(node) = self.found[index] else {
            return Ok(None);
        };
        if let Some(child) = self.doc.children(node).next() {
            let value = format!("<{}>", self.doc.name(child).1);
            return Err(self.bad(index, &value, "simple content (it has a child element)"));
        }
        Ok(Some(self.doc.trimmed_text(node)))
    }

    fn required(&self, index: usize) -> Result<&'d str, HubSoapError> {
        self.optional(index)?.ok_or(HubSoapError::Missing {
            operation: self.operation,
            element: self.names[index],
        })
    }

    /// `hub:Identifier`: whitespace collapsed as for xs:token, 1 to 64 characters.
    fn identifier(&self, index: usize) -> Result<String, HubSoapError> {
        let text = self.required(index)?;
        let value = text.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
        match value.chars().count() {
            1..=IDENTIFIER_MAX => Ok(value),
            _ => Err(self.bad(index, text, "an identifier of 1 to 64 characters")),
        }
    }

    /// `hub:Text`, trimmed: at most 512 characters.
    fn text(&self, index: usize) -> Result<Option<String>, HubSoapError> {
        match self.optional(index)? {
            Some(text) if text.chars().count() > TEXT_MAX => {
                Err(self.bad(index, text, "a text of at most 512 characters"))
            }
            text => Ok(text.map(str::to_owned)),
        }
    }

    /// `hub:Instant`: an xs:dateTime with `Z` or `±hh:mm`.
    fn instant(&self, index: usize) -> Result<Timestamp, HubSoapError> {
        let text = self.required(index)?;
        let zoned = text.ends_with('Z') || has_offset_suffix(text);
        match text.parse::<Timestamp>() {
            Ok(t) if zoned && text.contains('T') => Ok(t),
            _ => Err(self.bad(
                index,
                text,
                "a date-time with a time zone (e.g. 2025-11-21T22:00:00Z or 2025-11-21T23:00:00+01:00)",
            )),
        }
    }

    fn bad(&self, index: usize, value: &str, expected: &'static str) -> HubSoapError {
        HubSoapError::BadValue {
            operation: self.operation,
            element: self.names[index],
            value: shown(value),
            expected,
        }
    }
}

/// Reads a hub request of at most [`DEFAULT_MAX_REQUEST_BYTES`]; see
/// [`parse_request_limited`].
///
/// # Errors
///
/// As [`parse_request_limited`].
pub fn parse_request(
    body: &[u8],
    content_type: Option<&str>,
    soap_action: Option<&str>,
) -> Result<(SoapVersion, HubCall), HubSoapError> {
    parse_request_limited(body, content_type, soap_action, DEFAULT_MAX_REQUEST_BYTES)
}

/// Reads a hub request: the SOAP version from the envelope's namespace
/// (which must agree with `content_type`, when given: `text/xml` for 1.1,
/// `application/soap+xml` for 1.2), then the Body's one element.
///
/// `soap_action` is the `SOAPAction` header; for SOAP 1.2 the Content-Type's
/// `action` parameter is used instead when present. An action is optional
/// (the Body says the operation) but when one is given it must be the
/// operation's (`urn:cardhub:hub:v1#StatusNotify`, …). Header blocks are
/// ignored unless addressed to cardhub with mustUnderstand set, which is an
/// error. Surrounding whitespace of values is ignored.
///
/// # Errors
///
/// A [`HubSoapError`] saying what is wrong: the body is over `max_bytes`, the
/// Content-Type is not SOAP's or disagrees with the envelope, the XML is not
/// readable, the envelope, Body, operation or an element is missing or
/// unexpected, a value breaks the XSD, `content` is not base64.
pub fn parse_request_limited(
    body: &[u8],
    content_type: Option<&str>,
    soap_action: Option<&str>,
    max_bytes: usize,
) -> Result<(SoapVersion, HubCall), HubSoapError> {
    if body.len() > max_bytes {
        let size = body.len();
        return Err(HubSoapError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    let declared = content_type.map(soap_content_type).transpose()?;
    let limits = Limits {
        max_bytes,
        ..Limits::default()
    };
    let doc = Document::parse(body, &limits).map_err(|source| HubSoapError::Xml { source })?;
    let version = envelope_version(&doc)?;
    if let Some(&(declared, _)) = declared.as_ref()
        && declared != version
    {
        return Err(HubSoapError::VersionMismatch {
            envelope: version,
            declared,
            content_type: shown(content_type.unwrap_or_default()),
        });
    }
    check_headers(&doc, version)?;
    let body = soap::body(&doc, version)?;
    let count = doc.children(body).count();
    let Some(call) = doc.children(body).next().filter(|_| count == 1) else {
        return Err(HubSoapError::BodyElements { count });
    };
    let operation = match doc.name(call) {
        (NAMESPACE, STATUS_NOTIFY) => STATUS_NOTIFY,
        (NAMESPACE, SUBMIT_BALANCES) => SUBMIT_BALANCES,
        (ns, local) => {
            let (ns, local) = (ns.to_owned(), local.to_owned());
            return Err(HubSoapError::UnknownOperation { ns, local });
        }
    };
    let action = declared.and_then(|(_, action)| action);
    let action = action.as_deref().or(soap_action);
    check_action(action, operation)?;
    let call = if operation == STATUS_NOTIFY {
        read_status_notify(&doc, call)?
    } else {
        read_submit_balances(&doc, call)?
    };
    Ok((version, call))
}

/// The SOAP version to answer a request in when [`parse_request`] failed:
/// the one the Content-Type's media type names, SOAP 1.1 when it names
/// neither (or is absent).
pub fn fault_version(content_type: Option<&str>) -> SoapVersion {
    content_type
        .and_then(media_version)
        .unwrap_or(SoapVersion::V11)
}

fn read_status_notify(doc: &Document, call: NodeId) -> Result<HubCall, HubSoapError> {
    let names = ["institution", "state", "reason", "time"];
    let seq = Sequence::read(doc, call, STATUS_NOTIFY, names)?;
    let institution = seq.identifier(0)?;
    let state = seq.required(1)?;
    let state = SignalledState::parse(state)
        .ok_or_else(|| seq.bad(1, state, "a signalled state: OPEN, CLOSING or CLOSED"))?;
    Ok(HubCall::StatusNotify {
        institution,
        state,
        reason: seq.text(2)?,
        time: seq.instant(3)?,
    })
}

fn read_submit_balances(doc: &Document, call: NodeId) -> Result<HubCall, HubSoapError> {
    let names = ["institution", "asOf", "fileName", "format", "content"];
    let seq = Sequence::read(doc, call, SUBMIT_BALANCES, names)?;
    let institution = seq.identifier(0)?;
    let as_of = seq.instant(1)?;
    let file_name = seq.text(2)?.ok_or(HubSoapError::Missing {
        operation: SUBMIT_BALANCES,
        element: "fileName",
    })?;
    let format = seq.identifier(3)?;
    let content = decode_base64(seq.required(4)?)?;
    Ok(HubCall::SubmitBalances {
        institution,
        as_of,
        file_name,
        format,
        content,
    })
}

/// Decodes xs:base64Binary: padded standard alphabet, XML whitespace
/// anywhere (e.g. 76-character lines).
fn decode_base64(text: &str) -> Result<Vec<u8>, HubSoapError> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let result = if text.bytes().any(|b| is_space(&b)) {
        let compact: Vec<u8> = text.bytes().filter(|b| !is_space(b)).collect();
        BASE64.decode(compact)
    } else {
        BASE64.decode(text)
    };
    // Offsets from the decoder count non-whitespace bytes; map them back.
    let at = |compact: usize| {
        text.bytes()
            .enumerate()
            .filter(|(_, b)| !is_space(b))
            .nth(compact)
            .map_or(text.len(), |(i, _)| i)
    };
    result.map_err(|e| {
        let (problem, offset) = match e {
            base64::DecodeError::InvalidByte(i, byte) => {
                (format!("byte {}", byte_shown(byte)), at(i))
            }
            base64::DecodeError::InvalidLastSymbol { offset, symbol, .. } => (
                format!(
                    "last symbol {} has bits that do not fit",
                    byte_shown(symbol)
                ),
                at(offset),
            ),
            base64::DecodeError::InvalidLength(n) => (
                format!("{n} symbols cannot be base64 (a final group of one symbol)"),
                text.len(),
            ),
            base64::DecodeError::InvalidPadding => (
                "padding missing or wrong (the length must be a multiple of 4, ending in = or ==)"
                    .to_owned(),
                text.len(),
            ),
        };
        HubSoapError::Base64 { problem, offset }
    })
}

/// `'x'` for a printable ASCII byte, `0xNN` otherwise.
fn byte_shown(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("{:?}", char::from(byte))
    } else {
        format!("0x{byte:02X}")
    }
}

/// The SOAP version and SOAP 1.2 `action` of a Content-Type header value.
fn soap_content_type(value: &str) -> Result<(SoapVersion, Option<String>), HubSoapError> {
    let Some(version) = media_version(value) else {
        let found = shown(value);
        return Err(HubSoapError::ContentType { found });
    };
    let params = value.split_once(';').map_or("", |(_, params)| params);
    let mut action = None;
    for (name, value) in parameters(params) {
        match name.as_str() {
            "charset" if !["utf-8", "utf8", "us-ascii"].contains(&&*value.to_ascii_lowercase()) => {
                let found = shown(&value);
                return Err(HubSoapError::Charset { found });
            }
            "action" if version == SoapVersion::V12 => action = Some(value),
            _ => {}
        }
    }
    Ok((version, action))
}

/// The SOAP version a Content-Type's media type names, parameters aside.
fn media_version(value: &str) -> Option<SoapVersion> {
    let media = value.split_once(';').map_or(value, |(media, _)| media);
    match media.trim().to_ascii_lowercase().as_str() {
        "text/xml" => Some(SoapVersion::V11),
        "application/soap+xml" => Some(SoapVersion::V12),
        _ => None,
    }
}

/// `name=value` parameters after the media type (RFC 9110): names
/// lowercased, quoted-string values unquoted.
pub(super) fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|&c| matches!(c, ';' | ' ' | '\t')).is_some() {}
        if chars.peek().is_none() {
            return out;
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && c != ';') {
            name.push(c);
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                while chars.next_if(|&c| c != ';').is_some() {}
            } else {
                while let Some(c) = chars.next_if(|&c| c != ';') {
                    value.push(c);
                }
                value.truncate(value.trim_end().len());
            }
        }
        out.push((name.trim().to_ascii_lowercase(), value));
    }
}

/// The envelope's SOAP version, from the root element.
fn envelope_version(doc: &Document) -> Result<SoapVersion, HubSoapError> {
    let (ns, local) = doc.name(doc.root());
    match SoapVersion::from_namespace(ns) {
        Some(v) if local == "Envelope" => Ok(v),
        None if local == "Envelope" && !ns.is_empty() => {
            let ns = ns.to_owned();
            Err(HubSoapError::UnknownEnvelope { ns })
        }
        _ => {
            let (ns, local) = (ns.to_owned(), local.to_owned());
            Err(HubSoapError::NotEnvelope { ns, local })
        }
    }
}

/// Refuses a header block addressed to cardhub (no actor/role, `next`, or
/// 1.2 `ultimateReceiver`) with mustUnderstand `1` or `true`: cardhub
/// processes no header block.
fn check_headers(doc: &Document, version: SoapVersion) -> Result<(), HubSoapError> {
    let env = version.namespace();
    let Some(header) = doc.child(doc.root(), env, "Header") else {
        return Ok(());
    };
    let role_attr = match version {
        SoapVersion::V11 => "actor",
        SoapVersion::V12 => "role",
    };
    for block in doc.children(header) {
        let must = doc.attribute(block, Some(env), "mustUnderstand");
        let must = must.is_some_and(|m| matches!(m.trim(), "1" | "true"));
        let role = doc.attribute(block, Some(env), role_attr).map(str::trim);
        if must && role.is_none_or(|r| ROLES_FOR_US.contains(&r)) {
            let (ns, local) = doc.name(block);
            let (ns, local) = (ns.to_owned(), local.to_owned());
            return Err(HubSoapError::MustUnderstand { ns, local });
        }
    }
    Ok(())
}

/// An action, when one is given, must be the Body's operation's.
fn check_action(action: Option<&str>, operation: &'static str) -> Result<(), HubSoapError> {
    let Some(raw) = action else {
        return Ok(());
    };
    let action = raw.trim();
    let action = action
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(action);
    let matches = action
        .strip_prefix(NAMESPACE)
        .and_then(|a| a.strip_prefix('#'))
        .is_some_and(|op| op == operation);
    if action.is_empty() || matches {
        return Ok(());
    }
    let action = shown(raw);
    Err(HubSoapError::ActionMismatch { action, operation })
}

/// Whether `text` ends in `+hh:mm` or `-hh:mm`.
fn has_offset_suffix(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 6 && {
        let s = &b[b.len() - 6..];
        matches!(s[0], b'+' | b'-')
            && s[1].is_ascii_digit()
            && s[2].is_ascii_digit()
            && s[3] == b':'
            && s[4].is_ascii_digit()
            && s[5].is_ascii_digit()
    }
}
