//! How the reference account system reads an XML request: decoded, then
//! parsed by `roxmltree`, which shares no code with the hub's reader
//! ([`adapter::xml`](cardhub_core::xml), built on quick-xml). The
//! reference system exists to check the hub's adapters; reading what they
//! send with the hub's own reader would mirror any bug of it on both sides,
//! where no test could see it.
//!
//! The request is untrusted, and hardened as the hub hardens its input:
//! the caller checks the size before anything is read; a DOCTYPE is
//! refused (so no entity can be declared), only the five predefined
//! entities and character references are expanded, elements nest at most
//! [`MAX_DEPTH`] deep and a document holds at most [`MAX_NODES`] nodes.
//! The encoding is a UTF-8 byte order mark's, else the XML declaration's,
//! else UTF-8; UTF-8, US-ASCII, ISO-8859-1 and Windows-1252 are read (the
//! last three as the WHATWG Encoding Standard reads them, through
//! `encoding_rs`).
//!
//! Pure: no I/O; reading only.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use roxmltree::{Document, Node, ParsingOptions};

/// Elements open at once (the root is depth 1), as the hub allows.
pub const MAX_DEPTH: usize = 64;
/// Nodes of any kind (elements, text, comments, processing instructions).
pub const MAX_NODES: u32 = 10_000;

/// Why a request is not readable XML: always the sender's fault.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// An encoding the reference system does not read.
    #[error(
        "request is in encoding {0:?} (named by its XML declaration); UTF-8, US-ASCII, ISO-8859-1 and windows-1252 are read"
    )]
    Encoding(String),
    /// The bytes are not text in the request's encoding.
    #[error("request is not valid {0}")]
    Undecodable(&'static str),
    /// Elements nested past [`MAX_DEPTH`].
    #[error("request nests elements deeper than {MAX_DEPTH} at {line}:{column}")]
    Depth { line: u32, column: u32 },
    /// Not well-formed, a DOCTYPE, an unknown entity or prefix, past
    /// [`MAX_NODES`]: roxmltree's reason, with its line and column.
    #[error("{0}")]
    Malformed(#[from] roxmltree::Error),
}

/// The request as text: decoded from its encoding, without a byte order
/// mark.
///
/// # Errors
///
/// [`XmlError::Encoding`], [`XmlError::Undecodable`].
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, XmlError> {
    const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
    let (encoding, bytes) = match bytes.strip_prefix(UTF8_BOM) {
        Some(rest) => (UTF_8, rest),
        None => match declared_encoding(bytes) {
            None => (UTF_8, bytes),
            Some(label) => match Encoding::for_label(label) {
                Some(e) if e == UTF_8 || e == WINDOWS_1252 => (e, bytes),
                _ => {
                    let label = String::from_utf8_lossy(label).chars().take(40).collect();
                    return Err(XmlError::Encoding(label));
                }
            },
        },
    };
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or(XmlError::Undecodable(encoding.name()))
}

/// The `encoding` pseudo-attribute of an XML declaration at the start of
/// `bytes` (ASCII in every encoding read), if there is one. A declaration
/// that is not well-formed is left for the parser to report.
fn declared_encoding(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let declaration = rest.get(..rest.windows(2).position(|w| w == b"?>")?)?;
    let at = declaration.windows(8).position(|w| w == b"encoding")?;
    let value = declaration.get(at + 8..)?.trim_ascii_start();
    let value = value.strip_prefix(b"=")?.trim_ascii_start();
    let (&quote, value) = value.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    value.get(..value.iter().position(|&b| b == quote)?)
}

/// Parses a decoded request (see [`decode`]).
///
/// # Errors
///
/// [`XmlError::Malformed`], [`XmlError::Depth`].
pub fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options)?;
    // Depth per node id, filled in document order (parents first).
    let mut depths = vec![0_usize; doc.descendants().count()];
    for node in doc.descendants().filter(Node::is_element) {
        let parent = node.parent().and_then(|p| depths.get(p.id().get_usize()));
        let depth = parent.copied().unwrap_or_default() + 1;
        if depth > MAX_DEPTH {
            let at = doc.text_pos_at(node.range().start);
            let (line, column) = (at.row, at.col);
            return Err(XmlError::Depth { line, column });
        }
        if let Some(slot) = depths.get_mut(node.id().get_usize()) {
            *slot = depth;
        }
    }
    Ok(doc)
}

/// The namespace URI ("" for none) and local name of an element.
pub fn name<'a>(node: Node<'a, '_>) -> (&'a str, &'a str) {
    let name = node.tag_name();
    (name.namespace().unwrap_or(""), name.name())
}

/// The element children of `node`, in document order.
pub fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

/// The first element child with this namespace URI ("" for none) and local
/// name.
pub fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, local: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|&c| name(c) == (ns, local))
}

/// The element's own character data (text, CDATA, references; not its
/// children's) without leading and trailing XML white space.
pub fn text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    let mut parts = node
        .children()
        .filter_map(|c| c.is_text().then(|| c.text()).flatten());
    let first = parts.next().unwrap_or_default();
    let whole = match parts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut all = format!("{first}{second}");
            parts.for_each(|p| all.push_str(p));
            Cow::Owned(all)
        }
    };
    let xml_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    match whole {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim_matches(xml_space)),
        Cow::Owned(text) => Cow::Owned(text.trim_matches(xml_space).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<String, XmlError> {
        let text = decode(bytes)?;
        let doc = parse(&text)?;
        Ok(self::text(doc.root_element()).into_owned())
    }

    #[test]
    fn text_is_the_elements_own_character_data_trimmed() {
        let xml = b"<a> x&amp;<!--c-->y<![CDATA[<z>]]>&#65; <b>not</b>\n</a>";
        assert_eq!(read(xml).unwrap(), "x&y<z>A");
        assert_eq!(read(b"<a>\t plain \r\n</a>").unwrap(), "plain");
        assert_eq!(read(b"<a/>").unwrap(), "");
    }

    #[test]
    fn encodings_come_from_the_bom_or_the_declaration() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        assert_eq!(read(latin1).unwrap(), "caf\u{e9}");
        let single = b"<?xml version='1.0' encoding = 'windows-1252' ?><a>\x80</a>";
        assert_eq!(read(single).unwrap(), "\u{20ac}");
        assert_eq!(read("\u{feff}<a>é</a>".as_bytes()).unwrap(), "é");
        assert_eq!(read("<a>é</a>".as_bytes()).unwrap(), "é");
        let e = read(b"<?xml version=\"1.0\" encoding=\"EBCDIC-CP-US\"?><a/>").unwrap_err();
        assert!(
            matches!(e, XmlError::Encoding(ref l) if l == "EBCDIC-CP-US"),
            "{e}"
        );
        let e = read(b"<a>caf\xe9</a>").unwrap_err();
        assert!(matches!(e, XmlError::Undecodable("UTF-8")), "{e}");
    }

    #[test]
    fn dtds_unknown_entities_and_deep_nesting_are_refused() {
        let dtd = b"<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>";
        assert!(matches!(
            read(dtd),
            Err(XmlError::Malformed(roxmltree::Error::DtdDetected))
        ));
        let bare = b"<?xml version=\"1.0\"?>\n<!DOCTYPE a><a/>";
        assert!(matches!(
            read(bare),
            Err(XmlError::Malformed(roxmltree::Error::DtdDetected))
        ));
        let e = read(b"<a>&e;</a>").unwrap_err();
        assert!(e.to_string().contains("unknown entity reference"), "{e}");
        let e = read(b"<p:a/>").unwrap_err();
        assert!(e.to_string().contains("unknown namespace prefix"), "{e}");

        let nested = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        read(nested(MAX_DEPTH).as_bytes()).unwrap();
        let e = read(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(
            matches!(e, XmlError::Depth { line: 1, column } if column == 3 * MAX_DEPTH as u32 + 1),
            "{e}"
        );
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES as usize));
        assert!(matches!(
            read(wide.as_bytes()),
            Err(XmlError::Malformed(roxmltree::Error::NodesLimitReached))
        ));
    }
}
