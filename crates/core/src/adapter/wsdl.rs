//! The WSDL an adapter file says it implements (`wsdl = "…"`): the action
//! each request element must be sent with, read from the WSDL's SOAP 1.1 and
//! SOAP 1.2 bindings. A server generated from the WSDL refuses a request
//! whose action differs from its binding's (WS-I Basic Profile R2744), so
//! `cardhub adapters check` compares every operation's `soap_action` with it.
//!
//! Only what the check needs is read: messages (request element of each),
//! port-type operations (their input message) and binding operations (their
//! `soapAction`). Imports and types are not followed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::{AdapterFile, Transport};
use super::soap::Version;
use crate::xml::{Document, Limits, NodeId, XmlError};

const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
const WSDL_SOAP11: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const WSDL_SOAP12: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";

/// A WSDL that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WsdlError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed XML.
    #[error("{path}: {source}")]
    Xml {
        path: PathBuf,
        #[source]
        source: XmlError,
    },
    /// Not a WSDL 1.1 document.
    #[error("{path}: the root is not a wsdl:definitions element")]
    NotWsdl { path: PathBuf },
}

/// A request element: namespace URI and local name.
pub type ElementName = (String, String);

/// The action of every request element, per SOAP version, by the WSDL's bindings.
#[derive(Debug, Default)]
pub struct BindingActions {
    actions: HashMap<(Version, ElementName), String>,
}

impl BindingActions {
    /// Reads the bindings of the WSDL at `path`.
    ///
    /// # Errors
    /// [`WsdlError`] when the file cannot be read or is not a WSDL.
    pub fn read(path: &Path) -> Result<BindingActions, WsdlError> {
        let bytes = std::fs::read(path).map_err(|source| WsdlError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let limits = Limits {
            max_bytes: 16 << 20,
            max_nodes: 1_000_000,
            ..Limits::default()
        };
        let doc = Document::parse(&bytes, &limits).map_err(|source| WsdlError::Xml {
            path: path.to_path_buf(),
            source,
        })?;
        let root = doc.root();
        if doc.name(root) != (WSDL, "definitions") {
            return Err(WsdlError::NotWsdl {
                path: path.to_path_buf(),
            });
        }
        Ok(BindingActions::of(&doc, root))
    }

    fn of(doc: &Document, root: NodeId) -> BindingActions {
        let in_wsdl = |local: &'static str| {
            doc.children(root)
                .filter(move |&n| doc.name(n) == (WSDL, local))
        };
        let owned = |(ns, local): (&str, &str)| (ns.to_string(), local.to_string());
        // message name -> its (single) part's element
        let mut elements: HashMap<String, ElementName> = HashMap::new();
        for message in in_wsdl("message") {
            let part = doc.child(message, WSDL, "part");
            let element = part.and_then(|p| {
                let qname = doc.attribute(p, None, "element")?;
                doc.resolve_qname(p, qname)
            });
            if let (Some(name), Some(element)) = (doc.attribute(message, None, "name"), element) {
                elements.insert(name.to_string(), owned(element));
            }
        }
        // operation name -> its input's element (all port types together)
        let mut inputs: HashMap<String, ElementName> = HashMap::new();
        for port_type in in_wsdl("portType") {
            for op in doc.children(port_type) {
                let input = doc.child(op, WSDL, "input").and_then(|i| {
                    let qname = doc.attribute(i, None, "message")?;
                    doc.resolve_qname(i, qname)
                });
                if let (Some(name), Some((_, message))) = (doc.attribute(op, None, "name"), input)
                    && let Some(element) = elements.get(message)
                {
                    inputs.insert(name.to_string(), element.clone());
                }
            }
        }
        let mut actions = HashMap::new();
        for binding in in_wsdl("binding") {
            for op in doc.children(binding) {
                let Some(element) = doc
                    .attribute(op, None, "name")
                    .and_then(|name| inputs.get(name))
                else {
                    continue;
                };
                for (version, ns) in [(Version::V11, WSDL_SOAP11), (Version::V12, WSDL_SOAP12)] {
                    if let Some(action) = doc
                        .child(op, ns, "operation")
                        .and_then(|o| doc.attribute(o, None, "soapAction"))
                    {
                        actions.insert((version, element.clone()), action.to_string());
                    }
                }
            }
        }
        BindingActions { actions }
    }

    /// The action a request whose Body holds `element` must carry in SOAP `version`.
    pub fn action(&self, version: Version, element: &ElementName) -> Option<&str> {
        self.actions
            .get(&(version, element.clone()))
            .map(String::as_str)
    }
}

/// Every operation of a SOAP adapter file whose `soap_action` is not the
/// one its WSDL binding gives for the template's request element; empty
/// when they all agree (or the file names no WSDL). `base` anchors the
/// file's relative `wsdl` path.
///
/// # Errors
/// [`WsdlError`] when the named WSDL cannot be read.
pub fn action_problems(file: &AdapterFile, base: &Path) -> Result<Vec<String>, WsdlError> {
    let Some(wsdl) = &file.wsdl else {
        return Ok(Vec::new());
    };
    let version = match file.transport {
        Transport::Soap11 => Version::V11,
        Transport::Soap12 => Version::V12,
        Transport::XmlHttp | Transport::FixedTcp => {
            return Ok(vec![format!(
                "wsdl: only SOAP transports have actions, not {:?}",
                file.transport
            )]);
        }
    };
    let path = base.join(wsdl);
    let bindings = BindingActions::read(&path)?;
    let mut problems = Vec::new();
    for (operation, def) in &file.operations {
        let at = format!("operations.{}", operation.as_str());
        let Some(element) = def
            .template
            .as_deref()
            .and_then(|t| request_element(file, t))
        else {
            problems.push(format!("{at}.template: no request element to look up"));
            continue;
        };
        let (ns, local) = &element;
        match (
            bindings.action(version, &element),
            def.soap_action.as_deref(),
        ) {
            (None, _) => problems.push(format!(
                "{at}: {{{ns}}}{local} is the input of no operation in the {version} binding of {}",
                path.display()
            )),
            (Some(wanted), Some(sent)) if wanted == sent => {}
            (Some(wanted), Some(sent)) => problems.push(format!(
                "{at}.soap_action: {sent:?} but the {version} binding of {} says {wanted:?}",
                path.display()
            )),
            (Some(wanted), None) => problems.push(format!(
                "{at}.soap_action: missing; the {version} binding of {} says {wanted:?}",
                path.display()
            )),
        }
    }
    Ok(problems)
}

/// The namespace and local name of a template's root element (prefixes
/// bound in the template itself or in the file's `[namespaces]`).
pub fn request_element(file: &AdapterFile, template: &str) -> Option<ElementName> {
    let mut wrapped = String::from("<cardhub-template");
    for (prefix, uri) in &file.namespaces {
        wrapped.push_str(&format!(" xmlns:{prefix}=\""));
        crate::soap_writer::escape(uri, &mut wrapped);
        wrapped.push('"');
    }
    wrapped.push('>');
    wrapped.push_str(template);
    wrapped.push_str("</cardhub-template>");
    let doc = Document::parse(wrapped.as_bytes(), &Limits::default()).ok()?;
    let root = doc.children(doc.root()).next()?;
    let (ns, local) = doc.name(root);
    Some((ns.to_string(), local.to_string()))
}
