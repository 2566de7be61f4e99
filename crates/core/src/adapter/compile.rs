//! Compiling an adapter file: every template, path, column and code checked
//! and parsed once, the transport built; every problem collected, so a file
//! is refused whole with a complete list.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use jiff::tz::TimeZone;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::AdapterError;
use super::engine::{Adapter, AmountSrc, Body, Compiled, Response, Src, Wire};
use super::faults::Faults;
use super::file::{
    AdapterFile, AmountSource, AuthKind, Operation, OperationFile, Source, Transport,
};
use super::fixed::{FixedTcp, FixedTcpConfig};
use super::http::{self, HttpCall, HttpTransport};
use super::record::{AnswerLayout, RecordField};
use super::soap::{self, UsernameToken, Version};
use super::template::Template;
use crate::encoding::Encoding;
use crate::iso8583::fields::ResponseCode;
use crate::xml;

/// Compiles a parsed file, collecting every problem.
pub(super) fn compile(file: AdapterFile, base: &Path) -> Result<Adapter, AdapterError> {
    let mut problems = Vec::new();
    let xml_wire = file.transport != Transport::FixedTcp;
    let (http_headers, body_encoding) = http_settings(&file, &mut problems);
    let zone = time_zone(&file, &mut problems);
    let mut operations = BTreeMap::new();
    for (op, def) in &file.operations {
        let at = format!("operations.{}", op.as_str());
        let http = http_call(&file, &at, def, &http_headers, &mut problems);
        let body = if xml_wire {
            if !def.record.is_empty() {
                problems.push(format!("{at}.record: only for transport fixed-tcp"));
            }
            if file.transport == Transport::XmlHttp
                && let Some(declared) = def
                    .template
                    .as_deref()
                    .and_then(|t| xml::declared_encoding(t.as_bytes()))
                && Encoding::from_label(&declared) != Some(body_encoding)
            {
                problems.push(format!(
                    "{at}.template: declares encoding {declared:?}, but the body is sent in \
                     {body_encoding} (the charset of [http] content_type)"
                ));
            }
            match def.template.as_deref() {
                None => {
                    problems.push(format!("{at}.template: missing"));
                    None
                }
                Some(t) => Template::compile(t, &file.values, &zone, true)
                    .map_err(|e| problems.push(format!("{at}.template: {e}")))
                    .ok()
                    .filter(|t| {
                        clear_pan_allowed(t, &file, &format!("{at}.template"), &mut problems)
                    })
                    .map(Body::Xml),
            }
        } else {
            if def.template.is_some() {
                problems.push(format!("{at}.template: transport fixed-tcp uses record"));
            }
            let fields: Vec<RecordField> = def
                .record
                .iter()
                .filter_map(|f| {
                    Template::compile(&f.value, &file.values, &zone, false)
                        .map_err(|e| problems.push(format!("{at}.record.{}: {e}", f.name)))
                        .ok()
                        .filter(|t| {
                            let at = format!("{at}.record.{}", f.name);
                            clear_pan_allowed(t, &file, &at, &mut problems)
                        })
                        .map(|template| RecordField {
                            name: f.name.clone(),
                            template,
                            length: f.length,
                            align: f.align,
                        })
                })
                .collect();
            if def.record.is_empty() {
                problems.push(format!("{at}.record: missing"));
            }
            Some(Body::Record(fields))
        };
        if matches!(file.transport, Transport::Soap11 | Transport::Soap12)
            && def.soap_action.is_none()
        {
            problems.push(format!("{at}.soap_action: missing (SOAP transports)"));
        }
        let source = |s: &Source, what: &str, problems: &mut Vec<String>| -> Option<Src> {
            match (s, xml_wire) {
                (Source::Path(p), true) => xml::Path::compile(p, &file.namespaces)
                    .map(Src::Path)
                    .map_err(|e| problems.push(format!("{at}.response.{what}: {e}")))
                    .ok(),
                (Source::Column(c), false) => Some(Src::Column(*c)),
                _ => {
                    problems.push(format!(
                        "{at}.response.{what}: use {} for this transport",
                        if xml_wire {
                            "a path"
                        } else {
                            "a { start, length } column"
                        }
                    ));
                    None
                }
            }
        };
        let r = &def.response;
        let result_code = source(&r.result_code, "result_code", &mut problems);
        let auth_id = r
            .auth_id
            .as_ref()
            .and_then(|s| source(s, "auth_id", &mut problems));
        let message = r
            .message
            .as_ref()
            .and_then(|s| source(s, "message", &mut problems));
        let amount_src = |a: &Option<AmountSource>, what: &str, problems: &mut Vec<String>| {
            a.as_ref().and_then(|a| {
                source(&a.at, what, problems).map(|at| AmountSrc {
                    at,
                    format: a.format,
                    sign: a.sign,
                })
            })
        };
        let available = amount_src(&r.available, "available", &mut problems);
        let ledger = amount_src(&r.ledger, "ledger", &mut problems);
        let layout = match &file.records {
            Some(records) if !xml_wire => {
                let at = format!("{at}.response");
                AnswerLayout::compile(r, records.sequence, records.encoding, &at, &mut problems)
            }
            _ => {
                if r.length.is_some() || r.record_type.is_some() {
                    problems.push(format!(
                        "{at}.response: length and record_type are only for transport fixed-tcp"
                    ));
                }
                AnswerLayout::default()
            }
        };
        if def.retry && !matches!(op, Operation::Advice | Operation::Reverse) {
            problems.push(format!(
                "{at}.retry: only advice and reverse are idempotent"
            ));
        }
        if let (Some(body), Some(result_code)) = (body, result_code) {
            operations.insert(
                *op,
                Compiled {
                    http,
                    body,
                    response: Response {
                        result_code,
                        auth_id,
                        available,
                        ledger,
                        message,
                        layout,
                    },
                    retry: def.retry,
                },
            );
        }
    }
    if file.operations.is_empty() {
        problems.push("operations: at least one operation is needed".into());
    }
    let de39 = |code: &str, at: &str, problems: &mut Vec<String>| {
        ResponseCode::new(code)
            .map_err(|e| problems.push(format!("{at}: {e}")))
            .ok()
    };
    let default_code = de39(
        &file.result_codes.default,
        "result_codes.default",
        &mut problems,
    );
    let result_codes: HashMap<String, ResponseCode> = file
        .result_codes
        .map
        .iter()
        .filter_map(|(k, v)| {
            de39(v, &format!("result_codes.map.{k}"), &mut problems).map(|c| (k.clone(), c))
        })
        .collect();
    let faults = Faults::compile(
        &file.faults,
        &file.namespaces,
        soap_version(file.transport),
        &mut problems,
    );
    let (basic, wsse) = auth(&file, &mut problems);
    let limits = xml::Limits::default();
    let wire = wire(&file, base, basic, body_encoding, &limits, &mut problems);
    match (wire, default_code) {
        (Some(wire), Some(default_code)) if problems.is_empty() => Ok(Adapter {
            name: file.name,
            wire,
            operations,
            result_codes,
            default_code,
            faults,
            wsse,
            limits,
        }),
        _ => Err(AdapterError::invalid(problems)),
    }
}

/// `[http]`: the headers of every request (with the content type of
/// `xml-http`) and the encoding `xml-http` bodies are sent in.
fn http_settings(file: &AdapterFile, problems: &mut Vec<String>) -> (HeaderMap, Encoding) {
    let mut headers = HeaderMap::new();
    let mut encoding = Encoding::Utf8;
    if file.transport == Transport::FixedTcp {
        if file.http.content_type.is_some() || !file.http.headers.is_empty() {
            problems.push("http: only for HTTP transports".into());
        }
        return (headers, encoding);
    }
    add_headers(&file.http.headers, "http.headers", &mut headers, problems);
    let content_type = file.http.content_type.as_deref();
    if file.transport != Transport::XmlHttp {
        if content_type.is_some() {
            problems
                .push("http.content_type: only for transport xml-http (SOAP sets its own)".into());
        }
        return (headers, encoding);
    }
    let content_type = content_type.unwrap_or("application/xml; charset=utf-8");
    if let Some(charset) = http::charset(content_type) {
        match Encoding::from_label(charset) {
            Some(known) => encoding = known,
            None => problems.push(format!(
                "http.content_type: charset {charset:?} is not one cardhub writes \
                 (utf-8, us-ascii, iso-8859-1, windows-1252)"
            )),
        }
    }
    match HeaderValue::from_str(content_type) {
        Ok(value) => {
            headers.insert(CONTENT_TYPE, value);
        }
        Err(_) => problems.push(format!(
            "http.content_type: {content_type:?} is not a header value"
        )),
    }
    (headers, encoding)
}

/// An operation's path and headers: `[http]`'s, the SOAP content type and
/// action, its own.
fn http_call(
    file: &AdapterFile,
    at: &str,
    def: &OperationFile,
    common: &HeaderMap,
    problems: &mut Vec<String>,
) -> HttpCall {
    if file.transport == Transport::FixedTcp {
        if def.path.is_some() || !def.headers.is_empty() {
            problems.push(format!(
                "{at}: path and headers are only for HTTP transports"
            ));
        }
        return HttpCall::default();
    }
    let mut headers = common.clone();
    if let Some(version) = soap_version(file.transport) {
        let action = def.soap_action.as_deref();
        let soap_action = soap::soap_action_header(version, action)
            .map(|value| (HeaderName::from_static("soapaction"), value));
        let content_type = (CONTENT_TYPE, soap::content_type(version, action));
        for (name, value) in std::iter::once(content_type).chain(soap_action) {
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    headers.insert(name, value);
                }
                Err(_) => problems.push(format!("{at}.soap_action: not usable in a header")),
            }
        }
    }
    add_headers(
        &def.headers,
        &format!("{at}.headers"),
        &mut headers,
        problems,
    );
    if let Some(path) = &def.path
        && let Err(reason) = http::check_path(path, &file.endpoint.urls)
    {
        problems.push(format!("{at}.path: {reason}"));
    }
    HttpCall::new(def.path.as_deref(), headers)
}

/// Adds a `headers` table of the file (at key `at`) to `headers`; a header
/// of the same name is replaced.
fn add_headers(
    table: &BTreeMap<String, String>,
    at: &str,
    headers: &mut HeaderMap,
    problems: &mut Vec<String>,
) {
    for (name, value) in table {
        match http::static_header(name, value) {
            Ok((name, value)) => {
                headers.insert(name, value);
            }
            Err(reason) => problems.push(format!("{at}.{name}: {reason}")),
        }
    }
}

/// The zone of `time_zone` (UTC without one), from the system's time zone
/// database.
fn time_zone(file: &AdapterFile, problems: &mut Vec<String>) -> TimeZone {
    let Some(name) = &file.time_zone else {
        return TimeZone::UTC;
    };
    TimeZone::get(name).unwrap_or_else(|e| {
        problems.push(format!(
            "time_zone: {name:?} is not an IANA time zone (like \"Europe/Stockholm\"): {e}"
        ));
        TimeZone::UTC
    })
}

/// The SOAP version of a transport, if it is SOAP.
fn soap_version(transport: Transport) -> Option<Version> {
    match transport {
        Transport::Soap11 => Some(Version::V11),
        Transport::Soap12 => Some(Version::V12),
        Transport::XmlHttp | Transport::FixedTcp => None,
    }
}

/// A template may write the clear PAN only when the file says so.
fn clear_pan_allowed(
    t: &Template,
    file: &AdapterFile,
    at: &str,
    problems: &mut Vec<String>,
) -> bool {
    let allowed = file.send_clear_pan || !t.uses_clear_pan();
    if !allowed {
        problems.push(format!(
            "{at}: {{pan}} sends the clear card number; set send_clear_pan = true to allow it"
        ));
    }
    allowed
}

/// The credentials of `[auth]`: HTTP basic, or a WS-Security token.
fn auth(
    file: &AdapterFile,
    problems: &mut Vec<String>,
) -> (Option<(String, String)>, Option<UsernameToken>) {
    let Some(a) = &file.auth else {
        return (None, None);
    };
    let password = match (&a.password_env, &a.password) {
        (Some(var), None) => std::env::var(var)
            .map_err(|_| {
                problems.push(format!(
                    "auth.password_env: environment variable {var} is not set"
                ))
            })
            .ok(),
        (None, Some(p)) => Some(p.clone()),
        _ => {
            problems.push("auth: give exactly one of password_env and password".into());
            None
        }
    };
    let Some(password) = password else {
        return (None, None);
    };
    let soap = matches!(file.transport, Transport::Soap11 | Transport::Soap12);
    match a.kind {
        AuthKind::Basic if file.transport != Transport::FixedTcp => {
            (Some((a.username.clone(), password)), None)
        }
        AuthKind::WsseText | AuthKind::WsseDigest if soap => (
            None,
            Some(UsernameToken {
                username: a.username.clone(),
                password,
                digest: a.kind == AuthKind::WsseDigest,
            }),
        ),
        _ => {
            problems.push(format!(
                "auth.kind: {:?} does not fit transport {:?}",
                a.kind, file.transport
            ));
            (None, None)
        }
    }
}

/// The transport of the file.
fn wire(
    file: &AdapterFile,
    base: &Path,
    basic: Option<(String, String)>,
    body_encoding: Encoding,
    limits: &xml::Limits,
    problems: &mut Vec<String>,
) -> Option<Wire> {
    let e = &file.endpoint;
    let http = |problems: &mut Vec<String>| {
        if !e.addresses.is_empty() {
            problems.push("endpoint.addresses: only for transport fixed-tcp".into());
        }
        HttpTransport::new(e, file.tls.as_ref(), base, basic.clone(), limits.max_bytes)
            .map_err(|err| problems.extend(err.problems()))
            .ok()
    };
    match file.transport {
        Transport::Soap11 => http(problems).map(|h| Wire::Soap(Version::V11, h)),
        Transport::Soap12 => http(problems).map(|h| Wire::Soap(Version::V12, h)),
        Transport::XmlHttp => http(problems).map(|h| Wire::XmlHttp(h, body_encoding)),
        Transport::FixedTcp => {
            let Some(records) = &file.records else {
                problems.push("records: missing (transport fixed-tcp)".into());
                return None;
            };
            if e.addresses.is_empty() || !e.urls.is_empty() {
                problems.push("endpoint: fixed-tcp needs addresses and no urls".into());
                return None;
            }
            let config = FixedTcpConfig::from_file(e, records);
            if let Err(errors) = config.validate() {
                problems.extend(errors.iter().map(ToString::to_string));
                return None;
            }
            Some(Wire::Fixed(
                FixedTcp::new(config),
                records.encoding,
                std::time::Duration::from_millis(e.timeout_ms),
            ))
        }
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
