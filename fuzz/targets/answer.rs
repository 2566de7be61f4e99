//! Fuzz target: an account system's answer (untrusted XML) must never panic
//! the hardened reader or the SOAP layer (fault codes resolved as qualified
//! names included), and stays within its limits.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cardhub_core::adapter::soap::{self, Version};
use cardhub_core::xml::{Document, Limits, Path};

static PATHS: LazyLock<Vec<Path>> = LazyLock::new(|| {
    let ns = BTreeMap::from([(
        "as".to_string(),
        "urn:cardhub:account-system:v1".to_string(),
    )]);
    [
        "as:AuthorizeResponse/as:resultCode",
        "as:AuthorizeResponse/@code",
        "a/b/c",
    ]
    .into_iter()
    .map(|p| Path::compile(p, &ns).expect("valid path"))
    .collect()
});

pub fn target(data: &[u8]) {
    let limits = Limits::default();
    let Ok(doc) = Document::parse(data, &limits) else {
        return;
    };
    assert!(data.len() <= limits.max_bytes);
    for version in [Version::V11, Version::V12] {
        if let Ok(body) = soap::body(&doc, version) {
            if let Some(fault) = soap::fault(&doc, body, version) {
                for &code in &fault.codes {
                    let _ = doc.resolve_qname(code, doc.trimmed_text(code));
                }
            }
            for path in PATHS.iter() {
                let _ = doc.select(path, body);
            }
        }
    }
    for path in PATHS.iter() {
        let _ = doc.select(path, doc.root());
    }
}
