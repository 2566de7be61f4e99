//! The adapter engine: an adapter file compiled once — templates, paths and
//! columns parsed, codes mapped, transport built — and called per request.
//!
//! Outcomes stay distinct, as the stand-in layer needs them: an answer
//! (mapped to DE 39), a SOAP fault, an HTTP error status, a malformed answer,
//! a timeout, an unreachable system.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::time::Instant;

use super::AdapterError;
use super::faults::Faults;
use super::file::{AdapterFile, AmountFormat, Column, Operation};
use super::fixed::FixedTcp;
use super::http::{HttpCall, HttpTransport};
use super::record::{self, AnswerLayout, AnswerRecord, RecordField};
use super::soap::{self, UsernameToken, Version};
use super::template::{RenderContext, Template};
use crate::account::Balances;
use crate::account::{AccountAnswer, AccountError, AccountRequest, AccountSystem};
use crate::encoding::Encoding;
use crate::iso8583::fields::ResponseCode;
use crate::money::Money;
use crate::soap_writer;
use crate::xml::{self, Document, NodeId};

/// First pause before repeating an idempotent call; doubles each time.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Room for a rendered request: the shipped adapters' fit without growing.
const REQUEST_CAPACITY: usize = 2048;

/// A compiled adapter.
pub struct Adapter {
    pub(super) name: String,
    pub(super) wire: Wire,
    pub(super) operations: BTreeMap<Operation, Compiled>,
    pub(super) result_codes: HashMap<String, ResponseCode>,
    pub(super) default_code: ResponseCode,
    pub(super) faults: Faults,
    pub(super) wsse: Option<UsernameToken>,
    pub(super) limits: xml::Limits,
}

/// How requests travel.
pub(super) enum Wire {
    Soap(Version, HttpTransport),
    /// The transport, the encoding bodies are sent in.
    XmlHttp(HttpTransport, Encoding),
    /// The transport, the records' encoding, the per-call time limit.
    Fixed(FixedTcp, Encoding, Duration),
}

pub(super) struct Compiled {
    /// HTTP transports: path and headers.
    pub(super) http: HttpCall,
    pub(super) body: Body,
    pub(super) response: Response,
    pub(super) retry: bool,
}

pub(super) enum Body {
    Xml(Template),
    Record(Vec<RecordField>),
}

pub(super) struct Response {
    pub(super) result_code: Src,
    pub(super) auth_id: Option<Src>,
    pub(super) available: Option<AmountSrc>,
    pub(super) ledger: Option<AmountSrc>,
    pub(super) message: Option<Src>,
    /// `fixed-tcp`: the answer record's length and record type.
    pub(super) layout: AnswerLayout,
}

pub(super) enum Src {
    Path(xml::Path),
    Column(Column),
}

pub(super) struct AmountSrc {
    pub(super) at: Src,
    pub(super) format: AmountFormat,
    pub(super) sign: Option<Column>,
}

/// Where an answer's values are read from.
enum Answer<'a> {
    Xml(&'a Document, NodeId),
    Record(AnswerRecord<'a>),
}

/// An adapter file's text.
fn read_file(path: &Path) -> Result<String, AdapterError> {
    std::fs::read_to_string(path).map_err(|source| AdapterError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// An adapter file's keys, before compiling.
fn parse_file(text: &str) -> Result<AdapterFile, AdapterError> {
    toml::from_str(text).map_err(|e| AdapterError::Syntax {
        origin: "adapter".into(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

impl Adapter {
    /// Reads and compiles an adapter file.
    ///
    /// # Errors
    /// [`AdapterError`] naming the file and every problem in it.
    pub fn load(path: &Path) -> Result<Adapter, AdapterError> {
        let text = read_file(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Adapter::from_toml(&text, base).map_err(|e| e.in_file(path))
    }

    /// Reads and compiles an adapter file as [`Adapter::load`] does, and
    /// checks every `soap_action` against the binding of the WSDL the file
    /// names (`cardhub adapters check`; the hub itself does not read WSDLs).
    ///
    /// # Errors
    /// [`AdapterError`] naming the file and every problem in it, the
    /// actions the WSDL disagrees with among them.
    pub fn check(path: &Path) -> Result<Adapter, AdapterError> {
        let text = read_file(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let file = parse_file(&text).map_err(|e| e.in_file(path))?;
        let wsdl = super::wsdl::action_problems(&file, base)
            .unwrap_or_else(|e| vec![format!("wsdl: {e}")]);
        match super::compile::compile(file, base) {
            Ok(adapter) if wsdl.is_empty() => Ok(adapter),
            Ok(_) => Err(AdapterError::invalid(wsdl).in_file(path)),
            Err(AdapterError::Invalid { mut problems, .. }) => {
                problems.extend(wsdl);
                Err(AdapterError::invalid(problems).in_file(path))
            }
            Err(e) => Err(e.in_file(path)),
        }
    }

    /// Compiles adapter TOML; `base` anchors relative paths (TLS files).
    ///
    /// # Errors
    /// [`AdapterError::Syntax`] (with line and column) or
    /// [`AdapterError::Invalid`] listing every problem.
    pub fn from_toml(text: &str, base: &Path) -> Result<Adapter, AdapterError> {
        super::compile::compile(parse_file(text)?, base)
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
        match &compiled.body {
            Body::Xml(template) => Ok(render_xml(template, &ctx)),
            Body::Record(fields) => {
                let encoding = self.record_encoding();
                let record = record::render(fields, &ctx, encoding)?;
                let text = encoding
                    .decode(&record)
                    .map_err(|e| AccountError::Unsendable(format!("the rendered record: {e}")))?;
                Ok(text.into_owned())
            }
        }
    }

    /// The encoding of `fixed-tcp` records (the only records there are).
    fn record_encoding(&self) -> Encoding {
        match &self.wire {
            Wire::Fixed(_, encoding, _) => *encoding,
            Wire::Soap(..) | Wire::XmlHttp(..) => Encoding::Utf8,
        }
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
        let wire_request = self.encode(compiled, request)?;
        match &self.wire {
            Wire::Soap(_, http) | Wire::XmlHttp(http, _) => {
                let body = Bytes::from(wire_request);
                let answer = http
                    .post(body, &compiled.http, request.transport_deadline())
                    .await?;
                let charset = answer.charset.as_deref();
                self.decode(compiled, answer.status, &answer.body, charset, request)
            }
            Wire::Fixed(tcp, _, timeout) => {
                let deadline = request.transport_deadline().min(Instant::now() + *timeout);
                let answer = tcp.call(wire_request, deadline).await?;
                self.decode(compiled, 200, &answer, None, request)
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
        self.encode(self.operation(operation)?, request)
    }

    /// Reads an answer to an operation: an HTTP status and body (in the
    /// encoding its byte order mark or XML declaration names), or a record
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
        self.decode(self.operation(operation)?, status, body, None, request)
    }

    fn encode(
        &self,
        compiled: &Compiled,
        request: &AccountRequest,
    ) -> Result<Vec<u8>, AccountError> {
        let now = Timestamp::now();
        let ctx = RenderContext {
            request,
            now,
            sequence: "",
        };
        let template = match &compiled.body {
            Body::Record(fields) => return record::render(fields, &ctx, self.record_encoding()),
            Body::Xml(template) => template,
        };
        Ok(match &self.wire {
            Wire::Soap(version, _) => {
                let header = self.wsse.as_ref().map(|token| {
                    let mut h = String::new();
                    soap::wsse_header(token, now, &soap::wsse_nonce(), &mut h);
                    h
                });
                // One buffer: the body is rendered inside the envelope.
                let mut envelope = String::with_capacity(REQUEST_CAPACITY);
                soap_writer::open_envelope(*version, header.as_deref(), &mut envelope);
                template.render(&ctx, &mut envelope);
                soap_writer::close_envelope(&mut envelope);
                envelope.into_bytes()
            }
            Wire::XmlHttp(_, Encoding::Utf8) | Wire::Fixed(..) => {
                render_xml(template, &ctx).into_bytes()
            }
            Wire::XmlHttp(_, encoding) => {
                let body = render_xml(template, &ctx);
                let mut bytes = Vec::with_capacity(body.len());
                encoding
                    .encode(&body, &mut bytes)
                    .map_err(|e| AccountError::Unsendable(format!("request body: {e}")))?;
                bytes
            }
        })
    }

    /// Reads an answer; `charset` is the HTTP answer's, if it named one.
    fn decode(
        &self,
        compiled: &Compiled,
        status: u16,
        body: &[u8],
        charset: Option<&str>,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let response = &compiled.response;
        match &self.wire {
            Wire::Soap(version, _) => {
                self.read_xml(status, body, charset, Some(*version), response, request)
            }
            Wire::XmlHttp(..) => self.read_xml(status, body, charset, None, response, request),
            Wire::Fixed(_, encoding, _) => {
                response.layout.check(body, *encoding)?;
                let answer = Answer::Record(AnswerRecord::new(body, *encoding));
                self.read(&answer, response, request)
            }
        }
    }

    /// Reads an XML (or SOAP) answer.
    fn read_xml(
        &self,
        status: u16,
        body: &[u8],
        charset: Option<&str>,
        version: Option<Version>,
        response: &Response,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let ok_status = (200..300).contains(&status);
        let doc = match Document::parse_with_charset(body, charset, &self.limits) {
            Ok(doc) => doc,
            Err(_) if !ok_status => return Err(AccountError::HttpStatus(status)),
            Err(e) => return Err(AccountError::Malformed(e.to_string())),
        };
        let base = match version {
            None => doc.root(),
            Some(v) => match soap::body(&doc, v) {
                Ok(body) => {
                    if let Some(fault) = soap::fault(&doc, body, v) {
                        return self.faults.outcome(&doc, fault);
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

    /// Maps the values of an answer.
    fn read(
        &self,
        answer: &Answer<'_>,
        response: &Response,
        request: &AccountRequest,
    ) -> Result<AccountAnswer, AccountError> {
        let raw_code = value(answer, &response.result_code)?
            .ok_or_else(|| AccountError::Malformed("no result code in the answer".into()))?;
        let code = self
            .result_codes
            .get(raw_code.as_str())
            .copied()
            .unwrap_or(self.default_code);
        let auth_id = (response.auth_id.as_ref())
            .map(|s| value(answer, s))
            .transpose()?
            .flatten()
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
        let message = (response.message.as_ref())
            .map(|s| value(answer, s))
            .transpose()?
            .flatten();
        Ok(AccountAnswer {
            code,
            raw_code,
            auth_id,
            balances,
            message,
        })
    }
}

/// Renders an XML request body.
fn render_xml(template: &Template, ctx: &RenderContext<'_>) -> String {
    let mut out = String::with_capacity(REQUEST_CAPACITY);
    template.render(ctx, &mut out);
    out
}

/// A value of the answer, trimmed; `None` when the answer does not have it.
///
/// # Errors
/// [`AccountError::Malformed`] for a record column that is not text.
fn value(answer: &Answer<'_>, src: &Src) -> Result<Option<String>, AccountError> {
    Ok(value_ref(answer, src)?.map(Cow::into_owned))
}

/// [`value`], borrowed from the answer where it can be (amounts are read
/// without a copy).
fn value_ref<'a>(answer: &Answer<'a>, src: &Src) -> Result<Option<Cow<'a, str>>, AccountError> {
    Ok(match (answer, src) {
        (Answer::Xml(doc, base), Src::Path(p)) => doc.select(p, *base).map(|v| v.trim().into()),
        (Answer::Record(record), Src::Column(c)) => record.column(*c)?.map(|v| match v {
            Cow::Borrowed(v) => Cow::Borrowed(v.trim()),
            Cow::Owned(v) => Cow::Owned(v.trim().to_owned()),
        }),
        _ => None,
    })
}

/// An amount of the answer in minor units of the request's currency;
/// `None` when the answer does not carry it.
fn amount(
    answer: &Answer<'_>,
    src: &AmountSrc,
    request: &AccountRequest,
) -> Result<Option<i64>, AccountError> {
    let Some(text) = value_ref(answer, &src.at)?.filter(|t| !t.is_empty()) else {
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
        (Answer::Record(record), Some(c)) => match record.column(c)?.as_deref().map(str::trim) {
            Some("-" | "D") => true,
            Some("+" | "C" | "") => false,
            other => {
                return Err(AccountError::Malformed(format!(
                    "sign {other:?} is not +, -, C or D"
                )));
            }
        },
        _ => false,
    };
    Ok(Some(if negative || signed_by_column {
        -minor
    } else {
        minor
    }))
}

impl AccountSystem for Adapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a>(
        &'a self,
        operation: Operation,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(Adapter::call(self, operation, request))
    }
}
