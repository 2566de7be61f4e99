//! Tests of the hub SOAP messages. Every rendered answer is also written to
//! `target/rendered-requests/hub/`, where `scripts/check-wsdl` validates it
//! against hub.xsd (and reads it with zeep); the request samples are in
//! `fixtures/soap/canonical/`, which the same script validates.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;

use super::request::parameters;
use super::*;
use crate::soap_writer::escape;
use crate::xml::{Document, Limits, NodeId};

mod answers;

const CT11: &str = "text/xml; charset=utf-8";
const CT12: &str = "application/soap+xml; charset=utf-8";
const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const CSV: &str =
    "account,available,ledger,currency\nA-1001,100000,100000,840\nA-1002,9950,9950,840\n";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn sample(name: &str) -> String {
    let path = repo().join("fixtures/soap/canonical").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn time(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A SOAP 1.1 envelope with `hub` declared around `body`.
fn envelope11(body: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{SOAP11}" xmlns:hub="{NAMESPACE}"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// A SOAP 1.1 StatusNotify holding `children`.
fn status(children: &str) -> String {
    envelope11(&format!("<hub:StatusNotify>{children}</hub:StatusNotify>"))
}

const STATUS_OK: &str = "<hub:institution>bank-a</hub:institution><hub:state>OPEN</hub:state><hub:time>2025-11-22T05:45:00Z</hub:time>";

/// A SOAP 1.1 SubmitBalances whose content is `content`.
fn balances(content: &str) -> String {
    envelope11(&format!(
        "<hub:SubmitBalances><hub:institution>bank-a</hub:institution>\
         <hub:asOf>2025-11-22T05:30:00Z</hub:asOf><hub:fileName>b.csv</hub:fileName>\
         <hub:format>csv</hub:format><hub:content>{content}</hub:content></hub:SubmitBalances>"
    ))
}

fn parse(body: &str) -> Result<(SoapVersion, HubCall), HubSoapError> {
    parse_request(body.as_bytes(), Some(CT11), None)
}

/// An element tree as text, `{ns}local="text"[children]`, comments and
/// whitespace left out: two documents with the same tree print the same.
fn tree(doc: &Document, node: NodeId) -> String {
    let (ns, local) = doc.name(node);
    let children: Vec<String> = doc.children(node).map(|c| tree(doc, c)).collect();
    format!(
        "{{{ns}}}{local}={:?}[{}]",
        doc.trimmed_text(node),
        children.join(",")
    )
}

fn read(xml: &str) -> Document {
    Document::parse(xml.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

/// Writes a rendered answer where `scripts/check-wsdl` validates it.
fn keep_for_check_wsdl(name: &str, xml: &str) {
    let dir: PathBuf = repo().join("target/rendered-requests/hub");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), xml).unwrap();
}

#[test]
fn status_notify_is_read_in_both_versions() {
    let expected = HubCall::StatusNotify {
        institution: "bank-a".into(),
        state: SignalledState::Closing,
        reason: Some("end of day 2025-11-21".into()),
        time: time("2025-11-21T22:00:00Z"),
    };
    let v11 = sample("status-notify-request.soap11.xml");
    for (ct, action) in [
        (Some(CT11), Some(r#""urn:cardhub:hub:v1#StatusNotify""#)),
        (Some("Text/XML"), Some(r#""""#)),
        (None, None),
    ] {
        let got = parse_request(v11.as_bytes(), ct, action).unwrap();
        assert_eq!(
            got,
            (SoapVersion::V11, expected.clone()),
            "{ct:?} {action:?}"
        );
    }

    let v12 = sample("status-notify-request.soap12.xml");
    let expected = HubCall::StatusNotify {
        institution: "bank-a".into(),
        state: SignalledState::Open,
        reason: Some("end of day 2025-11-21 done".into()),
        time: time("2025-11-22T05:45:00Z"),
    };
    for ct in [
        Some(r#"application/soap+xml; charset="UTF-8"; action="urn:cardhub:hub:v1#StatusNotify""#),
        Some(CT12),
        None,
    ] {
        let got = parse_request(v12.as_bytes(), ct, None).unwrap();
        assert_eq!(got, (SoapVersion::V12, expected.clone()), "{ct:?}");
    }
    assert_eq!(expected.operation(), "StatusNotify");
    assert_eq!(expected.institution(), "bank-a");
    assert_eq!(
        InstitutionState::from(SignalledState::Open),
        InstitutionState::Open
    );

    // reason is optional; an identifier's whitespace collapses.
    let lean = status(
        "<hub:institution>\n  bank   a </hub:institution><hub:state> CLOSED </hub:state><hub:time>2025-11-21T23:00:00-02:30</hub:time>",
    );
    let (_, call) = parse(&lean).unwrap();
    assert_eq!(
        call,
        HubCall::StatusNotify {
            institution: "bank a".into(),
            state: SignalledState::Closed,
            reason: None,
            time: time("2025-11-22T01:30:00Z"),
        }
    );
}

#[test]
fn submit_balances_is_read_in_both_versions() {
    let expected = HubCall::SubmitBalances {
        institution: "bank-a".into(),
        as_of: time("2025-11-22T05:30:00Z"),
        file_name: "bank-a-balances-20251122-0530.csv".into(),
        format: "csv".into(),
        content: CSV.as_bytes().to_vec(),
    };
    let v11 = sample("submit-balances-request.soap11.xml");
    let action = Some("urn:cardhub:hub:v1#SubmitBalances");
    let got = parse_request(v11.as_bytes(), Some(CT11), action).unwrap();
    assert_eq!(got, (SoapVersion::V11, expected.clone()));
    assert_eq!(
        format!("{expected:?}"),
        r#"SubmitBalances { institution: "bank-a", as_of: 2025-11-22T05:30:00Z, file_name: "bank-a-balances-20251122-0530.csv", format: "csv", content: <80 bytes> }"#
    );

    let v12 = v11.replace(SOAP11, SOAP12);
    let ct = r#"application/soap+xml;action="urn:cardhub:hub:v1#SubmitBalances""#;
    let got = parse_request(v12.as_bytes(), Some(ct), None).unwrap();
    assert_eq!(got, (SoapVersion::V12, expected.clone()));

    // Base64 as SOAP stacks often send it: in lines, indented.
    let b64 = BASE64.encode(CSV);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(20)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let wrapped = format!("\n    {}\n  ", wrapped.join("\r\n    "));
    let (_, call) = parse(&balances(&wrapped)).unwrap();
    let HubCall::SubmitBalances { content, .. } = call else {
        panic!("{call:?}")
    };
    assert_eq!(content, CSV.as_bytes());

    // An empty file is well-formed here; the balance-file layer refuses it.
    let (_, call) = parse(&balances("")).unwrap();
    assert!(matches!(call, HubCall::SubmitBalances { content, .. } if content.is_empty()));
}

/// A bad request: body, Content-Type, SOAPAction, hub code, part of the message.
type Case<'a> = (String, Option<&'a str>, Option<&'a str>, &'a str, &'a str);

#[test]
fn each_malformed_request_says_what_is_wrong() {
    let long = "x".repeat(65);
    let long_reason = "r".repeat(513);
    let v12_status = status(STATUS_OK).replace(SOAP11, SOAP12);
    let cases: Vec<Case> = vec![
        // (body, Content-Type, SOAPAction, hub code, message part)
        (
            status(STATUS_OK),
            Some("application/json"),
            None,
            "UNSUPPORTED_MEDIA_TYPE",
            r#"Content-Type "application/json" is not SOAP"#,
        ),
        (
            status(STATUS_OK),
            Some("text/xml; charset=ISO-8859-1"),
            None,
            "UNSUPPORTED_MEDIA_TYPE",
            r#"charset "ISO-8859-1""#,
        ),
        (
            "<soap:Envelope".into(),
            None,
            None,
            "MALFORMED_XML",
            "request is not readable XML",
        ),
        (
            r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>"#.into(),
            None,
            None,
            "MALFORMED_XML",
            "DOCTYPE",
        ),
        (
            format!(r#"<hub:StatusNotify xmlns:hub="{NAMESPACE}"/>"#),
            None,
            None,
            "NOT_SOAP",
            "not a SOAP envelope: root element is {urn:cardhub:hub:v1}StatusNotify",
        ),
        (
            r#"<e:Envelope xmlns:e="urn:soap:next"><e:Body/></e:Envelope>"#.into(),
            None,
            None,
            "VERSION_MISMATCH",
            r#"namespace "urn:soap:next""#,
        ),
        (
            status(STATUS_OK),
            Some(CT12),
            None,
            "UNSUPPORTED_MEDIA_TYPE",
            "SOAP 1.1 envelope but its Content-Type",
        ),
        (
            v12_status,
            Some(CT11),
            None,
            "UNSUPPORTED_MEDIA_TYPE",
            "SOAP 1.2 envelope but its Content-Type",
        ),
        (
            format!(r#"<soap:Envelope xmlns:soap="{SOAP11}"><soap:Header/></soap:Envelope>"#),
            None,
            None,
            "NOT_SOAP",
            "SOAP 1.1 envelope has no Body",
        ),
        (
            envelope11(" "),
            None,
            None,
            "NOT_SOAP",
            "SOAP 1.1 Body is empty",
        ),
        (
            envelope11("<hub:StatusNotify/><hub:StatusNotify/>"),
            None,
            None,
            "NOT_SOAP",
            "Body has 2 elements",
        ),
        (
            format!(
                r#"<soap:Envelope xmlns:soap="{SOAP11}"><soap:Header><w:Security xmlns:w="urn:wsse" soap:mustUnderstand="1"/></soap:Header><soap:Body/></soap:Envelope>"#
            ),
            None,
            None,
            "MUST_UNDERSTAND",
            "header block {urn:wsse}Security has mustUnderstand set",
        ),
        (
            envelope11("<hub:Ping/>"),
            None,
            None,
            "UNKNOWN_OPERATION",
            "Body element {urn:cardhub:hub:v1}Ping is not an operation",
        ),
        (
            envelope11("<StatusNotify/>"),
            None,
            None,
            "UNKNOWN_OPERATION",
            "Body element {}StatusNotify",
        ),
        (
            status(STATUS_OK),
            None,
            Some(r#""urn:cardhub:hub:v1#SubmitBalances""#),
            "ACTION_MISMATCH",
            "does not match the Body's StatusNotify",
        ),
        (
            status(STATUS_OK).replace(SOAP11, SOAP12),
            Some(r#"application/soap+xml; action="urn:other#StatusNotify""#),
            Some(""),
            "ACTION_MISMATCH",
            r#"SOAP action "urn:other#StatusNotify""#,
        ),
        (
            status("<hub:institution>bank-a</hub:institution><hub:state>OPEN</hub:state>"),
            None,
            None,
            "INVALID_MESSAGE",
            "StatusNotify: missing element hub:time",
        ),
        (
            status(""),
            None,
            None,
            "INVALID_MESSAGE",
            "missing element hub:institution",
        ),
        (
            status(r#"<institution xmlns="">bank-a</institution>"#),
            None,
            None,
            "INVALID_MESSAGE",
            "element institution has no namespace",
        ),
        (
            status(&format!("{STATUS_OK}<hub:extra/>")),
            None,
            None,
            "INVALID_MESSAGE",
            "unexpected element {urn:cardhub:hub:v1}extra (expected hub:institution, hub:state, hub:reason, hub:time, in this order)",
        ),
        (
            status(r#"<x:institution xmlns:x="urn:x">bank-a</x:institution>"#),
            None,
            None,
            "INVALID_MESSAGE",
            "unexpected element {urn:x}institution",
        ),
        (
            status(
                "<hub:institution>bank-a</hub:institution><hub:time>2025-11-22T05:45:00Z</hub:time><hub:state>OPEN</hub:state>",
            ),
            None,
            None,
            "INVALID_MESSAGE",
            "element hub:state is repeated or out of order",
        ),
        (
            status(&format!("<hub:institution>b</hub:institution>{STATUS_OK}")),
            None,
            None,
            "INVALID_MESSAGE",
            "element hub:institution is repeated or out of order",
        ),
        (
            status(&STATUS_OK.replace("OPEN", "open")),
            None,
            None,
            "INVALID_MESSAGE",
            r#"StatusNotify/state: "open" is not a signalled state: OPEN, CLOSING or CLOSED"#,
        ),
        (
            status(&STATUS_OK.replace("bank-a", " ")),
            None,
            None,
            "INVALID_MESSAGE",
            r#"StatusNotify/institution: "" is not an identifier of 1 to 64 characters"#,
        ),
        (
            status(&STATUS_OK.replace("bank-a", &long)),
            None,
            None,
            "INVALID_MESSAGE",
            "StatusNotify/institution: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\"",
        ),
        (
            status(&STATUS_OK.replace("bank-a", "bank<b/>")),
            None,
            None,
            "INVALID_MESSAGE",
            r#"StatusNotify/institution: "<b>" is not simple content"#,
        ),
        (
            status(&STATUS_OK.replace(
                "<hub:time>",
                &format!("<hub:reason>{long_reason}</hub:reason><hub:time>"),
            )),
            None,
            None,
            "INVALID_MESSAGE",
            "StatusNotify/reason: \"rrr",
        ),
        (
            status(&STATUS_OK.replace("05:45:00Z", "05:45:00")),
            None,
            None,
            "INVALID_MESSAGE",
            r#"StatusNotify/time: "2025-11-22T05:45:00" is not a date-time with a time zone"#,
        ),
        (
            status(&STATUS_OK.replace("2025-11-22T05:45:00Z", "2025-11-22 05:45:00Z")),
            None,
            None,
            "INVALID_MESSAGE",
            "is not a date-time with a time zone",
        ),
        (
            status(&STATUS_OK.replace("2025-11-22T05:45:00Z", "yesterday")),
            None,
            None,
            "INVALID_MESSAGE",
            r#"StatusNotify/time: "yesterday""#,
        ),
        (
            balances("YWJj!GVm"),
            None,
            None,
            "INVALID_MESSAGE",
            "SubmitBalances/content: not base64: byte '!' at byte 4 of the element text",
        ),
        (
            balances("YWJj\n  ZGVm\n  Z\u{e9}=="),
            None,
            None,
            "INVALID_MESSAGE",
            "not base64: byte 0xC3 at byte 15 of the element text",
        ),
        (
            balances("YWJjZA"),
            None,
            None,
            "INVALID_MESSAGE",
            "not base64: padding missing or wrong",
        ),
        (
            balances("YWJjZ"),
            None,
            None,
            "INVALID_MESSAGE",
            "not base64: 5 symbols cannot be base64",
        ),
        (
            balances("YWJjZB=="),
            None,
            None,
            "INVALID_MESSAGE",
            "not base64: last symbol 'B' has bits that do not fit at byte 5",
        ),
        (
            balances("x").replace("<hub:fileName>b.csv</hub:fileName>", ""),
            None,
            None,
            "INVALID_MESSAGE",
            "SubmitBalances: missing element hub:fileName",
        ),
        (
            balances("x").replace("<hub:format>csv</hub:format>", "<hub:format/>"),
            None,
            None,
            "INVALID_MESSAGE",
            r#"SubmitBalances/format: "" is not an identifier"#,
        ),
    ];
    for (body, ct, action, code, message) in cases {
        let err = parse_request(body.as_bytes(), ct, action).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(message),
            "{body}\n  got: {text}\n want: {message}"
        );
        assert_eq!(err.hub_code().as_str(), code, "{text}");
        let expected = match code {
            "VERSION_MISMATCH" => FaultCode::VersionMismatch,
            "MUST_UNDERSTAND" => FaultCode::MustUnderstand,
            _ => FaultCode::Sender,
        };
        assert_eq!(err.fault_code(), expected, "{text}");
    }
}

#[test]
fn header_blocks_matter_only_when_addressed_to_cardhub_and_mandatory() {
    let with_header = |version: &str, header: &str| {
        format!(
            r#"<s:Envelope xmlns:s="{version}" xmlns:hub="{NAMESPACE}"><s:Header>{header}</s:Header><s:Body><hub:StatusNotify>{STATUS_OK}</hub:StatusNotify></s:Body></s:Envelope>"#
        )
    };
    let ignored = [
        (SOAP11, r#"<t:Trace xmlns:t="urn:t">1</t:Trace>"#),
        (SOAP11, r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="0"/>"#),
        (
            SOAP11,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="1" s:actor="urn:gateway"/>"#,
        ),
        (
            SOAP12,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="true" s:role="http://www.w3.org/2003/05/soap-envelope/role/none"/>"#,
        ),
        (
            SOAP12,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="false"/>"#,
        ),
    ];
    for (version, header) in ignored {
        assert!(
            parse_request(with_header(version, header).as_bytes(), None, None).is_ok(),
            "{header}"
        );
    }
    let refused = [
        (
            SOAP11,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="1" s:actor="http://schemas.xmlsoap.org/soap/actor/next"/>"#,
        ),
        (
            SOAP12,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="true"/>"#,
        ),
        (
            SOAP12,
            r#"<t:Trace xmlns:t="urn:t" s:mustUnderstand="1" s:role="http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"/>"#,
        ),
    ];
    for (version, header) in refused {
        let err = parse_request(with_header(version, header).as_bytes(), None, None).unwrap_err();
        assert_eq!(err.fault_code(), FaultCode::MustUnderstand, "{header}");
    }
}

#[test]
fn the_size_limit_is_checked_before_parsing() {
    let body = sample("submit-balances-request.soap11.xml");
    let err = parse_request_limited(body.as_bytes(), None, None, 100).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("request body is {} bytes; the limit is 100", body.len())
    );
    assert_eq!(err.hub_code(), HubFaultCode::RequestTooLarge);
    assert!(parse_request_limited(body.as_bytes(), None, None, body.len()).is_ok());
    // The reader's other limits still hold: depth.
    let deep = envelope11(&format!("{}{}", "<a>".repeat(80), "</a>".repeat(80)));
    let err = parse(&deep).unwrap_err();
    assert!(err.to_string().contains("max_depth"), "{err}");
}

#[test]
fn content_type_parameters_are_read_like_http_does() {
    let params = parameters(r#" charset=UTF-8 ; Action = "urn:a;b\"c" ;flag; x="" "#);
    assert_eq!(
        params,
        [
            ("charset".into(), "UTF-8".into()),
            ("action".into(), "urn:a;b\"c".into()),
            ("flag".into(), String::new()),
            ("x".into(), String::new()),
        ]
    );
    assert_eq!(parameters(""), []);
    assert_eq!(
        fault_version(Some("application/soap+xml")),
        SoapVersion::V12
    );
    assert_eq!(
        fault_version(Some("text/xml; charset=utf-8")),
        SoapVersion::V11
    );
    assert_eq!(fault_version(Some("text/plain")), SoapVersion::V11);
    assert_eq!(
        fault_version(Some("application/soap+xml; charset=latin1")),
        SoapVersion::V12
    );
    assert_eq!(fault_version(None), SoapVersion::V11);
    // SOAP 1.1 has no action parameter: it is not read there.
    let v11 = status(STATUS_OK);
    let ct = r#"text/xml; action="urn:cardhub:hub:v1#SubmitBalances""#;
    assert!(parse_request(v11.as_bytes(), Some(ct), None).is_ok());
}
