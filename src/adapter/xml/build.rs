//! Building a [`Document`] from quick-xml's events: elements, attributes,
//! text and namespace scopes, with the limits and checks of an untrusted
//! answer. [`Document::parse`] drives it.

use quick_xml::XmlVersion;
use quick_xml::errors::IllFormedError;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart};
use quick_xml::name::{NamespaceResolver, PrefixDeclaration, ResolveResult};

use super::{
    Attr, Binding, Document, Element, Limits, NodeId, Span, XmlError, check_chars, is_xml_char,
    is_xml_space, limit, malformed,
};

/// An element being parsed.
struct Open {
    id: NodeId,
    last_child: Option<NodeId>,
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
        let elements = (input_len / 32).max(8).min(limits.max_nodes);
        Builder {
            limits,
            doc: Document {
                elements: Vec::with_capacity(elements),
                attributes: Vec::with_capacity(4),
                namespaces: vec![Span(0, 0)],
                bindings: Vec::with_capacity(4),
                strings: String::with_capacity((input_len / 2).max(64)),
                texts: String::with_capacity((input_len / 2).max(64)),
            },
            stack: Vec::with_capacity(16),
            root_done: false,
            spills: Vec::new(),
            version: XmlVersion::Implicit1_0,
        }
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

    pub(super) fn open(
        &mut self,
        resolver: &NamespaceResolver,
        start: &BytesStart,
        position: usize,
    ) -> Result<(), XmlError> {
        let qname = start.name().into_inner();
        if self.root_done {
            let what = format!("a second element <{qname}>");
            return Err(XmlError::OutsideRoot { what, position });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(limit("max_depth", self.limits.max_depth, position));
        }
        self.count_node(position)?;
        let (ns, local) = resolver.resolve_element(start.name());
        let ns = self.intern(ns, position)?;
        let parent = self.stack.last().map(|open| open.id.0);
        let mut scope = parent.and_then(|p| self.doc.elements[p].scope);
        let first_attr = self.doc.attributes.len();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| malformed(e.into(), position))?;
            if let Some(declaration) = attr.key.as_namespace_binding() {
                scope = Some(self.bind(declaration, &attr.value, scope));
                continue;
            }
            self.count_node(position)?;
            let (attr_ns, attr_local) = resolver.resolve_attribute(attr.key);
            let attr_ns = self.intern(attr_ns, position)?;
            let value = attr
                .normalized_value(self.version)
                .map_err(|e| malformed(e, position))?;
            check_chars(&value, position)?;
            let local = self.keep(attr_local.into_inner());
            let value = self.keep(&value);
            self.doc.attributes.push(Attr {
                ns: attr_ns,
                local,
                value,
            });
        }
        let id = NodeId(self.doc.elements.len());
        let local = self.keep(local.into_inner());
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
            spill: None,
        });
        Ok(())
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
        Ok(self.doc)
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

    /// Records a namespace declaration (`uri` as written, as quick-xml
    /// resolves names with it) inside scope `outer`; returns the new scope.
    fn bind(&mut self, declaration: PrefixDeclaration, uri: &str, outer: Option<u32>) -> u32 {
        let prefix = match declaration {
            PrefixDeclaration::Default => "",
            PrefixDeclaration::Named(prefix) => prefix,
        };
        let prefix = self.keep(prefix);
        let ns = self.intern_uri(uri);
        self.doc.bindings.push(Binding { prefix, ns, outer });
        (self.doc.bindings.len() - 1) as u32
    }

    fn intern(&mut self, ns: ResolveResult, position: usize) -> Result<usize, XmlError> {
        match ns {
            ResolveResult::Bound(ns) => Ok(self.intern_uri(ns.into_inner())),
            ResolveResult::Unbound => Ok(0),
            ResolveResult::Unknown(prefix) => Err(XmlError::Prefix { prefix, position }),
        }
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
