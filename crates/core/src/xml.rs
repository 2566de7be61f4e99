//! Reading account-system answers: a small namespace-aware tree built with
//! quick-xml, and paths compiled from adapter files ([`path`]) that pick
//! values out of it. The tree keeps each element's namespace scope: element
//! and attribute names resolve their prefixes through it while the tree is
//! built (quick-xml's plain reader checks the syntax; the namespace
//! declarations are checked here), and qualified names written as text (SOAP
//! fault codes) resolve the same way afterwards.
//!
//! The input is a vendor's answer, so it is untrusted: the size is checked
//! before parsing, depth and node count while parsing; a DOCTYPE is refused
//! (so no entity can be declared), only the five predefined entities and
//! character references are expanded, and anything that is not well-formed
//! XML is an error with its byte position. This module does not write
//! documents: requests come from compiled templates, values are escaped by
//! [`soap_writer::escape`](crate::soap_writer::escape).
//!
//! Answers in UTF-8, US-ASCII, ISO-8859-1 and Windows-1252 are read: the
//! encoding is taken from a UTF-8 byte order mark, else the transport's
//! charset (HTTP `Content-Type`), else the XML declaration, else UTF-8 (the
//! order of RFC 7303 and XML 1.0 appendix F), and the answer is decoded
//! to UTF-8 before parsing. Any other encoding is an error naming it.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::reader::Reader;

use crate::encoding::{Encoding, EncodingError};

mod build;
mod path;

use build::Builder;

pub(crate) use path::is_name;
pub use path::{ExpandedName, NameError, Path};

/// The namespace the `xml` prefix is bound to without a declaration.
const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";

/// Where [`XML_NAMESPACE`] is in `Document::namespaces`.
const XML_NS_INDEX: usize = 1;

/// Bounds on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of the whole answer, checked before parsing.
    pub max_bytes: usize,
    /// Elements open at once (the root is depth 1).
    pub max_depth: usize,
    /// Elements plus attributes (namespace declarations not counted).
    pub max_nodes: usize,
}

impl Default for Limits {
    /// 1 MiB, depth 64, 10,000 nodes: far above any account-system answer.
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 20,
            max_depth: 64,
            max_nodes: 10_000,
        }
    }
}

/// An element of a [`Document`]; only meaningful for the document that
/// returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

/// A parsed answer: elements only (with their own text), read-only.
#[derive(Debug, Clone)]
pub struct Document {
    elements: Vec<Element>,
    attributes: Vec<Attr>,
    /// Interned namespace URIs; index 0 is "" (no namespace), index 1
    /// [`XML_NAMESPACE`]. (Ranges of `strings`.)
    namespaces: Vec<Span>,
    /// Namespace declarations (`xmlns`, `xmlns:p`), each chained to the one
    /// in scope before it.
    bindings: Vec<Binding>,
    /// Element and attribute names and attribute values, one after another
    /// (one allocation for the whole answer instead of one per name).
    strings: String,
    /// Elements' character data, each element's in one range (one
    /// allocation instead of one per element).
    texts: String,
}

/// A range of `Document::strings`.
#[derive(Debug, Clone, Copy)]
struct Span(u32, u32);

#[derive(Debug, Clone)]
struct Element {
    ns: usize,
    local: Span,
    /// The element's own character data (text, CDATA, references), not its
    /// descendants': a range of `Document::texts`.
    text: Span,
    /// Range into `Document::attributes`.
    attrs: (usize, usize),
    /// The innermost namespace declaration in scope (index into
    /// `Document::bindings`).
    scope: Option<u32>,
    first_child: Option<NodeId>,
    next_sibling: Option<NodeId>,
}

/// A namespace declaration: a prefix ("" for the default namespace) bound
/// to an interned URI ("" undeclares), and the declaration in scope before.
#[derive(Debug, Clone)]
struct Binding {
    prefix: Span,
    ns: usize,
    outer: Option<u32>,
}

#[derive(Debug, Clone)]
struct Attr {
    ns: usize,
    local: Span,
    value: Span,
}

/// The element children of a node, in document order.
#[derive(Debug, Clone)]
pub struct Children<'d> {
    doc: &'d Document,
    next: Option<NodeId>,
}

/// Why an answer cannot be read (the vendor's fault) or a path cannot be
/// compiled (ours: the adapter file). Positions are byte offsets in the
/// answer. No retry helps with any of them.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// A [`Limits`] bound was passed.
    #[error("answer exceeds {limit} = {max} at byte {position}")]
    Limit {
        limit: &'static str,
        max: usize,
        position: usize,
    },
    /// The bytes are not text in the answer's encoding.
    #[error("answer is {0}")]
    Undecodable(#[from] EncodingError),
    /// An encoding cardhub does not read.
    #[error(
        "answer is in encoding {label:?} (named by its {named_by}), which cardhub does not read"
    )]
    UnknownEncoding {
        label: String,
        /// `byte order mark`, `charset`, or `XML declaration`.
        named_by: &'static str,
    },
    /// A DOCTYPE (DTD); refused so that no entity can be declared.
    #[error("answer has a DOCTYPE at byte {position}; DTDs are refused")]
    Doctype { position: usize },
    /// A reference to an entity other than the five predefined ones.
    #[error("answer references undeclared entity &{name}; at byte {position}")]
    Entity { name: String, position: usize },
    /// A character reference that is not a number or not an XML character.
    #[error("answer has an invalid character reference &{reference}; at byte {position}")]
    CharRef { reference: String, position: usize },
    /// A character XML does not allow (e.g. most control characters).
    #[error(
        "answer has character U+{code:04X}, not allowed in XML, in the markup at byte {position}"
    )]
    Char { code: u32, position: usize },
    /// A namespace prefix with no declaration in scope.
    #[error("answer uses undeclared namespace prefix {prefix:?} at byte {position}")]
    Prefix { prefix: String, position: usize },
    /// Text, a reference, CDATA or a second element outside the root element.
    #[error("answer has {what} outside the root element at byte {position}")]
    OutsideRoot { what: String, position: usize },
    /// An XML declaration that is not the first thing in the answer.
    #[error("answer has an XML declaration at byte {position}, not at the start")]
    Declaration { position: usize },
    /// The answer ends inside an element.
    #[error("answer ends at byte {position} with <{element}> still open")]
    Unclosed { element: String, position: usize },
    /// No element at all.
    #[error("answer has no root element (ends at byte {position})")]
    NoRoot { position: usize },
    /// Any other well-formedness error found by quick-xml (mismatched end
    /// tag, unclosed tag, bad attribute, bad namespace binding …).
    #[error("answer is malformed at byte {position}: {source}")]
    Malformed {
        position: usize,
        #[source]
        source: quick_xml::Error,
    },
    /// A path in an adapter file that is not `step/step/…[/@attr]`.
    #[error("path {path:?}: {reason}")]
    PathSyntax { path: String, reason: &'static str },
    /// A path prefix missing from the adapter file's `[namespaces]`.
    #[error("path {path:?}: prefix {prefix:?} is not in the adapter's [namespaces]")]
    PathPrefix { path: String, prefix: String },
}

impl XmlError {
    /// Whether the vendor's answer is at fault (`false`: our adapter file is).
    pub fn is_vendor_fault(&self) -> bool {
        !matches!(
            self,
            XmlError::PathSyntax { .. } | XmlError::PathPrefix { .. }
        )
    }
}

impl Document {
    /// Parses an answer in the encoding its byte order mark or XML
    /// declaration names (UTF-8 without either).
    ///
    /// # Errors
    ///
    /// Any [`XmlError`] but the path ones: the answer is past a limit, in an
    /// encoding not read or not valid in its encoding, not well-formed, has a
    /// DOCTYPE, an undeclared entity or prefix.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Document, XmlError> {
        Document::parse_with_charset(bytes, None, limits)
    }

    /// Parses an answer that came with a `charset` from its transport (the
    /// HTTP `Content-Type` parameter): it overrides the XML declaration.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse); an unknown `charset` is
    /// [`XmlError::UnknownEncoding`].
    pub fn parse_with_charset(
        bytes: &[u8],
        charset: Option<&str>,
        limits: &Limits,
    ) -> Result<Document, XmlError> {
        if bytes.len() > limits.max_bytes {
            let max = limits.max_bytes;
            return Err(limit("max_bytes", max, max));
        }
        let (encoding, bytes) = answer_encoding(bytes, charset)?;
        let input = encoding.decode(bytes)?;
        let mut reader = Reader::from_str(&input);
        reader.config_mut().enable_all_checks(true);
        let mut builder = Builder::new(limits, input.len());
        let mut first = true;
        loop {
            let position = offset(reader.buffer_position());
            let event = reader.read_event().map_err(|source| {
                malformed(source, position.max(offset(reader.error_position())))
            })?;
            match event {
                Event::Decl(decl) if first => builder.declaration(&decl, position)?,
                Event::Decl(_) => return Err(XmlError::Declaration { position }),
                Event::DocType(_) => return Err(XmlError::Doctype { position }),
                Event::Start(start) => builder.open(&start, position)?,
                Event::Empty(start) => {
                    builder.open(&start, position)?;
                    builder.close(position)?;
                }
                Event::End(_) => builder.close(position)?,
                Event::Text(text) => {
                    // Line ends need normalizing only where there is a CR
                    // (XML 1.0; 1.1 has more line ends).
                    let raw: &str = &text;
                    if builder.version != XmlVersion::Explicit1_1
                        && !raw.bytes().any(|b| b == b'\r')
                    {
                        builder.text(raw, "text", position)?;
                    } else {
                        builder.text(&text.xml_content(builder.version), "text", position)?;
                    }
                }
                Event::CData(cdata) => {
                    builder.text(&cdata.xml_content(builder.version), "CDATA", position)?;
                }
                Event::GeneralRef(reference) => builder.reference(&reference, position)?,
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return builder.finish(position),
            }
            first = false;
        }
    }

    fn string(&self, span: Span) -> &str {
        self.strings
            .get(span.0 as usize..span.1 as usize)
            .unwrap_or_default()
    }

    /// The root element.
    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    /// The namespace URI ("" for none) and local name of an element.
    pub fn name(&self, node: NodeId) -> (&str, &str) {
        match self.elements.get(node.0) {
            Some(e) => (self.namespace(e.ns), self.string(e.local)),
            None => ("", ""),
        }
    }

    /// The element's own character data, untrimmed (text of child elements
    /// is not included).
    pub fn text(&self, node: NodeId) -> &str {
        self.elements
            .get(node.0)
            .and_then(|e| self.texts.get(e.text.0 as usize..e.text.1 as usize))
            .unwrap_or_default()
    }

    /// [`text`](Self::text) without leading and trailing XML whitespace.
    pub fn trimmed_text(&self, node: NodeId) -> &str {
        self.text(node).trim_matches(is_xml_space)
    }

    /// An attribute's value (normalized as XML requires). `ns_uri` `None`
    /// (or `""`) means an unprefixed attribute.
    pub fn attribute(&self, node: NodeId, ns_uri: Option<&str>, local: &str) -> Option<&str> {
        let (start, end) = self.elements.get(node.0)?.attrs;
        let ns_uri = ns_uri.unwrap_or("");
        self.attributes
            .get(start..end)?
            .iter()
            .find(|a| self.string(a.local) == local && self.namespace(a.ns) == ns_uri)
            .map(|a| self.string(a.value))
    }

    /// The first element child with this namespace URI ("" for none) and
    /// local name.
    pub fn child(&self, node: NodeId, ns_uri: &str, local: &str) -> Option<NodeId> {
        self.children(node)
            .find(|&c| self.name(c) == (ns_uri, local))
    }

    /// The element children of `node`, in document order.
    pub fn children(&self, node: NodeId) -> Children<'_> {
        let next = self.elements.get(node.0).and_then(|e| e.first_child);
        Children { doc: self, next }
    }

    /// Follows `path` from `from`: the first matching child at each step,
    /// then the element's trimmed text or the attribute's value. `None` when
    /// a step or the attribute is missing.
    pub fn select(&self, path: &Path, from: NodeId) -> Option<&str> {
        self.locate(path, from).map(|(_, value)| value)
    }

    /// [`select`](Self::select), with the element the value is on (whose
    /// scope resolves a qualified name in the value).
    pub fn locate(&self, path: &Path, from: NodeId) -> Option<(NodeId, &str)> {
        let mut node = from;
        for step in &path.steps {
            // Compare interned namespace indexes, not URIs, while scanning.
            let ns = self
                .namespaces
                .iter()
                .position(|&n| self.string(n) == step.namespace)?;
            node = self.children(node).find(|&c| {
                self.elements
                    .get(c.0)
                    .is_some_and(|e| e.ns == ns && self.string(e.local) == step.local)
            })?;
        }
        let value = match &path.attribute {
            Some(attr) => self.attribute(node, Some(&attr.namespace), &attr.local),
            None if node.0 < self.elements.len() => Some(self.trimmed_text(node)),
            None => None,
        };
        value.map(|value| (node, value))
    }

    /// The namespace URI `prefix` ("" for the default namespace) is bound
    /// to at `node`; `None` when it is not bound there ("" when the default
    /// namespace is not).
    pub fn namespace_of(&self, node: NodeId, prefix: &str) -> Option<&str> {
        let scope = self.elements.get(node.0)?.scope;
        self.lookup(scope, prefix).map(|ns| self.namespace(ns))
    }

    /// The interned namespace `prefix` ("" for the default namespace) is
    /// bound to in `scope` (the innermost declaration); `None` when it is
    /// not bound (`Some(0)` when the default namespace is not).
    fn lookup(&self, mut scope: Option<u32>, prefix: &str) -> Option<usize> {
        if prefix == "xml" {
            return Some(XML_NS_INDEX);
        }
        while let Some(binding) = scope.and_then(|i| self.bindings.get(i as usize)) {
            if self.string(binding.prefix) == prefix {
                // `xmlns:p=""` leaves `p` unbound.
                return (binding.ns != 0 || prefix.is_empty()).then_some(binding.ns);
            }
            scope = binding.outer;
        }
        prefix.is_empty().then_some(0)
    }

    /// A qualified name written as text at `node` (an `xs:QName` value such
    /// as a SOAP fault code) resolved in its scope: the namespace URI and
    /// local name. An unprefixed name takes the default namespace. `None`
    /// when the prefix is not bound there.
    pub fn resolve_qname<'d>(&'d self, node: NodeId, qname: &'d str) -> Option<(&'d str, &'d str)> {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        Some((self.namespace_of(node, prefix)?, local))
    }

    fn namespace(&self, index: usize) -> &str {
        self.namespaces.get(index).map_or("", |&ns| self.string(ns))
    }
}

impl Iterator for Children<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let current = self.next?;
        self.next = self
            .doc
            .elements
            .get(current.0)
            .and_then(|e| e.next_sibling);
        Some(current)
    }
}

/// The encoding of an answer and its bytes without a byte order mark: a
/// UTF-8 BOM, else the transport's `charset`, else the XML declaration's
/// `encoding`, else UTF-8.
fn answer_encoding<'b>(
    bytes: &'b [u8],
    charset: Option<&str>,
) -> Result<(Encoding, &'b [u8]), XmlError> {
    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return Ok((Encoding::Utf8, rest));
    }
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        let label = "UTF-16".to_owned();
        let named_by = "byte order mark";
        return Err(XmlError::UnknownEncoding { label, named_by });
    }
    let (label, named_by) = match charset {
        Some(charset) => (Cow::Borrowed(charset), "charset"),
        None => match declared_encoding(bytes) {
            Some(declared) => (Cow::Owned(declared), "XML declaration"),
            None => return Ok((Encoding::Utf8, bytes)),
        },
    };
    match Encoding::from_label(&label) {
        Some(encoding) => Ok((encoding, bytes)),
        None => Err(XmlError::UnknownEncoding {
            label: label.into_owned(),
            named_by,
        }),
    }
}

/// The `encoding` of the XML declaration at the start of `bytes`, if there
/// is one. The declaration is ASCII in every encoding read here; one that
/// cannot be read is left for the parser to report.
pub(super) fn declared_encoding(bytes: &[u8]) -> Option<String> {
    // `<?xml` and white space: not a processing instruction like `<?xml-x`.
    let rest = bytes.strip_prefix(b"<?xml")?;
    if !rest
        .first()
        .is_some_and(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return None;
    }
    let end = rest.windows(2).position(|w| w == b"?>")?;
    // `xml version="1.0" encoding="…"`: read as quick-xml reads a
    // declaration's pseudo-attributes, without a reader.
    let content = std::str::from_utf8(bytes.get(2..5 + end)?).ok()?;
    let decl = BytesDecl::from_start(BytesStart::from_content(content, 3));
    decl.encoding()?.ok().map(Cow::into_owned)
}

pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn limit(limit: &'static str, max: usize, position: usize) -> XmlError {
    XmlError::Limit {
        limit,
        max,
        position,
    }
}

/// XML 1.0 `Char` (surrogates cannot be a `char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(text: &str, position: usize) -> Result<(), XmlError> {
    // Printable ASCII, tab, newline and carriage return are all allowed: a
    // byte test the compiler vectorizes, before the per-char one.
    let plain = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x20..=0x7E);
    if text.bytes().all(plain) {
        return Ok(());
    }
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(XmlError::Char {
            code: u32::from(c),
            position,
        }),
        None => Ok(()),
    }
}

fn offset(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// Maps quick-xml's errors, naming undeclared entities in attribute values.
fn malformed(source: quick_xml::Error, position: usize) -> XmlError {
    match source {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            XmlError::Entity { name, position }
        }
        source => XmlError::Malformed { position, source },
    }
}

#[cfg(test)]
#[path = "xml_tests.rs"]
mod tests;
