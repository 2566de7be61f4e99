//! The adapter engine: an adapter file compiled once — templates, paths and
//! columns parsed, codes mapped, transport built — and called per request.
//!
//! Outcomes stay distinct, as the stand-in layer needs them: an answer
//! (mapped to DE 39), a SOAP fault, an HTTP error status, a malformed answer,
//! a timeout, an unreachable system.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::time::Instant;

use super::AdapterError;
use super::file::{
    AdapterFile, Align, AmountFormat, AmountSource, AuthKind, Column, Operation, RecordEncoding,
    Source, Transport,
};
use super::fixed::{FixedTcp, FixedTcpConfig};
use super::http::HttpTransport;
use super::soap::{self, UsernameToken, Version};
use super::template::{RenderContext, Template};
use super::xml::{self, Document, NodeId};
use crate::hub::account_system::{AccountAnswer, AccountError, AccountRequest, AccountSystem};
use crate::hub::model::Balances;
use crate::iso8583::fields::ResponseCode;
use crate::money::Money;

/// First pause before repeating an idempotent call; doubles each time.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A compiled adapter.
pub struct Adapter {
    name: String,
    wire: Wire,
    operations: BTreeMap<Operation, Compiled>,
    result_codes: HashMap<String, ResponseCode>,
    default_code: ResponseCode,
    fault_code: Option<xml::Path>,
    fault_codes: HashMap<String, ResponseCode>,
    wsse: Option<UsernameToken>,
    limits: xml::Limits,
}

/// How requests travel.
enum Wire {
    Soap(Version, HttpTransport),
    XmlHttp(HttpTransport),
    Fixed(FixedTcp, RecordEncoding),
}

struct Compiled {
    action: Option<String>,
    body: Body,
    response: Response,
    retry: bool,
}

enum Body {
    Xml(Template),
    Record(Vec<RecordField>),
}

struct RecordField {
    template: Template,
    length: usize,
    align: Align,
}

struct Response {
    result_code: Src,
    auth_id: Option<Src>,
    available: Option<AmountSrc>,
    ledger: Option<AmountSrc>,
    message: Option<Src>,
}

enum Src {
    Path(xml::Path),
    Column(Column),
}

struct AmountSrc {
    at: Src,
    format: AmountFormat,
    sign: Option<Column>,
}

/// Where an answer's values are read from.
enum Answer<'a> {
    Xml(&'a Document, NodeId),
    Record(&'a str),
}

impl Adapter {
    /// Reads and compiles an adapter file.
    ///
    /// # Errors
    /// [`AdapterError`] naming the file and every problem in it.
    pub fn load(path: &Path) -> Result<Adapter, AdapterError> {
        let text = std::fs::read_to_string(path).map_err(|source| AdapterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Adapter::from_toml(&text, base).map_err(|e| e.in_file(path))
    }

    /// Compiles adapter TOML; `base` anchors relative paths (TLS files).
    ///
    /// # Errors
    /// [`AdapterError::Syntax`] (with line and column) or
    /// [`AdapterError::Invalid`] listing every problem.
    pub fn from_toml(text: &str, base: &Path) -> Result<Adapter, AdapterError> {
        let file: AdapterFile = toml::from_str(text).map_err(|e| AdapterError::Syntax {
            origin: "adapter".into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        compile(file, base)
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the request an operation would send (the SOAP body's child,
    /// the XML document, or the record), for checks and golden files.
    ///
    /// # Errors
    /// [`AccountError::Unsupported`] when the adapter has no such operation.
    pub fn render(
        &self,
        operation: Operation,
        request: &AccountRequest,
    ) -> Result<String, AccountError> {
        let compiled = self.operation(operation)?;
        let ctx = RenderContext {
            request,
            now: Timestamp::now(),
            sequence: "",
        };
        Ok(render_body(&compiled.body, &ctx))
    }

    fn operation(&self, operation: Operation) -> Result<&Compiled, AccountError> {
        self.operations
            .get(&operation)
            .ok_or(AccountError::Unsupported(operation.as_str()))
    }

    /// Calls the account system; idempotent operations are repeated on
    /// transport failures until the deadline.
    ///
    /// # Errors
    /// An [`AccountError`] for every outcome that is not an answer.
    pub async fn call(
        &self,
        operation: Operation,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let compiled = self.operation(operation)?;
        let mut pause = RETRY_PAUSE;
        loop {
            let outcome = self.call_once(compiled, request).await;
            let again = compiled.retry
                && matches!(
                    outcome,
                    Err(AccountError::Unreachable(_) | AccountError::HttpStatus(500..))
                )
                && Instant::now() + pause < request.deadline;
            if !again {
                return outcome;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    async fn call_once(
        &self,
        compiled: &Compiled,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let wire_request = self.encode(compiled, request);
        match &self.wire {
            Wire::Soap(version, http) => {
                let action = compiled.action.as_deref();
                let answer = http
                    .post(
                        Bytes::from(wire_request),
                        &soap::content_type(*version, action),
                        soap::soap_action_header(*version, action).as_deref(),
                        request.deadline,
                    )
                    .await?;
                self.decode(compiled, answer.status, &answer.body, request)
            }
            Wire::XmlHttp(http) => {
                let answer = http
                    .post(
                        Bytes::from(wire_request),
                        "application/xml; charset=utf-8",
                        None,
                        request.deadline,
                    )
                    .await?;
                self.decode(compiled, answer.status, &answer.body, request)
            }
            Wire::Fixed(tcp, _) => {
                let answer = tcp.call(wire_request, request.deadline).await?;
                self.decode(compiled, 200, &answer, request)
            }
        }
    }

    /// The bytes an operation sends for a request: the SOAP envelope (with
    /// its WS-Security header), the XML document, or the encoded record.
    ///
    /// # Errors
    /// [`AccountError::Unsupported`] when the adapter has no such operation.
    pub fn encode_request(
        &self,
        operation: Operation,
        request: &AccountRequest,
    ) -> Result<Vec<u8>, AccountError> {
        Ok(self.encode(self.operation(operation)?, request))
    }

    /// Reads an answer to an operation: an HTTP status and body, or a record
    /// (status 200).
    ///
    /// # Errors
    /// An [`AccountError`] for a fault, an error status or a malformed answer.
    pub fn decode_answer(
        &self,
        operation: Operation,
        status: u16,
        body: &[u8],
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        self.decode(self.operation(operation)?, status, body, request)
    }

    fn encode(&self, compiled: &Compiled, request: &AccountRequest) -> Vec<u8> {
        let now = Timestamp::now();
        let ctx = RenderContext {
            request,
            now,
            sequence: "",
        };
        let body = render_body(&compiled.body, &ctx);
        match &self.wire {
            Wire::Soap(version, _) => {
                let header = self.wsse.as_ref().map(|token| {
                    let mut h = String::new();
                    soap::wsse_header(token, now, &soap::wsse_nonce(), &mut h);
                    h
                });
                let mut envelope = String::with_capacity(body.len() + 512);
                soap::envelope(*version, header.as_deref(), &body, &mut envelope);
                envelope.into_bytes()
            }
            Wire::XmlHttp(_) => body.into_bytes(),
            Wire::Fixed(_, encoding) => encode_record(&body, *encoding),
        }
    }

    fn decode(
        &self,
        compiled: &Compiled,
        status: u16,
        body: &[u8],
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        match &self.wire {
            Wire::Soap(version, _) => {
                self.read_xml(status, body, Some(*version), &compiled.response, request)
            }
            Wire::XmlHttp(_) => self.read_xml(status, body, None, &compiled.response, request),
            Wire::Fixed(_, encoding) => {
                let text = decode_record(body, *encoding);
                self.read(&Answer::Record(&text), &compiled.response, request)
            }
        }
    }

    /// Reads an XML (or SOAP) answer.
    fn read_xml(
        &self,
        status: u16,
        body: &[u8],
        version: Option<Version>,
        response: &Response,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let ok_status = (200..300).contains(&status);
        let doc = match Document::parse(body, &self.limits) {
            Ok(doc) => doc,
            Err(_) if !ok_status => return Err(AccountError::HttpStatus(status)),
            Err(e) => return Err(AccountError::Malformed(e.to_string())),
        };
        let base = match version {
            None => doc.root(),
            Some(v) => match soap::body(&doc, v) {
                Ok(body) => {
                    if let Some(fault) = soap::fault(&doc, body, v) {
                        return self.fault(&doc, fault);
                    }
                    body
                }
                Err(_) if !ok_status => return Err(AccountError::HttpStatus(status)),
                Err(e) => return Err(AccountError::Malformed(e.to_string())),
            },
        };
        if !ok_status {
            return Err(AccountError::HttpStatus(status));
        }
        self.read(&Answer::Xml(&doc, base), response, request)
    }

    /// A SOAP fault: a decline when its code is mapped, otherwise no answer.
    fn fault(&self, doc: &Document, fault: soap::Fault) -> Result<AccountAnswer, AccountError> {
        let vendor_code = match (&self.fault_code, fault.detail) {
            (Some(path), Some(detail)) => doc.select(path, detail).map(str::to_string),
            _ => None,
        }
        .unwrap_or_else(|| fault.code.clone());
        match self.fault_codes.get(&vendor_code) {
            Some(code) => Ok(AccountAnswer {
                code: *code,
                raw_code: vendor_code,
                auth_id: None,
                balances: None,
                message: Some(fault.reason),
            }),
            None => Err(AccountError::Fault {
                code: vendor_code,
                message: fault.reason,
            }),
        }
    }

    /// Maps the values of an answer.
    fn read(
        &self,
        answer: &Answer<'_>,
        response: &Response,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let raw_code = value(answer, &response.result_code)
            .ok_or_else(|| AccountError::Malformed("no result code in the answer".into()))?;
        let code = self
            .result_codes
            .get(raw_code.as_str())
            .copied()
            .unwrap_or(self.default_code);
        let auth_id = response
            .auth_id
            .as_ref()
            .and_then(|s| value(answer, s))
            .filter(|a| !a.is_empty());
        let amount = |s: &Option<AmountSrc>| -> Result<Option<i64>, AccountError> {
            s.as_ref()
                .map(|s| amount(answer, s, request))
                .transpose()
                .map(Option::flatten)
        };
        let balances = match (amount(&response.available)?, amount(&response.ledger)?) {
            (Some(available), Some(ledger)) => Some(Balances { available, ledger }),
            (Some(available), None) => Some(Balances {
                available,
                ledger: available,
            }),
            _ => None,
        };
        let message = response.message.as_ref().and_then(|s| value(answer, s));
        Ok(AccountAnswer {
            code,
            raw_code,
            auth_id,
            balances,
            message,
        })
    }
}

fn render_body(body: &Body, ctx: &RenderContext<'_>) -> String {
    let mut out = String::with_capacity(1024);
    match body {
        Body::Xml(t) => t.render(ctx, &mut out),
        Body::Record(fields) => {
            let mut value = String::new();
            for f in fields {
                value.clear();
                f.template.render(ctx, &mut value);
                let mut v: String = value.chars().take(f.length).collect();
                let pad = f.length - v.chars().count();
                match f.align {
                    Align::Left => v.extend(std::iter::repeat_n(' ', pad)),
                    Align::Right => v.insert_str(0, &"0".repeat(pad)),
                }
                out.push_str(&v);
            }
        }
    }
    out
}

/// A value of the answer, trimmed.
fn value(answer: &Answer<'_>, src: &Src) -> Option<String> {
    match (answer, src) {
        (Answer::Xml(doc, base), Src::Path(p)) => {
            doc.select(p, *base).map(|v| v.trim().to_string())
        }
        (Answer::Record(text), Src::Column(c)) => column(text, *c).map(|v| v.trim().to_string()),
        _ => None,
    }
}

fn column(text: &str, c: Column) -> Option<&str> {
    text.get(c.start..c.start + c.length)
}

/// An amount of the answer in minor units of the request's currency;
/// `None` when the answer does not carry it.
fn amount(
    answer: &Answer<'_>,
    src: &AmountSrc,
    request: &AccountRequest,
) -> Result<Option<i64>, AccountError> {
    let Some(text) = value(answer, &src.at).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bad = || AccountError::Malformed(format!("amount {text:?} cannot be read"));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let minor = match src.format {
        AmountFormat::Minor => digits.parse::<i64>().map_err(|_| bad())?,
        AmountFormat::Decimal => {
            let money = Money::parse_decimal(digits, request.amount.currency).map_err(|_| bad())?;
            i64::try_from(money.minor).map_err(|_| bad())?
        }
    };
    let signed_by_column = match (answer, src.sign) {
        (Answer::Record(text), Some(c)) => matches!(column(text, c), Some("-" | "D")),
        _ => false,
    };
    Ok(Some(if negative || signed_by_column {
        -minor
    } else {
        minor
    }))
}

fn encode_record(text: &str, encoding: RecordEncoding) -> Vec<u8> {
    let latin1 = text.chars().map(|c| u8::try_from(c).unwrap_or(b'?'));
    match encoding {
        RecordEncoding::Ascii => latin1.collect(),
        RecordEncoding::Ebcdic => latin1.map(crate::iso8583::ebcdic::from_latin1).collect(),
    }
}

fn decode_record(bytes: &[u8], encoding: RecordEncoding) -> String {
    bytes
        .iter()
        .map(|&b| match encoding {
            RecordEncoding::Ascii => char::from(b),
            RecordEncoding::Ebcdic => char::from(crate::iso8583::ebcdic::to_latin1(b)),
        })
        .collect()
}

/// Compiles a parsed file, collecting every problem.
fn compile(file: AdapterFile, base: &Path) -> Result<Adapter, AdapterError> {
    let mut problems = Vec::new();
    let xml_wire = file.transport != Transport::FixedTcp;
    let mut operations = BTreeMap::new();
    for (op, def) in &file.operations {
        let at = format!("operations.{}", op.as_str());
        let body = if xml_wire {
            if !def.record.is_empty() {
                problems.push(format!("{at}.record: only for transport fixed-tcp"));
            }
            match def.template.as_deref() {
                None => {
                    problems.push(format!("{at}.template: missing"));
                    None
                }
                Some(t) => Template::compile(t, &file.values, true)
                    .map(Body::Xml)
                    .map_err(|e| problems.push(format!("{at}.template: {e}")))
                    .ok(),
            }
        } else {
            if def.template.is_some() {
                problems.push(format!("{at}.template: transport fixed-tcp uses record"));
            }
            let fields: Vec<RecordField> = def
                .record
                .iter()
                .filter_map(|f| {
                    Template::compile(&f.value, &file.values, false)
                        .map(|template| RecordField {
                            template,
                            length: f.length,
                            align: f.align,
                        })
                        .map_err(|e| problems.push(format!("{at}.record.{}: {e}", f.name)))
                        .ok()
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
        if def.retry && !matches!(op, Operation::Advice | Operation::Reverse) {
            problems.push(format!(
                "{at}.retry: only advice and reverse are idempotent"
            ));
        }
        if let (Some(body), Some(result_code)) = (body, result_code) {
            operations.insert(
                *op,
                Compiled {
                    action: def.soap_action.clone(),
                    body,
                    response: Response {
                        result_code,
                        auth_id,
                        available,
                        ledger,
                        message,
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
    let fault_codes: HashMap<String, ResponseCode> = file
        .faults
        .map
        .iter()
        .filter_map(|(k, v)| {
            de39(v, &format!("faults.map.{k}"), &mut problems).map(|c| (k.clone(), c))
        })
        .collect();
    let fault_code = file.faults.code.as_ref().and_then(|p| {
        xml::Path::compile(p, &file.namespaces)
            .map_err(|e| problems.push(format!("faults.code: {e}")))
            .ok()
    });
    let (basic, wsse) = auth(&file, &mut problems);
    let limits = xml::Limits::default();
    let wire = wire(&file, base, basic, &limits, &mut problems);
    match (wire, default_code) {
        (Some(wire), Some(default_code)) if problems.is_empty() => Ok(Adapter {
            name: file.name,
            wire,
            operations,
            result_codes,
            default_code,
            fault_code,
            fault_codes,
            wsse,
            limits,
        }),
        _ => Err(AdapterError::invalid(problems)),
    }
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
        Transport::XmlHttp => http(problems).map(Wire::XmlHttp),
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
            Some(Wire::Fixed(FixedTcp::new(config), records.encoding))
        }
    }
}

impl AccountSystem for Adapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn authorize<'a>(
        &'a self,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.call(Operation::Authorize, r))
    }

    fn load<'a>(
        &'a self,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.call(Operation::Load, r))
    }

    fn reverse<'a>(
        &'a self,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.call(Operation::Reverse, r))
    }

    fn advice<'a>(
        &'a self,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.call(Operation::Advice, r))
    }

    fn balance_inquiry<'a>(
        &'a self,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(self.call(Operation::BalanceInquiry, r))
    }
}
