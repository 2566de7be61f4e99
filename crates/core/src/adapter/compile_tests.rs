//! Tests of `compile`: what `cardhub adapters check` reports, key by key.
use super::*;

/// A small `xml-http` adapter with `extra` keys in the authorize operation
/// (`op`) and at the top level (`top`).
fn xml_http(top: &str, op: &str) -> String {
    format!(
        r#"name = "t"
transport = "xml-http"
{top}
[endpoint]
urls = ["http://127.0.0.1:9/v1"]

[operations.authorize]
template = """<?xml version="1.0" encoding="UTF-8"?><A>{{amount}}</A>"""
{op}
[operations.authorize.response]
result_code = "R/@code"

[result_codes]
default = "05"
map = {{ "0" = "00" }}
"#
    )
}

/// Every problem compiling `text` reports.
fn problems(text: &str) -> Vec<String> {
    match super::super::Adapter::from_toml(text, Path::new(".")) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems(),
    }
}

#[test]
fn http_settings_compile() {
    let top = r#"[http]
content_type = "application/xml; charset=utf-8"
headers = { X-Client = "cardhub" }"#;
    let op = r#"path = "auth"
headers = { X-Func = "AUTH" }"#;
    assert_eq!(problems(&xml_http(top, op)), Vec::<String>::new());
}

#[test]
fn http_settings_that_cannot_work_are_named() {
    let top = r#"[http]
content_type = "text/xml; charset=koi8-r"
headers = { Content-Type = "text/plain", Authorization = "Bearer x", Host = "h", "X Bad" = "1", X-Ok = "a\u0001b" }"#;
    let op = r#"path = "/auth"
headers = { SOAPAction = "x" }"#;
    assert_eq!(
        problems(&xml_http(top, op)),
        [
            "http.headers.Authorization: set by [auth]",
            "http.headers.Content-Type: set by [http] content_type (xml-http; SOAP sets its own)",
            "http.headers.Host: set by the transport",
            "http.headers.X Bad: \"X Bad\" is not a header name",
            "http.headers.X-Ok: \"a\\u{1}b\" is not a header value (control characters?)",
            "http.content_type: charset \"koi8-r\" is not one cardhub writes (utf-8, us-ascii, iso-8859-1, windows-1252)",
            "operations.authorize.headers.SOAPAction: set by soap_action",
            "operations.authorize.path: \"/auth\": give a path relative to the endpoint URLs (\"authorize\", not \"/authorize\")",
        ]
    );
}

#[test]
fn a_template_must_declare_the_encoding_it_is_sent_in() {
    let latin1 = "[http]\ncontent_type = \"text/xml; charset=ISO-8859-1\"";
    let got = problems(&xml_http(latin1, ""));
    assert_eq!(
        got,
        [
            "operations.authorize.template: declares encoding \"UTF-8\", but the body is sent in ISO-8859-1 (the charset of [http] content_type)"
        ]
    );
    let declared = xml_http(latin1, "").replace(r#"encoding="UTF-8""#, r#"encoding="latin1""#);
    assert_eq!(problems(&declared), Vec::<String>::new());
}

#[test]
fn http_settings_belong_to_http_transports() {
    let soap = xml_http("[http]\ncontent_type = \"text/xml\"", "")
        .replace("xml-http", "soap11")
        .replace(
            "[operations.authorize]\n",
            "[operations.authorize]\nsoap_action = \"a\"\n",
        )
        .replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, "");
    assert_eq!(
        problems(&soap),
        ["http.content_type: only for transport xml-http (SOAP sets its own)"]
    );
}

#[test]
fn time_zone_must_be_an_iana_zone() {
    let known = xml_http("time_zone = \"Europe/Stockholm\"", "");
    assert_eq!(problems(&known), Vec::<String>::new());
    let got = problems(&xml_http("time_zone = \"Europe/Stockhlom\"", ""));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "time_zone: \"Europe/Stockhlom\" is not an IANA time zone (like \"Europe/Stockholm\")"
        ),
        "{got:?}"
    );
}

/// A small `fixed-tcp` adapter whose authorize answer section gets `response`.
fn fixed_tcp(response: &str) -> String {
    format!(
        r#"name = "t"
transport = "fixed-tcp"

[endpoint]
addresses = ["127.0.0.1:9"]

[records]
framing = "two-byte"
sequence = {{ start = 4, length = 6 }}

[operations.authorize]
record = [{{ name = "CODE", length = 4, value = "AU01" }}, {{ name = "SEQ", length = 6, value = "{{sequence}}" }}]

[operations.authorize.response]
result_code = {{ start = 10, length = 2 }}
ledger = {{ at = {{ start = 12, length = 8 }}, sign = {{ start = 20, length = 1 }} }}
{response}

[result_codes]
default = "05"
map = {{ "AP" = "00" }}
"#
    )
}

#[test]
fn answer_layouts_compile() {
    let layout = "length = 21\nrecord_type = { start = 0, length = 4, value = \"AU02\" }";
    assert_eq!(problems(&fixed_tcp(layout)), Vec::<String>::new());
}

#[test]
fn answer_layouts_that_cannot_hold_their_columns_are_named() {
    let layout = "length = 20\nrecord_type = { start = 0, length = 4, value = \"AU2\" }";
    assert_eq!(
        problems(&fixed_tcp(layout)),
        [
            "operations.authorize.response.record_type.value: \"AU2\" is 3 bytes; the column is 4",
            "operations.authorize.response.ledger: columns 20..21 end past the answer's 20 bytes (operations.authorize.response.length)",
        ]
    );
    let layout = "length = 8\nrecord_type = { start = 6, length = 4, value = \"ÄU02\" }";
    assert_eq!(
        problems(&fixed_tcp(layout).replace("framing", "encoding = \"ascii\"\nframing")),
        [
            "operations.authorize.response.record_type.value: 'Ä' (U+00C4) cannot be written in US-ASCII",
            "records.sequence: columns 4..10 end past the answer's 8 bytes (operations.authorize.response.length)",
            "operations.authorize.response.result_code: columns 10..12 end past the answer's 8 bytes (operations.authorize.response.length)",
            "operations.authorize.response.ledger: columns 12..20 end past the answer's 8 bytes (operations.authorize.response.length)",
            "operations.authorize.response.ledger: columns 20..21 end past the answer's 8 bytes (operations.authorize.response.length)",
        ]
    );
    let xml = xml_http("", "").replace(
        "result_code = \"R/@code\"",
        "result_code = \"R/@code\"\nlength = 70",
    );
    assert_eq!(
        problems(&xml),
        ["operations.authorize.response: length and record_type are only for transport fixed-tcp"]
    );
}
