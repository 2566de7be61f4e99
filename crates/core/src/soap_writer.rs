//! The one SOAP writer: the envelope (SOAP 1.1 or 1.2) around a rendered
//! body, a Fault of either version, and the escaping of every value put in
//! XML. The adapter's requests, the answers and faults of the SOAP service
//! cardhub serves (`api::hub_soap`), and those of the reference account
//! system and its vendor servers (`refsys`) are all written here, so an
//! envelope or a fault looks the same wherever it comes from.
//!
//! It writes only: reading is the adapter's (`adapter::soap`) or, apart
//! from it on purpose, the reference system's (`refsys::xml`). It depends
//! on no layer above it (hub, api, refsys).

use std::fmt;

use crate::xml::is_xml_char;

/// A SOAP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V11,
    V12,
}

/// The SOAP fault code of a Fault cardhub writes (see [`write_fault`]):
/// who is to blame, in SOAP's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCode {
    /// The envelope is not of a SOAP version cardhub speaks.
    VersionMismatch,
    /// A header block marked mustUnderstand that cardhub does not process.
    MustUnderstand,
    /// The request is wrong (1.1 `Client`, 1.2 `Sender`); sending it again
    /// unchanged cannot help.
    Sender,
    /// cardhub could not process a correct request (1.1 `Server`, 1.2
    /// `Receiver`); it may succeed later.
    Receiver,
}

/// A Fault to write with [`write_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault<'a> {
    pub code: FaultCode,
    /// A more precise code from another namespace (e.g. WS-Security's
    /// `wsse:FailedAuthentication`).
    pub subcode: Option<Subcode<'a>>,
    /// 1.1 `faultstring`, 1.2 `Reason/Text` (`xml:lang="en"`); escaped
    /// when written.
    pub reason: &'a str,
    /// 1.1 `detail`, 1.2 `Detail`: already-rendered XML declaring its own
    /// namespaces, inserted verbatim.
    pub detail: Option<&'a str>,
}

/// A fault subcode's qualified name; its prefix is declared on the Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subcode<'a> {
    pub prefix: &'a str,
    pub namespace: &'a str,
    pub local: &'a str,
}

impl Version {
    /// The envelope namespace URI.
    pub const fn namespace(self) -> &'static str {
        match self {
            Version::V11 => "http://schemas.xmlsoap.org/soap/envelope/",
            Version::V12 => "http://www.w3.org/2003/05/soap-envelope",
        }
    }

    /// The version whose envelope namespace URI is `ns`.
    pub fn from_namespace(ns: &str) -> Option<Version> {
        [Version::V11, Version::V12]
            .into_iter()
            .find(|v| v.namespace() == ns)
    }
}

impl FaultCode {
    /// The local part of the code's QName in `version`.
    pub const fn local_name(self, version: Version) -> &'static str {
        match (self, version) {
            (FaultCode::VersionMismatch, _) => "VersionMismatch",
            (FaultCode::MustUnderstand, _) => "MustUnderstand",
            (FaultCode::Sender, Version::V11) => "Client",
            (FaultCode::Sender, Version::V12) => "Sender",
            (FaultCode::Receiver, Version::V11) => "Server",
            (FaultCode::Receiver, Version::V12) => "Receiver",
        }
    }
}

impl<'a> Fault<'a> {
    /// A Fault with no subcode.
    pub fn new(code: FaultCode, reason: &'a str, detail: Option<&'a str>) -> Fault<'a> {
        Fault {
            code,
            subcode: None,
            reason,
            detail,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V11 => "SOAP 1.1",
            Version::V12 => "SOAP 1.2",
        })
    }
}

/// A whole envelope without a Header around the body `write` appends.
pub fn message(version: Version, write: impl FnOnce(&mut String)) -> String {
    let mut out = String::with_capacity(512);
    open_envelope(version, None, &mut out);
    write(&mut out);
    close_envelope(&mut out);
    out
}

/// Appends the XML declaration and an Envelope (prefix `soap`) with an
/// optional Header and the Body. `header` and `body` are already-rendered
/// XML, inserted verbatim; they declare their own namespaces, except that
/// they may use the `soap` prefix.
pub fn envelope(version: Version, header: Option<&str>, body: &str, out: &mut String) {
    open_envelope(version, header, out);
    out.push_str(body);
    close_envelope(out);
}

/// [`envelope`] up to the Body's start tag, for a body rendered straight
/// after it; [`close_envelope`] ends it.
pub fn open_envelope(version: Version, header: Option<&str>, out: &mut String) {
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(r#"<soap:Envelope xmlns:soap=""#);
    out.push_str(version.namespace());
    out.push_str(r#"">"#);
    if let Some(header) = header {
        out.push_str("<soap:Header>");
        out.push_str(header);
        out.push_str("</soap:Header>");
    }
    out.push_str("<soap:Body>");
}

/// Ends what [`open_envelope`] started.
pub fn close_envelope(out: &mut String) {
    out.push_str("</soap:Body></soap:Envelope>");
}

/// Appends a Fault element for an envelope's Body: SOAP 1.1 `faultcode`
/// (`soap:Client` …), `faultstring` and `detail`; SOAP 1.2 `Code/Value`
/// (`soap:Sender` …) with its `Subcode/Value`, `Reason/Text`
/// (`xml:lang="en"`) and `Detail`. SOAP 1.1 has no subcodes: a subcode is
/// its `faultcode` instead, as WS-Security's SOAP 1.1 faults have it. It
/// relies on the envelope binding `soap` to the version's namespace.
pub fn write_fault(version: Version, fault: &Fault<'_>, out: &mut String) {
    let code = fault.code.local_name(version);
    out.push_str("<soap:Fault");
    if let Some(sub) = &fault.subcode {
        out.push_str(" xmlns:");
        out.push_str(sub.prefix);
        out.push_str(r#"=""#);
        escape(sub.namespace, out);
        out.push('"');
    }
    out.push('>');
    match version {
        Version::V11 => {
            out.push_str("<faultcode>");
            match &fault.subcode {
                Some(sub) => push_qname(sub.prefix, sub.local, out),
                None => push_qname("soap", code, out),
            }
            out.push_str("</faultcode><faultstring>");
            escape(fault.reason, out);
            out.push_str("</faultstring>");
            if let Some(detail) = fault.detail {
                out.push_str("<detail>");
                out.push_str(detail);
                out.push_str("</detail>");
            }
        }
        Version::V12 => {
            out.push_str("<soap:Code><soap:Value>");
            push_qname("soap", code, out);
            out.push_str("</soap:Value>");
            if let Some(sub) = &fault.subcode {
                out.push_str("<soap:Subcode><soap:Value>");
                push_qname(sub.prefix, sub.local, out);
                out.push_str("</soap:Value></soap:Subcode>");
            }
            out.push_str(r#"</soap:Code><soap:Reason><soap:Text xml:lang="en">"#);
            escape(fault.reason, out);
            out.push_str("</soap:Text></soap:Reason>");
            if let Some(detail) = fault.detail {
                out.push_str("<soap:Detail>");
                out.push_str(detail);
                out.push_str("</soap:Detail>");
            }
        }
    }
    out.push_str("</soap:Fault>");
}

fn push_qname(prefix: &str, local: &str, out: &mut String) {
    out.push_str(prefix);
    out.push(':');
    out.push_str(local);
}

/// Appends `text` XML-escaped, safe both as element content and inside a
/// quoted attribute value: `& < > " '` become entities, tab, newline and
/// carriage return become character references (so they survive attribute
/// normalization), and characters XML cannot carry at all (most C0 controls,
/// U+FFFE, U+FFFF) become U+FFFD.
pub fn escape(text: &str, out: &mut String) {
    // Copy the part that needs nothing in one go (usually all of it).
    let plain = text
        .bytes()
        .position(byte_needs_escape)
        .unwrap_or(text.len());
    let (head, rest) = text.split_at(plain);
    out.reserve(text.len());
    out.push_str(head);
    for c in rest.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Whether `text` may need [`escape`]: it has markup, a control character
/// or a non-ASCII character (which `escape` looks at one by one).
pub(crate) fn needs_escape(text: &str) -> bool {
    text.bytes().any(byte_needs_escape)
}

/// Markup, C0 controls, and any byte of a non-ASCII character (which
/// [`escape`] looks at as a whole).
fn byte_needs_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | ..0x20 | 0x80..)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = r#"<v:Oops xmlns:v="urn:vendor">x</v:Oops>"#;

    fn fault(version: Version, fault: &Fault<'_>) -> String {
        message(version, |out| write_fault(version, fault, out))
    }

    /// The exact bytes: SOAP 1.1 and 1.2 faults as the services send them.
    #[test]
    fn faults_of_both_versions_are_written_exactly() {
        let plain = Fault::new(FaultCode::Sender, "bad <input> & \"more\"", Some(DETAIL));
        assert_eq!(
            fault(Version::V11, &plain),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
                r#"<soap:Fault><faultcode>soap:Client</faultcode><faultstring>bad &lt;input&gt; &amp; &quot;more&quot;</faultstring>"#,
                r#"<detail><v:Oops xmlns:v="urn:vendor">x</v:Oops></detail></soap:Fault></soap:Body></soap:Envelope>"#
            )
        );
        assert_eq!(
            fault(Version::V12, &Fault::new(FaultCode::Receiver, "down", None)),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>"#,
                r#"<soap:Fault><soap:Code><soap:Value>soap:Receiver</soap:Value></soap:Code>"#,
                r#"<soap:Reason><soap:Text xml:lang="en">down</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>"#
            )
        );
        let wsse = Fault {
            subcode: Some(Subcode {
                prefix: "wsse",
                namespace: "urn:wsse",
                local: "FailedAuthentication",
            }),
            ..Fault::new(FaultCode::Sender, "no", None)
        };
        let v12 = fault(Version::V12, &wsse);
        assert!(
            v12.contains(concat!(
                r#"<soap:Fault xmlns:wsse="urn:wsse"><soap:Code><soap:Value>soap:Sender</soap:Value>"#,
                r#"<soap:Subcode><soap:Value>wsse:FailedAuthentication</soap:Value></soap:Subcode></soap:Code>"#,
                r#"<soap:Reason><soap:Text xml:lang="en">no</soap:Text></soap:Reason></soap:Fault>"#
            )),
            "{v12}"
        );
        let v11 = fault(Version::V11, &wsse);
        assert!(
            v11.contains(concat!(
                r#"<soap:Fault xmlns:wsse="urn:wsse"><faultcode>wsse:FailedAuthentication</faultcode>"#,
                r#"<faultstring>no</faultstring></soap:Fault>"#
            )),
            "{v11}"
        );
    }

    #[test]
    fn escape_covers_markup_line_ends_and_non_characters() {
        let mut out = String::new();
        escape("a&b<c>d\"e'f\tg\nh\ri\u{1}j\u{FFFE}é", &mut out);
        assert_eq!(
            out,
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g&#10;h&#13;i\u{FFFD}j\u{FFFD}é"
        );
        assert!(!needs_escape("plain text 123"));
        assert!(needs_escape("é"));
    }
}
