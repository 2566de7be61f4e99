//! SOAP actions against the WSDLs: every shipped adapter that names a WSDL
//! sends, for every operation, exactly the action that WSDL's binding gives
//! the operation's request element (a server generated from the WSDL
//! refuses anything else), and `cardhub adapters check` says when not.

use std::path::{Path, PathBuf};

use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::file::AdapterFile;
use cardhub_core::adapter::soap::Version;
use cardhub_core::adapter::wsdl::{BindingActions, action_problems, request_element};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("adapters"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn file(path: &Path) -> AdapterFile {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_canonical_wsdl_gives_every_operation_its_hash_action_in_both_bindings() {
    let actions = BindingActions::read(&repo().join("wsdl/account-system.wsdl")).unwrap();
    for op in ["Authorize", "Load", "Reverse", "Advice", "BalanceInquiry"] {
        let element = ("urn:cardhub:account-system:v1".to_string(), op.to_string());
        for version in [Version::V11, Version::V12] {
            assert_eq!(
                actions.action(version, &element),
                Some(format!("urn:cardhub:account-system:v1#{op}").as_str()),
                "{op} {version}"
            );
        }
    }
}

#[test]
fn every_shipped_adapter_sends_its_wsdls_actions() {
    let mut claimed = Vec::new();
    for path in shipped() {
        let f = file(&path);
        let Some(wsdl) = &f.wsdl else { continue };
        let base = path.parent().unwrap();
        let actions = BindingActions::read(&base.join(wsdl)).unwrap();
        let version = match f.transport {
            cardhub_core::adapter::file::Transport::Soap11 => Version::V11,
            _ => Version::V12,
        };
        for (op, def) in &f.operations {
            let element = request_element(&f, def.template.as_deref().unwrap()).unwrap();
            let wanted = actions.action(version, &element);
            assert!(wanted.is_some(), "{}: {op:?} {element:?}", path.display());
            assert_eq!(
                def.soap_action.as_deref(),
                wanted,
                "{}: {op:?}",
                path.display()
            );
        }
        assert!(action_problems(&f, base).unwrap().is_empty());
        Adapter::check(&path).unwrap();
        claimed.push(f.name.clone());
    }
    // The two SOAP adapters say which WSDL they implement.
    assert_eq!(claimed, ["canonical", "legacy-soap12"]);
}

#[test]
fn a_wrong_action_is_named_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("adapters/canonical.toml"))
        .unwrap()
        .replace("v1#Advice", "v1/Advice")
        .replace(
            "\"../wsdl/account-system.wsdl\"",
            &format!("{:?}", repo().join("wsdl/account-system.wsdl")),
        );
    let path = dir.path().join("canonical.toml");
    std::fs::write(&path, text).unwrap();
    let problems = Adapter::check(&path).err().unwrap().problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("operations.advice.soap_action: \"urn:cardhub:account-system:v1/Advice\"")
            && problems[0].contains("\"urn:cardhub:account-system:v1#Advice\""),
        "{problems:?}"
    );
    // The hub itself still loads it: actions are the check's business.
    Adapter::load(&path).unwrap();
}
