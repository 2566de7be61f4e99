//! The adapter file as written: one TOML file per vendor interface in
//! `adapters/`. The engine compiles it (templates and paths parsed once) and
//! refuses it whole when anything is wrong. Format: `docs/adapters.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::encoding::Encoding;

/// How requests reach the account system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// SOAP 1.1 over HTTP POST (`text/xml`, `SOAPAction` header).
    Soap11,
    /// SOAP 1.2 over HTTP POST (`application/soap+xml; action=…`).
    Soap12,
    /// A plain XML document over HTTP POST, no envelope.
    XmlHttp,
    /// Fixed-width records over a persistent TCP connection.
    FixedTcp,
}

pub use crate::account::Operation;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterFile {
    /// Name in logs, the journal and `[[institution]] adapter`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The WSDL this interface implements, relative to the adapter file;
    /// `cardhub adapters check` checks each `soap_action` against its binding.
    pub wsdl: Option<PathBuf>,
    pub transport: Transport,
    pub endpoint: EndpointFile,
    pub tls: Option<TlsFile>,
    pub auth: Option<AuthFile>,
    /// HTTP transports: the content type (`xml-http`) and static headers.
    #[serde(default)]
    pub http: HttpFile,
    /// Prefix → namespace URI, for templates and response paths.
    #[serde(default)]
    pub namespaces: BTreeMap<String, String>,
    /// IANA time zone (`Europe/Stockholm`) strftime patterns of `deadline`
    /// and `now` render in; default UTC.
    pub time_zone: Option<String>,
    /// Whether templates may write the clear PAN (`{pan}`); off by default —
    /// the canonical interface sends only the masked card.
    #[serde(default)]
    pub send_clear_pan: bool,
    /// Canonical value → vendor value, per field (e.g. `[values.kind] purchase = "DEBIT"`).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// `fixed-tcp` only: record framing and the correlation field.
    pub records: Option<RecordsFile>,
    /// One section per operation the vendor supports.
    pub operations: BTreeMap<Operation, OperationFile>,
    /// Vendor result code → ISO 8583 DE 39.
    pub result_codes: ResultCodesFile,
    /// SOAP fault handling.
    #[serde(default)]
    pub faults: FaultsFile,
}

/// Where the account system listens, in failover order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    /// HTTP transports: URLs tried in order when one cannot be reached.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `fixed-tcp`: `host:port` addresses tried in order.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Time to establish a connection, in ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time for one operation, in ms; never beyond the request's deadline.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Requests in flight to one endpoint at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_connect_timeout_ms() -> u64 {
    500
}
fn default_timeout_ms() -> u64 {
    3000
}
fn default_max_in_flight() -> usize {
    256
}

/// Client TLS (PEM files, relative to the adapter file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// CA certificates to verify the server.
    pub ca: Option<PathBuf>,
    /// Client certificate chain and key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// What HTTP requests carry besides the body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// `xml-http`: the `Content-Type` (default `application/xml;
    /// charset=utf-8`); its charset is the encoding the body is sent in.
    pub content_type: Option<String>,
    /// Header name → value, sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub kind: AuthKind,
    pub username: String,
    /// Environment variable with the password.
    pub password_env: Option<String>,
    /// Inline password (demo and test adapters only).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// HTTP basic authentication.
    Basic,
    /// WS-Security UsernameToken, PasswordText.
    WsseText,
    /// WS-Security UsernameToken, PasswordDigest with nonce and created.
    WsseDigest,
}

/// `fixed-tcp` records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsFile {
    /// `two-byte` length prefix or a `delimiter`.
    pub framing: RecordFraming,
    /// Delimiter after each record when `framing = "delimited"` (default `\n`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Character encoding of the records (default UTF-8); columns count bytes.
    #[serde(default)]
    pub encoding: Encoding,
    /// The request and response column carrying the sequence number that
    /// correlates them: `{ start, length }` (0-based).
    pub sequence: Column,
}

fn default_delimiter() -> String {
    "\n".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordFraming {
    TwoByte,
    Delimited,
}

/// A column of a fixed-width record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub start: usize,
    pub length: usize,
}

/// One operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationFile {
    /// SOAP action (SOAP transports).
    pub soap_action: Option<String>,
    /// HTTP transports: appended to every endpoint URL after a `/`.
    pub path: Option<String>,
    /// HTTP transports: headers of this operation's requests, added to
    /// (and for the same name, replacing) `[http] headers`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// XML transports: the request body (the SOAP Body's child, or the whole
    /// document for `xml-http`) with `{field}` / `{field:format}` placeholders.
    pub template: Option<String>,
    /// `fixed-tcp`: the request record, fields in order.
    #[serde(default)]
    pub record: Vec<RecordFieldFile>,
    /// Where the answer's values are.
    pub response: ResponseFile,
    /// Whether a failed call may be repeated (only idempotent operations:
    /// advice, reverse).
    #[serde(default)]
    pub retry: bool,
}

/// One field of a fixed-width request record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFieldFile {
    pub name: String,
    pub length: usize,
    /// Text with placeholders, e.g. `{amount:minor}` or a literal `AUTH`.
    pub value: String,
    /// `left` (pad on the right with spaces, default) or `right` (pad on the left with zeros).
    #[serde(default)]
    pub align: Align,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    #[default]
    Left,
    Right,
}

/// Where to read the answer: element paths (XML transports) or columns (`fixed-tcp`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFile {
    pub result_code: Source,
    pub auth_id: Option<Source>,
    pub available: Option<AmountSource>,
    pub ledger: Option<AmountSource>,
    pub message: Option<Source>,
    /// `fixed-tcp`: the answer record's length in bytes; an answer of
    /// another length is malformed.
    pub length: Option<usize>,
    /// `fixed-tcp`: the column naming the answer's record type (its
    /// transaction code) and what it must hold for this operation.
    pub record_type: Option<FixedColumn>,
}

/// A record column that must hold `value`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedColumn {
    pub start: usize,
    pub length: usize,
    pub value: String,
}

/// A value's place in the answer: an XML path like
/// `as:AuthorizeResponse/as:resultCode` or `v:Result/@code` (relative to the
/// SOAP Body, or to the document for `xml-http`), or a record column.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Source {
    Path(String),
    Column(Column),
}

/// An amount in the answer and how it is written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountSource {
    pub at: Source,
    /// `minor` (integer minor units) or `decimal` (units with the currency's decimals).
    #[serde(default)]
    pub format: AmountFormat,
    /// For `fixed-tcp`: a sign column before the amount (`+`/`-` or `C`/`D`).
    pub sign: Option<Column>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmountFormat {
    #[default]
    Minor,
    Decimal,
}

/// Vendor result codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultCodesFile {
    /// DE 39 for a code not in `map`.
    pub default: String,
    /// Vendor code → DE 39.
    pub map: BTreeMap<String, String>,
}

/// SOAP faults: by default a fault means "no usable answer" (stand-in
/// decides); listed fault codes can map to a decline instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsFile {
    /// Path of the vendor's fault code inside the fault detail, if any.
    pub code: Option<String>,
    /// Fault code → DE 39 (a decline the vendor means).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}
