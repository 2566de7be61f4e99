//! Tests of `xml`.
use std::collections::BTreeMap;

use super::*;
use crate::soap_writer::escape;
use proptest::prelude::*;

fn parse(xml: &str) -> Result<Document, XmlError> {
    Document::parse(xml.as_bytes(), &Limits::default())
}

fn path(text: &str) -> Path {
    let ns = BTreeMap::from([
        ("p".to_owned(), "urn:x".to_owned()),
        ("v".to_owned(), "urn:v".to_owned()),
    ]);
    Path::compile(text, &ns).expect("path compiles")
}

#[test]
fn prefixes_for_the_same_uri_resolve_the_same() {
    let docs = [
        r#"<a:R xmlns:a="urn:x"><a:C>1</a:C></a:R>"#,
        r#"<R xmlns="urn:x"><b:C xmlns:b="urn:x"> 1 </b:C></R>"#,
        r#"<?xml version="1.0"?><z:R xmlns:z="urn:x"><C xmlns="urn:x">1</C></z:R>"#,
    ];
    for xml in docs {
        let doc = parse(xml).expect(xml);
        assert_eq!(doc.name(doc.root()), ("urn:x", "R"), "{xml}");
        assert_eq!(doc.select(&path("p:C"), doc.root()), Some("1"), "{xml}");
        assert_eq!(doc.select(&path("C"), doc.root()), None, "{xml}");
    }
}

#[test]
fn qualified_names_in_text_resolve_in_their_scope() {
    let xml = r#"<a:R xmlns:a="urn:a" xmlns="urn:d">
        <C xmlns:b="urn:b">a:x</C>
        <D xmlns:a="urn:a2" xmlns=""><E>a:y</E></D>
        <F>b:z</F></a:R>"#;
    let doc = parse(xml).unwrap();
    let child = |local| {
        doc.children(doc.root())
            .find(|&c| doc.name(c).1 == local)
            .unwrap()
    };
    let (c, d, f) = (child("C"), child("D"), child("F"));
    let e = doc.children(d).next().unwrap();
    assert_eq!(doc.resolve_qname(c, "a:x"), Some(("urn:a", "x")));
    assert_eq!(doc.resolve_qname(c, "b:x"), Some(("urn:b", "x")));
    assert_eq!(
        doc.resolve_qname(e, "a:y"),
        Some(("urn:a2", "y")),
        "redeclared"
    );
    assert_eq!(doc.resolve_qname(f, "b:z"), None, "b is out of scope");
    assert_eq!(
        doc.resolve_qname(f, "z"),
        Some(("urn:d", "z")),
        "default namespace"
    );
    assert_eq!(
        doc.resolve_qname(e, "z"),
        Some(("", "z")),
        "default undeclared"
    );
    assert_eq!(doc.resolve_qname(doc.root(), "nope:z"), None);
    let xml_ns = "http://www.w3.org/XML/1998/namespace";
    assert_eq!(doc.resolve_qname(f, "xml:lang"), Some((xml_ns, "lang")));
    assert_eq!(doc.namespace_of(d, "a"), Some("urn:a2"));
    assert_eq!(doc.namespace_of(doc.root(), "a"), Some("urn:a"));
}

#[test]
fn redeclared_prefixes_hold_inside_their_element_only() {
    let xml = r#"<a:R xmlns:a="urn:1" xmlns="urn:d">
        <a:C xmlns:a="urn:2"><a:D/><E xmlns="urn:e"><F/></E><G/></a:C>
        <a:H/><I/></a:R>"#;
    let doc = parse(xml).unwrap();
    let names: Vec<_> = (0..doc.elements.len())
        .map(|i| doc.name(NodeId(i)))
        .collect();
    assert_eq!(
        names,
        [
            ("urn:1", "R"),
            ("urn:2", "C"),
            ("urn:2", "D"),
            ("urn:e", "E"),
            ("urn:e", "F"),
            ("urn:d", "G"),
            ("urn:1", "H"),
            ("urn:d", "I"),
        ]
    );
}

#[test]
fn prefixes_bound_on_the_element_itself_apply_to_its_name_and_attributes() {
    // The attribute comes before the declaration it needs.
    let xml = r#"<p:R p:x="1" y="2" xmlns:p="urn:p" q:z="3" xmlns:q="urn:q"><q:C/></p:R>"#;
    let doc = parse(xml).unwrap();
    let root = doc.root();
    assert_eq!(doc.name(root), ("urn:p", "R"));
    assert_eq!(doc.attribute(root, Some("urn:p"), "x"), Some("1"));
    assert_eq!(doc.attribute(root, None, "y"), Some("2"));
    assert_eq!(doc.attribute(root, Some("urn:q"), "z"), Some("3"));
    assert_eq!(doc.attribute(root, None, "x"), None);
    let c = doc.children(root).next().unwrap();
    assert_eq!(doc.name(c), ("urn:q", "C"));
    // Namespace names are attribute values: references are expanded.
    let doc = parse(r#"<p:R xmlns:p="urn:a&amp;b&#x21;"/>"#).unwrap();
    assert_eq!(doc.name(doc.root()), ("urn:a&b!", "R"));
    // `xml` needs no declaration, and may be declared as what it is.
    let xml_ns = "http://www.w3.org/XML/1998/namespace";
    let doc = parse(&format!(r#"<R xmlns:xml="{xml_ns}" xml:lang="en"/>"#)).unwrap();
    assert_eq!(doc.attribute(doc.root(), Some(xml_ns), "lang"), Some("en"));
}

#[test]
fn forbidden_namespace_declarations_and_unbound_prefixes_are_errors() {
    let xml_ns = "http://www.w3.org/XML/1998/namespace";
    let xmlns_ns = "http://www.w3.org/2000/xmlns/";
    let cases = [
        (
            r#"<R xmlns:xml="urn:x"/>"#.to_owned(),
            "'xml' cannot be bound",
        ),
        (
            r#"<R xmlns:xmlns="urn:x"/>"#.to_owned(),
            "'xmlns' cannot be bound",
        ),
        (
            format!(r#"<R xmlns:p="{xml_ns}"/>"#),
            "prefix 'p' cannot be bound",
        ),
        (
            format!(r#"<R xmlns:p="{xmlns_ns}"/>"#),
            "prefix 'p' cannot be bound",
        ),
        (
            format!(r#"<R xmlns="{xmlns_ns}"/>"#),
            "prefix '' cannot be bound",
        ),
        (
            format!(r#"<R xmlns="{xml_ns}"/>"#),
            "prefix '' cannot be bound",
        ),
        (
            r#"<R xmlns:="urn:x"/>"#.to_owned(),
            "unknown namespace prefix ''",
        ),
        (
            r#"<R xmlns:p="urn:p"><p:C xmlns:p=""/></R>"#.to_owned(),
            "undeclared namespace prefix \"p\" at byte 19",
        ),
        (
            r#"<R><p:C/></R>"#.to_owned(),
            "undeclared namespace prefix \"p\" at byte 3",
        ),
        (
            r#"<R p:a="1"/>"#.to_owned(),
            "undeclared namespace prefix \"p\"",
        ),
        (
            r#"<xmlns:R/>"#.to_owned(),
            "undeclared namespace prefix \"xmlns\"",
        ),
        (r#"<:R/>"#.to_owned(), "undeclared namespace prefix \"\""),
        (
            r#"<a:R xmlns:a="urn:a"/><a:S/>"#.to_owned(),
            "a second element <a:S>",
        ),
    ];
    for (xml, want) in cases {
        let err = parse(&xml).unwrap_err();
        assert!(err.is_vendor_fault());
        let text = err.to_string();
        assert!(text.contains(want), "{xml}: {text}");
    }
}

#[test]
fn namespace_declarations_in_scope_are_bounded() {
    let declarations = |n: usize| -> String {
        (0..n)
            .map(|i| format!(r#" xmlns:p{i}="urn:{i}""#))
            .collect()
    };
    // 128 in scope at once are read; one more is refused.
    let nested = format!("<R{}><C{}/></R>", declarations(100), declarations(28));
    parse(&nested).unwrap();
    let nested = format!("<R{}><C{}/></R>", declarations(100), declarations(29));
    let err = parse(&nested).unwrap_err().to_string();
    assert!(err.contains("more than 128 namespace bindings"), "{err}");
    // Declarations of siblings are not in scope together.
    let siblings = format!("<R>{}</R>", format!("<C{}/>", declarations(100)).repeat(3));
    parse(&siblings).unwrap();
}

#[test]
fn default_namespace_applies_to_elements_not_attributes() {
    let doc = parse(r#"<R xmlns="urn:x" a="1"><C/><D xmlns=""><E>e</E></D></R>"#).unwrap();
    let c = doc.child(doc.root(), "urn:x", "C").unwrap();
    assert_eq!(doc.name(c), ("urn:x", "C"));
    assert_eq!(doc.select(&path("D/E"), doc.root()), Some("e"));
    assert_eq!(doc.select(&path("p:D/E"), doc.root()), None);
    assert_eq!(doc.attribute(doc.root(), None, "a"), Some("1"));
    assert_eq!(doc.attribute(doc.root(), Some("urn:x"), "a"), None);
}

#[test]
fn attributes_resolve_their_namespace_and_are_normalized() {
    let xml = r#"<R xmlns:w="urn:v" code="7" w:code="8" xml:lang="en">
        <In status=" o&amp;k " t="a&#10;b" n="a
b"/></R>"#;
    let doc = parse(xml).unwrap();
    let root = doc.root();
    assert_eq!(doc.attribute(root, None, "code"), Some("7"));
    assert_eq!(doc.attribute(root, Some("urn:v"), "code"), Some("8"));
    let xml_ns = "http://www.w3.org/XML/1998/namespace";
    assert_eq!(doc.attribute(root, Some(xml_ns), "lang"), Some("en"));
    assert_eq!(doc.attribute(root, None, "xmlns"), None);
    assert_eq!(doc.select(&path("@code"), root), Some("7"));
    assert_eq!(doc.select(&path("@v:code"), root), Some("8"));
    assert_eq!(doc.select(&path("In/@status"), root), Some(" o&k "));
    assert_eq!(doc.select(&path("In/@t"), root), Some("a\nb"));
    assert_eq!(doc.select(&path("In/@n"), root), Some("a b"));
    assert_eq!(doc.select(&path("In/@missing"), root), None);
}

#[test]
fn text_joins_text_cdata_and_references_but_not_children() {
    let xml = "<R> a<!-- c -->b<![CDATA[<c>]]>&amp;&#x41;&#66;<?pi x?><K>k</K>\r\nz </R>";
    let doc = parse(xml).unwrap();
    assert_eq!(doc.text(doc.root()), " ab<c>&AB\nz ");
    assert_eq!(doc.trimmed_text(doc.root()), "ab<c>&AB\nz");
    let kids: Vec<_> = doc.children(doc.root()).collect();
    assert_eq!(kids.len(), 1);
    assert_eq!(doc.text(kids[0]), "k");
}

#[test]
fn text_around_nested_children_stays_with_its_element() {
    // Each parent's text resumes after its children's: kept apart, then
    // joined when the parent closes (and the buffers reused).
    let xml = "<A>1<B>2<C>3</C>4<C/>5</B>6<B>7</B>8</A>";
    let doc = parse(xml).unwrap();
    let a = doc.root();
    assert_eq!(doc.text(a), "168");
    let bs: Vec<_> = doc.children(a).collect();
    assert_eq!((doc.text(bs[0]), doc.text(bs[1])), ("245", "7"));
    let cs: Vec<_> = doc.children(bs[0]).collect();
    assert_eq!((doc.text(cs[0]), doc.text(cs[1])), ("3", ""));
}

#[test]
fn reused_buffers_carry_nothing_over() {
    // Each thread keeps the buffers of its last answer for the next one.
    let first = parse(r#"<a:R xmlns:a="urn:1" x="1"><a:C>one<a:D/>more</a:C></a:R>"#).unwrap();
    let kept = first.clone();
    drop(first);
    assert!(parse("<R><C>half").is_err());
    let second = parse("<R><C>two</C></R>").unwrap();
    let root = second.root();
    assert_eq!(second.name(root), ("", "R"));
    assert_eq!(second.attribute(root, None, "x"), None);
    let c = second.children(root).next().unwrap();
    assert_eq!((second.text(c), second.namespace_of(c, "a")), ("two", None));
    assert_eq!(second.children(c).count(), 0);
    // A document still alive is not touched by later parses.
    let c = kept.children(kept.root()).next().unwrap();
    assert_eq!((kept.name(c), kept.text(c)), (("urn:1", "C"), "onemore"));
}

#[test]
fn doctype_and_entities_are_refused() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<lolz>&lol2;</lolz>"#;
    assert!(matches!(
        parse(laughs),
        Err(XmlError::Doctype { position: 22 })
    ));
    let external = r#"<!DOCTYPE R SYSTEM "file:///etc/passwd"><R/>"#;
    assert!(matches!(
        parse(external),
        Err(XmlError::Doctype { position: 0 })
    ));
    let undeclared = parse("<R>&lol2;</R>").unwrap_err();
    assert!(matches!(&undeclared, XmlError::Entity { name, position: 3 } if name == "lol2"));
    let in_attribute = parse(r#"<R a="x&lol;"/>"#).unwrap_err();
    assert!(matches!(&in_attribute, XmlError::Entity { name, .. } if name == "lol"));
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_bytes: 64,
        max_depth: 3,
        max_nodes: 4,
    };
    let ok = |xml: &str| Document::parse(xml.as_bytes(), &limits).map(|_| ());
    let limit = |xml: &str| match Document::parse(xml.as_bytes(), &limits) {
        Err(XmlError::Limit { limit, .. }) => limit,
        other => panic!("{xml}: {other:?}"),
    };
    ok("<a><b><c/></b></a>").unwrap();
    assert_eq!(limit("<a><b><c><d/></c></b></a>"), "max_depth");
    ok("<a x='1'><b/><c/></a>").unwrap();
    assert_eq!(limit("<a><b/><c/><d/><e/></a>"), "max_nodes");
    assert_eq!(limit("<a x='1' y='2'><b/><c/></a>"), "max_nodes");
    ok(&format!("<a>{}</a>", "x".repeat(57))).unwrap();
    assert_eq!(limit(&format!("<a>{}</a>", "x".repeat(58))), "max_bytes");
}

#[test]
fn malformed_answers_are_errors_with_a_position() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "no root element (ends at byte 0)"),
        (b"  \n", "no root element"),
        (
            b"<a></b>",
            "at byte 3: ill-formed document: expected `</a>`, but `</b>`",
        ),
        (b"<a><b></b>", "ends at byte 10 with <a> still open"),
        (b"<a", "malformed at byte 0"),
        (b"</a>", "malformed at byte 0"),
        (
            b"<a/><b/>",
            "a second element <b> outside the root element at byte 4",
        ),
        (b"<a/>junk", "text outside the root element at byte 4"),
        (b"x<a/>", "text outside the root element at byte 0"),
        (b"<a/>&amp;", "a reference outside"),
        (b"<![CDATA[x]]><a/>", "CDATA outside"),
        (b"<p:a/>", "undeclared namespace prefix \"p\" at byte 0"),
        (b"<a>\xff</a>", "answer is not UTF-8 at byte 3"),
        (b"<a>\x01</a>", "U+0001"),
        (b"<a>&#1;</a>", "invalid character reference &#1; at byte 3"),
        (b"<a>&#xZZ;</a>", "&#xZZ;"),
        (b"<a>&amp</a>", "malformed"),
        (b" <?xml version=\"1.0\"?><a/>", "XML declaration at byte 1"),
        (b"<a x='1' x='2'/>", "malformed at byte 0"),
        (b"<a><!-- x -- y --></a>", "malformed"),
        (
            b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a/>",
            "encoding \"KOI8-R\" (named by its XML declaration), which cardhub does not read",
        ),
        (
            b"\xff\xfe<\0a\0/\0>\0",
            "encoding \"UTF-16\" (named by its byte order mark)",
        ),
    ];
    for (xml, want) in cases {
        let err = Document::parse(xml, &Limits::default()).unwrap_err();
        assert!(err.is_vendor_fault());
        let text = err.to_string();
        assert!(
            text.contains(want),
            "{:?}: {text}",
            String::from_utf8_lossy(xml)
        );
    }
}

#[test]
fn latin1_and_cp1252_answers_are_read_as_declared_or_sent() {
    let limits = Limits::default();
    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a b=\"\xe9\">Gr\xfc\xdfe</a>";
    let doc = Document::parse(latin1, &limits).unwrap();
    assert_eq!(doc.text(doc.root()), "Grüße");
    assert_eq!(doc.attribute(doc.root(), None, "b"), Some("é"));
    let cp1252 = b"<?xml version='1.0' encoding='windows-1252'?><a>5 \x80</a>";
    let doc = Document::parse(cp1252, &limits).unwrap();
    assert_eq!(doc.text(doc.root()), "5 €");

    // The transport's charset names the encoding of an undeclared answer,
    // and overrides a declaration.
    let undeclared = b"<a>Gr\xfc\xdfe</a>";
    let err = Document::parse(undeclared, &limits).unwrap_err();
    assert_eq!(err.to_string(), "answer is not UTF-8 at byte 5");
    let doc = Document::parse_with_charset(undeclared, Some("ISO-8859-1"), &limits).unwrap();
    assert_eq!(doc.text(doc.root()), "Grüße");
    let err = Document::parse_with_charset(latin1, Some("utf-8"), &limits).unwrap_err();
    assert!(matches!(err, XmlError::Undecodable(_)), "{err}");
    let err = Document::parse_with_charset(undeclared, Some("shift_jis"), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "answer is in encoding \"shift_jis\" (named by its charset), which cardhub does not read"
    );
    // A UTF-8 byte order mark wins over both.
    let bom = "\u{feff}<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>é</a>";
    let doc = Document::parse_with_charset(bom.as_bytes(), Some("latin1"), &limits).unwrap();
    assert_eq!(doc.text(doc.root()), "é");
}

#[test]
fn harmless_prologs_are_accepted() {
    let latin1_ascii = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<a>x</a>\n";
    parse(latin1_ascii).unwrap();
    let doc = parse("\u{feff}<!-- c --><?pi?>\n<a>x</a>\n<!-- c -->\n").unwrap();
    assert_eq!(doc.text(doc.root()), "x");
}

#[test]
fn path_errors_are_ours_and_name_the_problem() {
    let ns = BTreeMap::from([("p".to_owned(), "urn:x".to_owned())]);
    let err = Path::compile("p:a/q:b", &ns).unwrap_err();
    assert!(!err.is_vendor_fault());
    assert!(matches!(&err, XmlError::PathPrefix { prefix, .. } if prefix == "q"));
    assert!(err.to_string().contains("\"p:a/q:b\""));
    let err = Path::compile("@q:a", &ns).unwrap_err();
    assert!(matches!(&err, XmlError::PathPrefix { prefix, .. } if prefix == "q"));
    for bad in [
        "", "a//b", "/a", "a/", "@a/b", "a/@", "p:", ":a", "a b", "a:b:c", "1a", "@",
    ] {
        let err = Path::compile(bad, &ns).unwrap_err();
        assert!(matches!(err, XmlError::PathSyntax { .. }), "{bad:?}: {err}");
    }
    assert_eq!(path("p:A/v:b/@v:c").to_string(), "p:A/v:b/@v:c");
}

fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(vec!['&', '<', '>', '"', '\'', '\t', '\n', '\r', ' ', ']']),
        any::<char>().prop_filter("XML Char", |&c| is_xml_char(c)),
    ]
}

/// An element for the comparison with quick-xml: its prefix, its
/// declarations (default, `p`, `q`), a prefixed attribute, its children.
#[derive(Debug, Clone)]
struct Tree {
    prefix: Option<&'static str>,
    declarations: [Option<&'static str>; 3],
    attribute: Option<&'static str>,
    children: Vec<Tree>,
}

impl Tree {
    fn write(&self, out: &mut String) {
        let name = self.prefix.map_or("e".to_owned(), |p| format!("{p}:e"));
        out.push_str(&format!("<{name}"));
        for (prefix, uri) in ["xmlns", "xmlns:p", "xmlns:q"]
            .iter()
            .zip(self.declarations)
        {
            if let Some(uri) = uri {
                out.push_str(&format!(" {prefix}='{uri}'"));
            }
        }
        if let Some(prefix) = self.attribute {
            out.push_str(&format!(" {prefix}:a='1'"));
        }
        out.push('>');
        for child in &self.children {
            child.write(out);
        }
        out.push_str(&format!("</{name}>"));
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    let prefix = || prop::option::of(prop::sample::select(vec!["p", "q"]));
    let uri = || prop::option::of(prop::sample::select(vec!["urn:1", "urn:2", ""]));
    let element = move || (prefix(), [uri(), uri(), uri()], prefix());
    element()
        .prop_map(|(prefix, declarations, attribute)| Tree {
            prefix,
            declarations,
            attribute,
            children: Vec::new(),
        })
        .prop_recursive(4, 24, 3, move |inner| {
            (element(), prop::collection::vec(inner, 0..3)).prop_map(
                |((prefix, declarations, attribute), children)| Tree {
                    prefix,
                    declarations,
                    attribute,
                    children,
                },
            )
        })
}

/// Element and attribute names in document order as quick-xml's namespace
/// reader resolves them; `None` when it finds a prefix unbound.
fn quick_xml_names(xml: &str) -> Option<Vec<(String, String)>> {
    use quick_xml::name::ResolveResult;
    let name = |ns: ResolveResult, local: &str| match ns {
        ResolveResult::Bound(ns) => Some((ns.into_inner().to_owned(), local.to_owned())),
        ResolveResult::Unbound => Some((String::new(), local.to_owned())),
        ResolveResult::Unknown(_) => None,
    };
    let mut reader = quick_xml::reader::NsReader::from_str(xml);
    let mut names = Vec::new();
    loop {
        match reader.read_resolved_event().expect("well-formed") {
            (ns, Event::Start(e)) => {
                names.push(name(ns, e.local_name().into_inner())?);
                for attr in e.attributes() {
                    let attr = attr.expect("well-formed");
                    if attr.key.as_namespace_binding().is_none() {
                        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
                        names.push(name(ns, local.into_inner())?);
                    }
                }
            }
            (_, Event::Eof) => return Some(names),
            _ => {}
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Document::parse(&bytes, &Limits::default());
    }

    #[test]
    fn parse_never_panics_on_near_xml(
        parts in prop::collection::vec(prop::sample::select(vec![
            "<a>", "</a>", "<b/>", "<p:c xmlns:p='u'>", "</p:c>", "&amp;", "&#x41;", "&",
            "<![CDATA[", "]]>", "<!--", "-->", "<?pi", "?>", " x='1'", "<!DOCTYPE", "text", ">",
        ]), 0..24),
    ) {
        let _ = Document::parse(parts.concat().as_bytes(), &Limits::default());
    }

    /// Names resolve as quick-xml's own namespace reader (an independent
    /// implementation) resolves them, and a prefix it finds unbound is an
    /// error.
    #[test]
    fn names_resolve_as_quick_xml_resolves_them(tree in tree()) {
        let mut xml = String::new();
        tree.write(&mut xml);
        match (parse(&xml), quick_xml_names(&xml)) {
            (Ok(doc), Some(theirs)) => {
                let mut ours = Vec::new();
                for (i, element) in doc.elements.iter().enumerate() {
                    let (ns, local) = doc.name(NodeId(i));
                    ours.push((ns.to_owned(), local.to_owned()));
                    for attr in &doc.attributes[element.attrs.0..element.attrs.1] {
                        let ns = doc.namespace(attr.ns).to_owned();
                        ours.push((ns, doc.string(attr.local).to_owned()));
                    }
                }
                prop_assert_eq!(ours, theirs, "{}", xml);
            }
            (Err(XmlError::Prefix { .. }), None) => {}
            (ours, theirs) => prop_assert!(false, "{xml}: ours {ours:?}, quick-xml {theirs:?}"),
        }
    }

    #[test]
    fn escaped_text_parses_back(chars in prop::collection::vec(xml_char(), 0..64)) {
        let text: String = chars.into_iter().collect();
        let mut xml = String::from("<r a=\"");
        escape(&text, &mut xml);
        xml.push_str("\">");
        escape(&text, &mut xml);
        xml.push_str("</r>");
        let doc = parse(&xml).map_err(|e| TestCaseError::fail(format!("{xml}: {e}")))?;
        prop_assert_eq!(doc.text(doc.root()), text.as_str());
        prop_assert_eq!(doc.attribute(doc.root(), None, "a"), Some(text.as_str()));
    }
}
