//! Names and paths as adapter files write them: `prefix:local` expanded
//! through the file's `[namespaces]`, and paths like
//! `as:AuthorizeResponse/as:resultCode` compiled once, then followed by
//! [`Document::select`](super::Document::select).

use std::collections::BTreeMap;
use std::fmt;

use super::XmlError;

/// A compiled path like `as:AuthorizeResponse/as:resultCode` or
/// `v:Reply/@code`: element steps from a start node, the last step may name
/// an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    pub(super) steps: Vec<ExpandedName>,
    pub(super) attribute: Option<ExpandedName>,
}

/// A name with its namespace resolved: what XML compares, whatever prefix
/// a document uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExpandedName {
    /// Namespace URI, "" for none.
    pub namespace: String,
    pub local: String,
}

/// A qualified name an adapter file writes that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not `local` or `prefix:local` with XML names.
    #[error("not a name (prefix:local)")]
    Syntax,
    /// A prefix the file does not declare.
    #[error("prefix {0:?} is not in the adapter's [namespaces]")]
    Prefix(String),
}

impl ExpandedName {
    /// Expands `prefix:local` with `namespaces` (prefix → URI); `local`
    /// alone has no namespace.
    ///
    /// # Errors
    /// [`NameError::Syntax`] for anything but one or two names around a
    /// colon, [`NameError::Prefix`] for a prefix not in `namespaces`.
    pub fn parse(
        qname: &str,
        namespaces: &BTreeMap<String, String>,
    ) -> Result<ExpandedName, NameError> {
        let (prefix, local) = match qname.split_once(':') {
            Some((prefix, local)) => (Some(prefix), local),
            None => (None, qname),
        };
        if !prefix.is_none_or(is_name) || !is_name(local) {
            return Err(NameError::Syntax);
        }
        let namespace = match prefix {
            Some(prefix) => (namespaces.get(prefix).cloned())
                .ok_or_else(|| NameError::Prefix(prefix.to_owned()))?,
            None => String::new(),
        };
        let local = local.to_owned();
        Ok(ExpandedName { namespace, local })
    }
}

impl fmt::Display for ExpandedName {
    /// `{namespace}local`, James Clark's notation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}{}", self.namespace, self.local)
    }
}

impl Path {
    /// Compiles `text` (`p:a/p:b`, `p:a/@attr`, `@p:attr`, `a/b` for no
    /// namespace) against the adapter file's prefixes.
    ///
    /// # Errors
    ///
    /// [`XmlError::PathSyntax`] for an empty path or step, a bad name or an
    /// attribute that is not the last step; [`XmlError::PathPrefix`] for a
    /// prefix not in `namespaces`.
    pub fn compile(text: &str, namespaces: &BTreeMap<String, String>) -> Result<Path, XmlError> {
        let syntax = |reason| XmlError::PathSyntax {
            path: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(syntax("empty path"));
        }
        let mut path = Path {
            text: text.to_owned(),
            steps: Vec::new(),
            attribute: None,
        };
        for step in text.split('/') {
            if path.attribute.is_some() {
                return Err(syntax("an attribute (@name) can only be the last step"));
            }
            let (is_attr, qname) = match step.strip_prefix('@') {
                Some(qname) => (true, qname),
                None => (false, step),
            };
            let name = ExpandedName::parse(qname, namespaces).map_err(|e| match e {
                NameError::Syntax => {
                    syntax("a step is empty or not a name (prefix:local or @prefix:local)")
                }
                NameError::Prefix(prefix) => XmlError::PathPrefix {
                    path: text.to_owned(),
                    prefix,
                },
            })?;
            if is_attr {
                path.attribute = Some(name);
            } else {
                path.steps.push(name);
            }
        }
        Ok(path)
    }

    /// The path as written in the adapter file.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A loose NCName: a letter or `_`, then letters, digits, `_`, `-`, `.`.
pub(crate) fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
