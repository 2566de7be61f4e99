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
