//! SOAP faults: which of them are declines. A fault is no answer (the
//! stand-in layer decides) unless `[faults] map` names one of its codes:
//!
//! - the vendor's code read from the fault's detail by `[faults] code`,
//!   compared as text (`CB-E1004`);
//! - the SOAP fault code or a 1.2 subcode, a qualified name compared by
//!   namespace URI and local name, whatever prefix the answer uses: the key
//!   `soap:Receiver` matches `env:Receiver` and `soap12:Receiver` alike.
//!
//! A key with a colon is a qualified name: its prefix comes from the file's
//! `[namespaces]`, or is `soap`, the envelope namespace of the adapter's
//! SOAP version. A value with a prefix bound in the answer is compared by
//! name (a vendor code too), one without as text.

use std::collections::{BTreeMap, HashMap};

use super::file::FaultsFile;
use super::soap::{self, Version};
use crate::account::{AccountAnswer, AccountError};
use crate::iso8583::fields::ResponseCode;
use crate::xml::{self, Document, ExpandedName, NodeId};

/// The fault table of an adapter, compiled.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Where the vendor's code is, from the fault's detail.
    code: Option<xml::Path>,
    /// Codes without a prefix → DE 39.
    by_text: HashMap<String, ResponseCode>,
    /// Qualified codes → DE 39.
    by_name: HashMap<ExpandedName, ResponseCode>,
}

impl Faults {
    /// Compiles `[faults]`; `version` is the adapter's SOAP version (faults
    /// are only for SOAP). Problems are named by key.
    pub(super) fn compile(
        file: &FaultsFile,
        namespaces: &BTreeMap<String, String>,
        version: Option<Version>,
        problems: &mut Vec<String>,
    ) -> Faults {
        let mut faults = Faults::default();
        let Some(version) = version else {
            if file.code.is_some() || !file.map.is_empty() {
                problems.push("faults: only SOAP answers have faults".into());
            }
            return faults;
        };
        faults.code = file.code.as_ref().and_then(|p| {
            xml::Path::compile(p, namespaces)
                .map_err(|e| problems.push(format!("faults.code: {e}")))
                .ok()
        });
        let mut prefixes = namespaces.clone();
        prefixes
            .entry("soap".into())
            .or_insert_with(|| version.namespace().into());
        for (key, de39) in &file.map {
            let code = ResponseCode::new(de39)
                .map_err(|e| problems.push(format!("faults.map.{key}: {e}")))
                .ok();
            if !key.contains(':') {
                if let Some(code) = code {
                    faults.by_text.insert(key.clone(), code);
                }
                continue;
            }
            match ExpandedName::parse(key, &prefixes) {
                Ok(name) => {
                    if let Some(code) = code {
                        faults.by_name.insert(name, code);
                    }
                }
                Err(e) => problems.push(format!(
                    "faults.map.{key}: {e} (a key with a colon is a qualified name; \
                     soap is the envelope's namespace)"
                )),
            }
        }
        faults
    }

    /// What a fault means: a decline when one of its codes is mapped — the
    /// vendor's detail code first, then the most specific SOAP (sub)code —
    /// otherwise no answer.
    ///
    /// # Errors
    /// [`AccountError::Fault`] with the vendor's code (or the SOAP code)
    /// and the reason, when no code is mapped.
    pub(super) fn outcome(
        &self,
        doc: &Document,
        fault: soap::Fault,
    ) -> Result<AccountAnswer, AccountError> {
        let vendor = match (&self.code, fault.detail) {
            (Some(path), Some(detail)) => doc.locate(path, detail),
            _ => None,
        };
        let soap_codes = fault.codes.iter().rev().map(|&n| (n, doc.trimmed_text(n)));
        let mapped = vendor
            .into_iter()
            .chain(soap_codes)
            .find_map(|(node, text)| Some((self.code_of(doc, node, text)?, text)));
        match mapped {
            Some((code, text)) => Ok(AccountAnswer {
                code,
                raw_code: text.to_owned(),
                auth_id: None,
                balances: None,
                message: Some(fault.reason),
            }),
            None => Err(AccountError::Fault {
                code: vendor.map_or(fault.code, |(_, text)| text.to_owned()),
                message: fault.reason,
            }),
        }
    }

    /// The DE 39 a code found at `node` is mapped to.
    fn code_of(&self, doc: &Document, node: NodeId, text: &str) -> Option<ResponseCode> {
        if !text.contains(':') {
            return self.by_text.get(text).copied();
        }
        let (namespace, local) = doc.resolve_qname(node, text)?;
        let name = ExpandedName {
            namespace: namespace.to_owned(),
            local: local.to_owned(),
        };
        self.by_name.get(&name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Limits;

    const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

    /// The compiled table and the problems found compiling it.
    fn faults(code: Option<&str>, map: &[(&str, &str)]) -> (Faults, Vec<String>) {
        let file = FaultsFile {
            code: code.map(Into::into),
            map: map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let namespaces = BTreeMap::from([
            ("v".to_owned(), "urn:vendor".to_owned()),
            ("cb".to_owned(), "urn:corebank".to_owned()),
        ]);
        let mut problems = Vec::new();
        let faults = Faults::compile(&file, &namespaces, Some(Version::V12), &mut problems);
        (faults, problems)
    }

    /// A SOAP 1.2 fault with the envelope bound to `env`, a Code, optional
    /// Subcode and Detail.
    fn fault12(env: &str, code: &str, subcode: &str, detail: &str) -> String {
        let sub = match subcode {
            "" => String::new(),
            sub => format!("<{env}:Subcode><{env}:Value>{sub}</{env}:Value></{env}:Subcode>"),
        };
        format!(
            r#"<{env}:Envelope xmlns:{env}="{SOAP12}"><{env}:Body><{env}:Fault>
            <{env}:Code><{env}:Value>{code}</{env}:Value>{sub}</{env}:Code>
            <{env}:Reason><{env}:Text xml:lang="en">no</{env}:Text></{env}:Reason>
            <{env}:Detail>{detail}</{env}:Detail></{env}:Fault></{env}:Body></{env}:Envelope>"#
        )
    }

    fn outcome(faults: &Faults, xml: &str) -> Result<AccountAnswer, AccountError> {
        let doc = Document::parse(xml.as_bytes(), &Limits::default()).unwrap();
        let body = soap::body(&doc, Version::V12).unwrap();
        faults.outcome(&doc, soap::fault(&doc, body, Version::V12).unwrap())
    }

    #[test]
    fn soap_codes_match_by_namespace_whatever_the_prefix() {
        let (table, problems) =
            faults(None, &[("soap:Receiver", "91"), ("v:AmountTooLarge", "13")]);
        assert!(problems.is_empty(), "{problems:?}");
        for env in ["env", "soap12", "s"] {
            let answer = outcome(&table, &fault12(env, &format!("{env}:Receiver"), "", ""));
            let answer = answer.unwrap();
            assert_eq!(answer.code.as_str(), "91", "{env}");
            assert_eq!(answer.raw_code, format!("{env}:Receiver"));
            assert_eq!(answer.message.as_deref(), Some("no"));
        }
        // A subcode's prefix is declared where the vendor likes.
        let nested = fault12("env", "env:Sender", r#"x:AmountTooLarge"#, "")
            .replace("<env:Subcode>", r#"<env:Subcode xmlns:x="urn:vendor">"#);
        assert_eq!(outcome(&table, &nested).unwrap().code.as_str(), "13");
        // Same local name, another namespace: not the mapped code.
        let other = fault12("env", "env:Sender", "y:AmountTooLarge", "")
            .replace("<env:Subcode>", r#"<env:Subcode xmlns:y="urn:other">"#);
        let err = outcome(&table, &other).unwrap_err();
        assert_eq!(
            err,
            AccountError::Fault {
                code: "env:Sender/y:AmountTooLarge".into(),
                message: "no".into()
            }
        );
        // A prefix the answer never declared matches nothing.
        let undeclared = fault12("env", "soap:Receiver", "", "");
        assert!(outcome(&table, &undeclared).is_err());
    }

    #[test]
    fn the_vendor_code_comes_first_and_still_matches_as_text() {
        let (table, problems) = faults(
            Some("cb:Fault/cb:Code"),
            &[
                ("CB-E1004", "13"),
                ("soap:Receiver", "91"),
                ("cb:Locked", "62"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        let detail = |code: &str| {
            format!(r#"<cb:Fault xmlns:cb="urn:corebank"><cb:Code>{code}</cb:Code></cb:Fault>"#)
        };
        let answer = outcome(
            &table,
            &fault12("env", "env:Receiver", "", &detail("CB-E1004")),
        );
        assert_eq!(answer.unwrap().raw_code, "CB-E1004");
        // An unmapped vendor code falls back to the SOAP code…
        let answer = outcome(
            &table,
            &fault12("env", "env:Receiver", "", &detail("CB-E9001")),
        );
        assert_eq!(answer.unwrap().code.as_str(), "91");
        // …and names the fault when nothing is mapped.
        let err = outcome(
            &table,
            &fault12("env", "env:Sender", "", &detail("CB-E9001")),
        );
        assert_eq!(
            err.unwrap_err(),
            AccountError::Fault {
                code: "CB-E9001".into(),
                message: "no".into()
            }
        );
        // A qualified vendor code resolves in its own scope.
        let answer = outcome(
            &table,
            &fault12("env", "env:Sender", "", &detail("cb:Locked")),
        );
        assert_eq!(answer.unwrap().code.as_str(), "62");
    }

    #[test]
    fn keys_that_cannot_be_names_are_named() {
        let (_, problems) = faults(
            None,
            &[("x:Receiver", "91"), ("a:b:c", "05"), ("soap:Sender", "5")],
        );
        assert_eq!(
            problems,
            [
                "faults.map.a:b:c: not a name (prefix:local) (a key with a colon is a qualified name; soap is the envelope's namespace)",
                "faults.map.soap:Sender: response code \"5\" is not two letters or digits",
                "faults.map.x:Receiver: prefix \"x\" is not in the adapter's [namespaces] (a key with a colon is a qualified name; soap is the envelope's namespace)",
            ]
        );
        let mut problems = Vec::new();
        let file = FaultsFile {
            code: None,
            map: BTreeMap::from([("E1".to_owned(), "05".to_owned())]),
        };
        Faults::compile(&file, &BTreeMap::new(), None, &mut problems);
        assert_eq!(problems, ["faults: only SOAP answers have faults"]);
    }
}
