//! Building a [`Document`] from quick-xml's events: elements, attributes,
//! text and namespace scopes, with the limits and checks of an untrusted
//! answer. [`Document::parse`] drives it.
//!
//! Namespaces are resolved here, from the declarations kept in the tree,
//! rather than by quick-xml's `NsReader` (which keeps a second copy of them
//! per answer): a declaration is checked as the Namespaces in XML
//! recommendation wants (`xml` only bound to its namespace, `xmlns` never
//! declared, neither namespace bound to another prefix), and the number of
//! declarations in scope is bounded as quick-xml bounds it.

use std::cell::Cell;
use std::mem;

use quick_xml::XmlVersion;
use quick_xml::errors::IllFormedError;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart};
use quick_xml::name::{NamespaceError, PrefixDeclaration};

use super::{
    Attr, Binding, Document, Element, Limits, NodeId, Span, XML_NAMESPACE, XML_NS_INDEX, XmlError,
    check_chars, is_xml_char, is_xml_space, limit, malformed,
};

/// The namespace of namespace declarations, which no prefix may be bound to.
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// Namespace declarations in scope at once (quick-xml's default bound):
/// each name looked up walks them.
const MAX_BINDINGS_IN_SCOPE: usize = 128;

/// Buffers past this many bytes (after an unusually large answer) are not
/// kept for the next one.
const SPARE_MAX_BYTES: usize = 256 << 10;

thread_local! {
    /// The buffers of the thread's last parse, emptied.
    static SPARE: Cell<Option<Buffers>> = const { Cell::new(None) };
}

/// The buffers of a parse (the tree's and the builder's own), kept per
/// thread for the next answer: a warm thread parses without allocating.
#[derive(Default)]
struct Buffers {
    elements: Vec<Element>,
    attributes: Vec<Attr>,
    namespaces: Vec<Span>,
    bindings: Vec<Binding>,
    strings: String,
    texts: String,
    stack: Vec<Open>,
    spills: Vec<String>,
}

/// An element being parsed.
struct Open {
    id: NodeId,
    last_child: Option<NodeId>,
    /// Namespace declarations in scope (its own and its ancestors').
    bindings: usize,
    /// The element's text so far, once a descendant's text was kept after
    /// it (mixed content, pretty-printing): moved to the end of
    /// `Document::texts` when the element closes.
    spill: Option<String>,
}

/// Parse state: the tree so far and the open elements.
pub(super) struct Builder<'l> {
    limits: &'l Limits,
    doc: Document,
    stack: Vec<Open>,
    root_done: bool,
    /// Spill buffers of closed elements, for reuse.
    spills: Vec<String>,
    /// The declared XML version: how text and attribute values are read.
    pub(super) version: XmlVersion,
}

impl<'l> Builder<'l> {
    /// A builder for an answer of `input_len` bytes: buffers are sized
    /// from it (an element takes at least 7 bytes of markup, `<a></a>`,
    /// and answers are mostly markup), so they rarely grow.
    pub(super) fn new(limits: &'l Limits, input_len: usize) -> Self {
        let Buffers {
            mut elements,
            mut attributes,
            mut namespaces,
            mut bindings,
            mut strings,
            mut texts,
            mut stack,
            spills,
        } = SPARE
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_default();
        // No-ops once the thread has parsed an answer of this size.
        elements.reserve((input_len / 32).max(8).min(limits.max_nodes));
        strings.reserve((input_len / 2).max(64));
        texts.reserve((input_len / 2).max(64));
        attributes.reserve(4);
        namespaces.reserve(4);
        bindings.reserve(4);
        stack.reserve(16);
        Builder {
            limits,
            doc: Document {
                elements,
                attributes,
                namespaces,
                bindings,
                strings,
                texts,
            },
            stack,
            root_done: false,
            spills,
            version: XmlVersion::Implicit1_0,
        }
        .with_fixed_namespaces()
    }

    /// Interns "" (no namespace) and the `xml` namespace at their indexes.
    fn with_fixed_namespaces(mut self) -> Self {
        self.doc.namespaces.push(Span(0, 0));
        let xml = self.keep(XML_NAMESPACE);
        self.doc.namespaces.push(xml);
        debug_assert_eq!(self.doc.namespaces.len(), XML_NS_INDEX + 1);
        self
    }

    /// Takes the XML version (the encoding was read before decoding).
    pub(super) fn declaration(
        &mut self,
        decl: &BytesDecl,
        position: usize,
    ) -> Result<(), XmlError> {
        self.version = decl.xml_version().map_err(|e| malformed(e, position))?;
        Ok(())
    }

    /// Adds an element and its attributes; its namespace declarations
    /// (which may bind the prefixes of its own name and attributes) open a
    /// scope for it and its descendants.
    pub(super) fn open(&mut self, start: &BytesStart, position: usize) -> Result<(), XmlError> {
        let qname = start.name().into_inner();
        if self.root_done {
            let what = format!("a second element <{qname}>");
            return Err(XmlError::OutsideRoot { what, position });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(limit("max_depth", self.limits.max_depth, position));
        }
        self.count_node(position)?;
        let parent = self.stack.last();
        let mut scope = parent.and_then(|open| self.doc.elements[open.id.0].scope);
        let mut bindings = parent.map_or(0, |open| open.bindings);
        let first_attr = self.doc.attributes.len();
        // Most elements have no attributes: skip the iterator's set-up.
        if start.attributes_raw().bytes().any(|b| !is_space(b)) {
            (scope, bindings) = self.attributes(start, scope, bindings, position)?;
        }
        let (ns, local) = match split_qname(qname) {
            // Unprefixed: the default namespace in scope, if any.
            None => (self.doc.lookup(scope, "").unwrap_or(0), qname),
            Some((prefix, local)) => (self.resolve(scope, prefix, position)?, local),
        };
        let id = NodeId(self.doc.elements.len());
        let local = self.keep(local);
        self.doc.elements.push(Element {
            ns,
            local,
            text: Span(0, 0),
            attrs: (first_attr, self.doc.attributes.len()),
            scope,
            first_child: None,
            next_sibling: None,
        });
        if let Some(parent) = self.stack.last_mut() {
            let slot = match parent.last_child {
                Some(last) => &mut self.doc.elements[last.0].next_sibling,
                None => &mut self.doc.elements[parent.id.0].first_child,
            };
            *slot = Some(id);
            parent.last_child = Some(id);
        }
        self.stack.push(Open {
            id,
            last_child: None,
            bindings,
            spill: None,
        });
        Ok(())
    }

    /// Reads an element's attributes: namespace declarations extend
    /// `scope` (and count in `bindings`, the declarations in it), the others
    /// are kept, their prefixes resolved once all declarations are known.
    fn attributes(
        &mut self,
        start: &BytesStart,
        mut scope: Option<u32>,
        mut bindings: usize,
        position: usize,
    ) -> Result<(Option<u32>, usize), XmlError> {
        let first = self.doc.attributes.len();
        let mut prefixed = false;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| malformed(e.into(), position))?;
            let value = attr
                .normalized_value(self.version)
                .map_err(|e| malformed(e, position))?;
            check_chars(&value, position)?;
            if let Some(declaration) = attr.key.as_namespace_binding() {
                bindings += 1;
                if bindings > MAX_BINDINGS_IN_SCOPE {
                    let e = NamespaceError::TooManyBindings(MAX_BINDINGS_IN_SCOPE);
                    return Err(malformed(e.into(), position));
                }
                scope = self.bind(declaration, &value, scope, position)?;
                continue;
            }
            self.count_node(position)?;
            // The qualified name for now: its prefix is resolved below,
            // once all of the element's declarations are known.
            let key = attr.key.into_inner();
            prefixed |= split_qname(key).is_some();
            let local = self.keep(key);
            let value = self.keep(&value);
            self.doc.attributes.push(Attr {
                ns: 0,
                local,
                value,
            });
        }
        if prefixed {
            self.resolve_attributes(first, scope, position)?;
        }
        Ok((scope, bindings))
    }

    /// Resolves the prefixes of the attributes from `first` on (kept with
    /// their qualified names by [`open`](Self::open)) in `scope`.
    fn resolve_attributes(
        &mut self,
        first: usize,
        scope: Option<u32>,
        position: usize,
    ) -> Result<(), XmlError> {
        for i in first..self.doc.attributes.len() {
            let name = self.doc.attributes[i].local;
            let Some((prefix, _)) = split_qname(self.doc.string(name)) else {
                continue;
            };
            let ns = self.resolve(scope, prefix, position)?;
            let local = Span(name.0 + prefix.len() as u32 + 1, name.1);
            let attr = &mut self.doc.attributes[i];
            (attr.ns, attr.local) = (ns, local);
        }
        Ok(())
    }

    /// The interned namespace of a name's prefix in `scope`.
    ///
    /// # Errors
    /// [`XmlError::Prefix`] when the prefix is not bound there (or empty,
    /// as in `:name`).
    fn resolve(
        &self,
        scope: Option<u32>,
        prefix: &str,
        position: usize,
    ) -> Result<usize, XmlError> {
        match self.doc.lookup(scope, prefix) {
            Some(ns) if !prefix.is_empty() => Ok(ns),
            _ => Err(XmlError::Prefix {
                prefix: prefix.to_owned(),
                position,
            }),
        }
    }

    pub(super) fn close(&mut self, position: usize) -> Result<(), XmlError> {
        // quick-xml already refuses end tags that do not match.
        let Some(open) = self.stack.pop() else {
            let source = IllFormedError::UnmatchedEndTag(String::new()).into();
            return Err(XmlError::Malformed { position, source });
        };
        if let Some(mut spill) = open.spill {
            let text = self.keep_text(&spill);
            self.doc.elements[open.id.0].text = text;
            spill.clear();
            self.spills.push(spill);
        }
        self.root_done = self.stack.is_empty();
        Ok(())
    }

    pub(super) fn text(
        &mut self,
        content: &str,
        what: &str,
        position: usize,
    ) -> Result<(), XmlError> {
        let Some(open) = self.stack.last_mut() else {
            if what == "text" && content.chars().all(is_xml_space) {
                return Ok(());
            }
            let what = what.to_owned();
            return Err(XmlError::OutsideRoot { what, position });
        };
        check_chars(content, position)?;
        if content.is_empty() {
            return Ok(());
        }
        if let Some(spill) = &mut open.spill {
            spill.push_str(content);
            return Ok(());
        }
        let texts = &mut self.doc.texts;
        let span = &mut self.doc.elements[open.id.0].text;
        if span.0 == span.1 {
            // No text yet: start a range at the end.
            let start = texts.len() as u32;
            texts.push_str(content);
            *span = Span(start, texts.len() as u32);
        } else if span.1 as usize == texts.len() {
            // Still the last text kept: extend it in place.
            texts.push_str(content);
            span.1 = texts.len() as u32;
        } else {
            // A descendant's text came after: gather the rest apart.
            let mut spill = (self.spills.pop()).unwrap_or_else(|| String::with_capacity(64));
            spill.push_str(
                texts
                    .get(span.0 as usize..span.1 as usize)
                    .unwrap_or_default(),
            );
            spill.push_str(content);
            open.spill = Some(spill);
        }
        Ok(())
    }

    pub(super) fn reference(
        &mut self,
        reference: &BytesRef,
        position: usize,
    ) -> Result<(), XmlError> {
        let name: &str = reference;
        let mut buf = [0; 4];
        let resolved = if reference.is_char_ref() {
            match reference.resolve_char_ref() {
                Ok(Some(c)) if is_xml_char(c) => &*c.encode_utf8(&mut buf),
                _ => {
                    let reference = name.to_owned();
                    return Err(XmlError::CharRef {
                        reference,
                        position,
                    });
                }
            }
        } else {
            match resolve_predefined_entity(name) {
                Some(resolved) => resolved,
                None => {
                    let name = name.to_owned();
                    return Err(XmlError::Entity { name, position });
                }
            }
        };
        self.text(resolved, "a reference", position)
    }

    pub(super) fn finish(self, position: usize) -> Result<Document, XmlError> {
        if let Some(open) = self.stack.last() {
            let element = self.doc.name(open.id).1.to_owned();
            return Err(XmlError::Unclosed { element, position });
        }
        if self.doc.elements.is_empty() {
            return Err(XmlError::NoRoot { position });
        }
        let Builder {
            doc, stack, spills, ..
        } = self;
        recycle(|spare| (spare.stack, spare.spills) = (stack, spills));
        Ok(doc)
    }

    fn count_node(&self, position: usize) -> Result<(), XmlError> {
        if self.doc.elements.len() + self.doc.attributes.len() >= self.limits.max_nodes {
            return Err(limit("max_nodes", self.limits.max_nodes, position));
        }
        Ok(())
    }

    /// Appends a name or value to the document's string buffer.
    fn keep(&mut self, text: &str) -> Span {
        let start = self.doc.strings.len() as u32;
        self.doc.strings.push_str(text);
        Span(start, self.doc.strings.len() as u32)
    }

    /// Appends an element's text to the document's text buffer.
    fn keep_text(&mut self, text: &str) -> Span {
        let start = self.doc.texts.len() as u32;
        self.doc.texts.push_str(text);
        Span(start, self.doc.texts.len() as u32)
    }

    /// Records a namespace declaration (`uri` normalized, as attribute
    /// values are) inside scope `outer`; returns the new scope.
    ///
    /// # Errors
    /// [`XmlError::Malformed`] for a declaration the Namespaces in XML
    /// recommendation forbids: `xml` bound elsewhere than its namespace,
    /// `xmlns` declared, another prefix (or the default namespace) bound to
    /// either namespace, an empty prefix (`xmlns:=`).
    fn bind(
        &mut self,
        declaration: PrefixDeclaration,
        uri: &str,
        outer: Option<u32>,
        position: usize,
    ) -> Result<Option<u32>, XmlError> {
        let prefix = match declaration {
            PrefixDeclaration::Default => "",
            PrefixDeclaration::Named(prefix) => prefix,
        };
        let refused = match (declaration, uri) {
            (PrefixDeclaration::Named("xml"), XML_NAMESPACE) => return Ok(outer),
            (PrefixDeclaration::Named("xml"), _) => {
                NamespaceError::InvalidXmlPrefixBind(uri.to_owned())
            }
            (PrefixDeclaration::Named("xmlns"), _) => {
                NamespaceError::InvalidXmlnsPrefixBind(uri.to_owned())
            }
            (PrefixDeclaration::Named(""), _) => NamespaceError::UnknownPrefix(String::new()),
            (_, XML_NAMESPACE) => NamespaceError::InvalidPrefixForXml(prefix.to_owned()),
            (_, XMLNS_NAMESPACE) => NamespaceError::InvalidPrefixForXmlns(prefix.to_owned()),
            _ => {
                let prefix = self.keep(prefix);
                let ns = self.intern_uri(uri);
                self.doc.bindings.push(Binding { prefix, ns, outer });
                return Ok(Some((self.doc.bindings.len() - 1) as u32));
            }
        };
        Err(malformed(refused.into(), position))
    }

    fn intern_uri(&mut self, uri: &str) -> usize {
        // Answers use a handful of namespaces: a scan beats hashing.
        let doc = &self.doc;
        if let Some(index) = doc.namespaces.iter().position(|&n| doc.string(n) == uri) {
            return index;
        }
        let uri = self.keep(uri);
        self.doc.namespaces.push(uri);
        self.doc.namespaces.len() - 1
    }
}

impl Drop for Document {
    /// Keeps the buffers for the thread's next answer.
    fn drop(&mut self) {
        recycle(|spare| {
            spare.elements = mem::take(&mut self.elements);
            spare.attributes = mem::take(&mut self.attributes);
            spare.namespaces = mem::take(&mut self.namespaces);
            spare.bindings = mem::take(&mut self.bindings);
            spare.strings = mem::take(&mut self.strings);
            spare.texts = mem::take(&mut self.texts);
        });
    }
}

impl Buffers {
    fn bytes(&self) -> usize {
        fn vec<T>(v: &Vec<T>) -> usize {
            v.capacity() * size_of::<T>()
        }
        let spills: usize = self.spills.iter().map(String::capacity).sum();
        vec(&self.elements)
            + vec(&self.attributes)
            + vec(&self.namespaces)
            + vec(&self.bindings)
            + self.strings.capacity()
            + self.texts.capacity()
            + vec(&self.stack)
            + vec(&self.spills)
            + spills
    }

    /// Empties the buffers, keeping their room (spill buffers are kept
    /// as buffers).
    fn clear(&mut self) {
        self.elements.clear();
        self.attributes.clear();
        self.namespaces.clear();
        self.bindings.clear();
        self.strings.clear();
        self.texts.clear();
        self.stack.clear();
        self.spills.iter_mut().for_each(String::clear);
    }
}

/// Moves buffers into the thread's spare set (`give` puts them in), which
/// is kept emptied, or dropped when past [`SPARE_MAX_BYTES`].
fn recycle(give: impl FnOnce(&mut Buffers)) {
    // Fails only while the thread exits: the buffers are dropped then.
    let _ = SPARE.try_with(|spare| {
        let mut buffers = spare.take().unwrap_or_default();
        give(&mut buffers);
        if buffers.bytes() <= SPARE_MAX_BYTES {
            buffers.clear();
            spare.set(Some(buffers));
        }
    });
}

/// `prefix:local` split at its first colon (`None` without one); a byte
/// scan, as names are short.
fn split_qname(qname: &str) -> Option<(&str, &str)> {
    let colon = qname.bytes().position(|b| b == b':')?;
    Some((qname.get(..colon)?, qname.get(colon + 1..)?))
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}
