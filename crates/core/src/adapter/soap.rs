//! SOAP 1.1 and 1.2 for the adapter: the HTTP headers each version wants,
//! finding the Body and a Fault in an answer parsed by [`xml`](crate::xml),
//! and the WS-Security UsernameToken header (OASIS WSS 1.0, UsernameToken
//! profile 1.0). Envelopes and faults are written by
//! [`soap_writer`](crate::soap_writer), whose [`Version`] and [`FaultCode`]
//! this module re-exports.
//!
//! It does not render bodies (templates do) nor send anything (the HTTP
//! transport does); it does not check signatures or any other WS-* header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use sha1::{Digest, Sha1};

use super::template::write_iso_millis;
use crate::soap_writer::escape;
pub use crate::soap_writer::{FaultCode, Version};
use crate::xml::{Document, NodeId};

/// The name of the SOAP 1.1 action header (see [`soap_action_header`]).
pub const SOAP_ACTION: &str = "SOAPAction";

/// The WS-Security 1.0 namespace (`wsse:`).
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The WS-Security utility namespace (`wsu:`).
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
/// The `Type` of a UsernameToken's `PasswordDigest` password.
pub const PASSWORD_DIGEST: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
const BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// A SOAP Fault found in an answer's Body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// 1.1 `faultcode`; 1.2 `Code/Value`, then each `Subcode/Value` after a
    /// `/`. The QName text as sent (e.g. `soap:Server`), trimmed; its prefix
    /// is the vendor's choice. Empty when missing.
    pub code: String,
    /// The elements holding the code, then (1.2) each subcode, most general
    /// first: their text is a qualified name to resolve in their scope
    /// ([`Document::resolve_qname`]).
    pub codes: Vec<NodeId>,
    /// 1.1 `faultstring`; 1.2 the first `Reason/Text`. Trimmed, empty when missing.
    pub reason: String,
    /// 1.1 `detail`, 1.2 `Detail`: where a vendor's own error code lives.
    pub detail: Option<NodeId>,
}

/// WS-Security UsernameToken credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password: String,
    /// `PasswordDigest` (with nonce and created) instead of `PasswordText`.
    pub digest: bool,
}

/// An answer that is not the envelope the adapter expects. Always the
/// vendor's fault; a retry does not help.
#[derive(Debug, thiserror::Error)]
pub enum SoapError {
    /// The root element is not a SOAP Envelope of either version.
    #[error("answer is not a SOAP envelope: root element is {{{ns}}}{local}")]
    NotEnvelope { ns: String, local: String },
    /// An Envelope of the other SOAP version.
    #[error("answer is a {found} envelope; the adapter speaks {expected}")]
    WrongVersion { expected: Version, found: Version },
    /// The Envelope has no Body.
    #[error("{version} envelope has no Body")]
    NoBody { version: Version },
    /// The Body has no element.
    #[error("{version} Body is empty")]
    EmptyBody { version: Version },
}

impl std::fmt::Debug for UsernameToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsernameToken")
            .field("username", &self.username)
            .field("password", &"***")
            .field("digest", &self.digest)
            .finish()
    }
}

/// The request's `Content-Type`: SOAP 1.1 `text/xml; charset=utf-8` (the
/// action goes in [`SOAP_ACTION`]); SOAP 1.2 `application/soap+xml;
/// charset=utf-8` with `; action="…"` when there is one.
pub fn content_type(version: Version, action: Option<&str>) -> String {
    match (version, action) {
        (Version::V11, _) => "text/xml; charset=utf-8".to_owned(),
        (Version::V12, None) => "application/soap+xml; charset=utf-8".to_owned(),
        (Version::V12, Some(action)) => {
            format!(
                "application/soap+xml; charset=utf-8; action={}",
                quoted(action)
            )
        }
    }
}

/// The value of the [`SOAP_ACTION`] header: SOAP 1.1 always has one (`""`
/// without an action, as WS-I Basic Profile asks); SOAP 1.2 never (the
/// action is in [`content_type`]).
pub fn soap_action_header(version: Version, action: Option<&str>) -> Option<String> {
    match version {
        Version::V11 => Some(quoted(action.unwrap_or(""))),
        Version::V12 => None,
    }
}

/// An HTTP quoted-string; control characters (which could split headers)
/// are dropped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| !c.is_control()) {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The Body of an answer that must be a `version` envelope.
///
/// # Errors
///
/// [`SoapError`]: the root is not an Envelope, is the other version's, has
/// no Body, or the Body has no element.
pub fn body(doc: &Document, version: Version) -> Result<NodeId, SoapError> {
    let root = doc.root();
    let (ns, local) = doc.name(root);
    match Version::from_namespace(ns) {
        Some(found) if local == "Envelope" && found != version => {
            return Err(SoapError::WrongVersion {
                expected: version,
                found,
            });
        }
        Some(_) if local == "Envelope" => {}
        _ => {
            return Err(SoapError::NotEnvelope {
                ns: ns.to_owned(),
                local: local.to_owned(),
            });
        }
    }
    let body = doc
        .child(root, version.namespace(), "Body")
        .ok_or(SoapError::NoBody { version })?;
    match doc.children(body).next() {
        Some(_) => Ok(body),
        None => Err(SoapError::EmptyBody { version }),
    }
}

/// The Fault in `body` (from [`body`]), if the answer is one.
pub fn fault(doc: &Document, body: NodeId, version: Version) -> Option<Fault> {
    let ns = version.namespace();
    let fault = doc.child(body, ns, "Fault")?;
    let text = |node: Option<NodeId>| node.map_or("", |n| doc.trimmed_text(n)).to_owned();
    Some(match version {
        Version::V11 => {
            // The parts are unqualified; some servers qualify them anyway.
            let part = |local| {
                doc.child(fault, "", local)
                    .or_else(|| doc.child(fault, ns, local))
            };
            let code = part("faultcode");
            Fault {
                code: text(code),
                codes: code.into_iter().collect(),
                reason: text(part("faultstring")),
                detail: part("detail"),
            }
        }
        Version::V12 => {
            let mut level = doc.child(fault, ns, "Code");
            let value = level.and_then(|c| doc.child(c, ns, "Value"));
            let mut code = text(value);
            let mut codes: Vec<NodeId> = value.into_iter().collect();
            while let Some(sub) = level.and_then(|c| doc.child(c, ns, "Subcode")) {
                let value = doc.child(sub, ns, "Value");
                code.push('/');
                code.push_str(&text(value));
                codes.extend(value);
                level = Some(sub);
            }
            let reason = doc.child(fault, ns, "Reason");
            Fault {
                code,
                codes,
                reason: text(reason.and_then(|r| doc.child(r, ns, "Text"))),
                detail: doc.child(fault, ns, "Detail"),
            }
        }
    })
}

/// 16 random bytes for [`wsse_header`]'s nonce (from the thread's CSPRNG).
pub fn wsse_nonce() -> [u8; 16] {
    rand::random()
}

/// Appends a `wsse:Security` header block holding a UsernameToken: the
/// clear password (`PasswordText`), or `Base64(SHA-1(nonce + created +
/// password))` (`PasswordDigest`) with the nonce and creation time.
///
/// The block carries `soap:mustUnderstand="1"` and does not declare `soap`:
/// it is meant for [`envelope`](crate::soap_writer::envelope)'s `header`, which binds `soap` to the right
/// version's namespace. `nonce` should be fresh per request ([`wsse_nonce`]).
pub fn wsse_header(token: &UsernameToken, created: Timestamp, nonce: &[u8], out: &mut String) {
    out.push_str(r#"<wsse:Security xmlns:wsse=""#);
    out.push_str(WSSE);
    out.push_str(r#"" xmlns:wsu=""#);
    out.push_str(WSU);
    out.push_str(r#"" soap:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>"#);
    escape(&token.username, out);
    out.push_str(r#"</wsse:Username><wsse:Password Type=""#);
    if token.digest {
        let created = created_text(created);
        out.push_str(PASSWORD_DIGEST);
        out.push_str(r#"">"#);
        out.push_str(&password_digest(nonce, &created, &token.password));
        out.push_str(r#"</wsse:Password><wsse:Nonce EncodingType=""#);
        out.push_str(BASE64_BINARY);
        out.push_str(r#"">"#);
        BASE64.encode_string(nonce, out);
        out.push_str("</wsse:Nonce><wsu:Created>");
        out.push_str(&created);
        out.push_str("</wsu:Created>");
    } else {
        out.push_str(PASSWORD_TEXT);
        out.push_str(r#"">"#);
        escape(&token.password, out);
        out.push_str("</wsse:Password>");
    }
    out.push_str("</wsse:UsernameToken></wsse:Security>");
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` in UTC, milliseconds truncated.
fn created_text(created: Timestamp) -> String {
    let mut text = String::with_capacity(24);
    write_iso_millis(created, &mut text);
    text
}

/// `Base64(SHA-1(nonce + created + password))`, over the raw (unescaped)
/// text: what a UsernameToken's `PasswordDigest` holds.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(nonce);
    sha.update(created.as_bytes());
    sha.update(password.as_bytes());
    BASE64.encode(sha.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap_writer::{Fault as Written, envelope, write_fault};
    use crate::xml::Limits;

    const AS: &str = "urn:cardhub:account-system:v1";
    const BODY: &str = r#"<as:Authorize xmlns:as="urn:cardhub:account-system:v1"><as:amount>12550</as:amount></as:Authorize>"#;

    fn parse(xml: &str) -> Document {
        Document::parse(xml.as_bytes(), &Limits::default()).expect("well-formed")
    }

    fn token(digest: bool) -> UsernameToken {
        UsernameToken {
            username: "hub<1>".into(),
            password: "s3cr3t&<pw>".into(),
            digest,
        }
    }

    #[test]
    fn envelopes_round_trip_with_a_security_header() {
        let created: Timestamp = "2025-11-22T09:14:05.123456789Z".parse().unwrap();
        for version in [Version::V11, Version::V12] {
            for digest in [false, true] {
                let mut header = String::new();
                wsse_header(&token(digest), created, &[7; 16], &mut header);
                let mut xml = String::new();
                envelope(version, Some(&header), BODY, &mut xml);
                assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope"#));
                let doc = parse(&xml);
                let body = body(&doc, version).unwrap();
                let authorize = doc.child(body, AS, "Authorize").unwrap();
                let amount = doc.child(authorize, AS, "amount").unwrap();
                assert_eq!(doc.text(amount), "12550");
                assert_eq!(fault(&doc, body, version), None);

                let ns = version.namespace();
                let header = doc.child(doc.root(), ns, "Header").unwrap();
                let security = doc.child(header, WSSE, "Security").unwrap();
                assert_eq!(
                    doc.attribute(security, Some(ns), "mustUnderstand"),
                    Some("1")
                );
                let token = doc.child(security, WSSE, "UsernameToken").unwrap();
                let user = doc.child(token, WSSE, "Username").unwrap();
                assert_eq!(doc.text(user), "hub<1>");
                let password = doc.child(token, WSSE, "Password").unwrap();
                let kind = doc.attribute(password, None, "Type").unwrap();
                let created = doc.child(token, WSU, "Created").map(|c| doc.text(c));
                if digest {
                    assert!(kind.ends_with("#PasswordDigest"));
                    assert_eq!(created, Some("2025-11-22T09:14:05.123Z"));
                    let nonce = doc.child(token, WSSE, "Nonce").unwrap();
                    assert_eq!(doc.text(nonce), "BwcHBwcHBwcHBwcHBwcHBw==");
                    assert_eq!(
                        doc.attribute(nonce, None, "EncodingType"),
                        Some(BASE64_BINARY)
                    );
                } else {
                    assert!(kind.ends_with("#PasswordText"));
                    assert_eq!(doc.text(password), "s3cr3t&<pw>");
                    assert_eq!(created, None);
                }
            }
        }
    }

    #[test]
    fn password_digest_matches_an_independent_computation() {
        // python3 -c 'import hashlib,base64;print(base64.b64encode(hashlib.sha1(bytes(range(16))
        //   +b"2025-11-22T09:14:05.123Z"+b"s3cr3t&<pw>").digest()).decode())'
        const EXPECTED: &str = "BdZuJRfQ2+LUxDGXTDwXV2S0JCc=";
        let nonce: Vec<u8> = (0..16).collect();
        let digest = password_digest(&nonce, "2025-11-22T09:14:05.123Z", "s3cr3t&<pw>");
        assert_eq!(digest, EXPECTED);

        let created: Timestamp = "2025-11-22T09:14:05.123999Z".parse().unwrap();
        let mut out = String::new();
        wsse_header(&token(true), created, &nonce, &mut out);
        assert!(out.contains(&format!(r#"{PASSWORD_DIGEST}">{EXPECTED}</wsse:Password>"#)));
        assert!(out.contains(">AAECAwQFBgcICQoLDA0ODw==</wsse:Nonce>"));
        assert!(out.contains("<wsu:Created>2025-11-22T09:14:05.123Z</wsu:Created>"));
        assert!(out.contains("<wsse:Username>hub&lt;1&gt;</wsse:Username>"));
        assert!(!out.contains("s3cr3t"));
        assert!(!format!("{:?}", token(true)).contains("s3cr3t"));
    }

    #[test]
    fn a_body_in_the_wrong_envelope_is_an_error() {
        for (sent, expected) in [(Version::V11, Version::V12), (Version::V12, Version::V11)] {
            let mut xml = String::new();
            envelope(sent, None, BODY, &mut xml);
            let err = body(&parse(&xml), expected).unwrap_err();
            assert!(
                matches!(err, SoapError::WrongVersion { expected: e, found } if e == expected && found == sent)
            );
        }
        let v11 = Version::V11.namespace();
        let cases = [
            (
                r#"<Envelope><Body><x/></Body></Envelope>"#.to_owned(),
                "not a SOAP envelope",
            ),
            (
                format!(r#"<s:Body xmlns:s="{v11}"><x/></s:Body>"#),
                "root element is {",
            ),
            (
                format!(r#"<s:Envelope xmlns:s="{v11}"><s:Header/></s:Envelope>"#),
                "no Body",
            ),
            (
                format!(r#"<s:Envelope xmlns:s="{v11}"><Body><x/></Body></s:Envelope>"#),
                "no Body",
            ),
            (
                format!("<s:Envelope xmlns:s=\"{v11}\"><s:Body>\n text </s:Body></s:Envelope>"),
                "Body is empty",
            ),
        ];
        for (xml, want) in cases {
            let err = body(&parse(&xml), Version::V11).unwrap_err().to_string();
            assert!(err.contains(want), "{xml}: {err}");
        }
    }

    #[test]
    fn faults_of_both_versions_are_read() {
        let doc = parse(include_str!(
            "../../../../fixtures/soap/canonical/authorize-fault.soap11.xml"
        ));
        let at = body(&doc, Version::V11).unwrap();
        let f = fault(&doc, at, Version::V11).unwrap();
        assert_eq!(
            (f.code.as_str(), f.reason.as_str()),
            ("soap:Server", "account system unavailable")
        );
        let detail = f.detail.unwrap();
        let vendor = doc.child(detail, AS, "AccountSystemFault").unwrap();
        assert_eq!(doc.text(doc.child(vendor, AS, "code").unwrap()), "SYS-503");

        let doc = parse(include_str!(
            "../../../../fixtures/soap/canonical/authorize-fault.soap12.xml"
        ));
        let at = body(&doc, Version::V12).unwrap();
        let f = fault(&doc, at, Version::V12).unwrap();
        assert_eq!(
            (f.code.as_str(), f.reason.as_str()),
            ("env:Receiver", "account system unavailable")
        );
        assert!(
            doc.child(f.detail.unwrap(), AS, "AccountSystemFault")
                .is_some()
        );

        let subcodes = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
            xmlns:v="urn:vendor"><env:Body><env:Fault>
              <env:Code><env:Value>env:Sender</env:Value>
                <env:Subcode><env:Value>v:Validation</env:Value>
                  <env:Subcode><env:Value>v:AmountTooLarge</env:Value></env:Subcode>
                </env:Subcode></env:Code>
              <env:Reason><env:Text xml:lang="en">amount too large</env:Text>
                <env:Text xml:lang="fr">montant trop élevé</env:Text></env:Reason>
            </env:Fault></env:Body></env:Envelope>"#;
        let doc = parse(subcodes);
        let f = fault(&doc, body(&doc, Version::V12).unwrap(), Version::V12).unwrap();
        assert_eq!(f.code, "env:Sender/v:Validation/v:AmountTooLarge");
        let codes: Vec<_> = (f.codes.iter())
            .map(|&n| doc.resolve_qname(n, doc.trimmed_text(n)).unwrap())
            .collect();
        let env = Version::V12.namespace();
        let vendor = "urn:vendor";
        assert_eq!(
            codes,
            [
                (env, "Sender"),
                (vendor, "Validation"),
                (vendor, "AmountTooLarge")
            ]
        );
        assert_eq!((f.reason.as_str(), f.detail), ("amount too large", None));

        // Qualified 1.1 parts (seen in the wild) are read as well.
        let qualified = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <s:Fault><s:faultcode>s:Client</s:faultcode><s:faultstring>bad card</s:faultstring></s:Fault>
            </s:Body></s:Envelope>"#;
        let doc = parse(qualified);
        let f = fault(&doc, body(&doc, Version::V11).unwrap(), Version::V11).unwrap();
        assert_eq!(
            (f.code.as_str(), f.reason.as_str()),
            ("s:Client", "bad card")
        );
    }

    #[test]
    fn written_faults_read_back() {
        let detail = r#"<v:Oops xmlns:v="urn:vendor">x</v:Oops>"#;
        let cases = [
            (Version::V11, FaultCode::Sender, "soap:Client"),
            (Version::V11, FaultCode::Receiver, "soap:Server"),
            (
                Version::V11,
                FaultCode::MustUnderstand,
                "soap:MustUnderstand",
            ),
            (Version::V12, FaultCode::Sender, "soap:Sender"),
            (Version::V12, FaultCode::Receiver, "soap:Receiver"),
            (
                Version::V12,
                FaultCode::VersionMismatch,
                "soap:VersionMismatch",
            ),
        ];
        for (version, code, want) in cases {
            for detail in [None, Some(detail)] {
                let mut body = String::new();
                let reason = "bad <input> & \"more\"";
                write_fault(version, &Written::new(code, reason, detail), &mut body);
                let mut xml = String::new();
                envelope(version, None, &body, &mut xml);
                let doc = parse(&xml);
                let at = super::body(&doc, version).unwrap();
                let f = fault(&doc, at, version).unwrap();
                assert_eq!(f.code, want);
                assert_eq!(f.reason, "bad <input> & \"more\"");
                let vendor = f.detail.and_then(|d| doc.child(d, "urn:vendor", "Oops"));
                assert_eq!(vendor.is_some(), detail.is_some(), "{xml}");
            }
        }
    }

    #[test]
    fn canonical_samples_have_a_body_of_their_version() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fixtures/soap/canonical");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (version, other) = match name {
                _ if name.ends_with(".soap11.xml") => (Version::V11, Version::V12),
                _ if name.ends_with(".soap12.xml") => (Version::V12, Version::V11),
                _ => continue,
            };
            let doc = Document::parse(&std::fs::read(&path).unwrap(), &Limits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let at = body(&doc, version).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                fault(&doc, at, version).is_some(),
                name.contains("-fault."),
                "{name}"
            );
            assert!(body(&doc, other).is_err(), "{name}");
            seen += 1;
        }
        assert!(seen >= 10);
    }

    #[test]
    fn http_headers_per_version() {
        let action = Some("urn:cardhub:account-system:v1#Authorize");
        assert_eq!(
            content_type(Version::V11, action),
            "text/xml; charset=utf-8"
        );
        assert_eq!(
            soap_action_header(Version::V11, action).as_deref(),
            Some(r#""urn:cardhub:account-system:v1#Authorize""#)
        );
        assert_eq!(
            soap_action_header(Version::V11, None).as_deref(),
            Some(r#""""#)
        );
        assert_eq!(
            content_type(Version::V12, action),
            r#"application/soap+xml; charset=utf-8; action="urn:cardhub:account-system:v1#Authorize""#
        );
        assert_eq!(
            content_type(Version::V12, None),
            "application/soap+xml; charset=utf-8"
        );
        assert_eq!(soap_action_header(Version::V12, action), None);
        assert_eq!(
            soap_action_header(Version::V11, Some("a\"b\\c\r\nX: y")).as_deref(),
            Some(r#""a\"b\\cX: y""#)
        );
    }
}
