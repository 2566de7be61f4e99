//! An account system's answer as each shipped adapter reads it
//! (`Adapter::decode_answer`): SOAP 1.1 and 1.2 envelopes and faults, plain
//! XML, fixed-width records. Any answer gives an answer or an error; over
//! HTTP, an error status is read as an answer only through a SOAP Fault
//! (the adapter's `[faults]` codes), and a Fault never as an approval.
//! (Error texts are not masked here: the hub masks them where it logs and
//! journals them, `hub::call`.)
//!
//! Input: the answer's body, read as sent with HTTP 200 and with 500.

use std::sync::LazyLock;

use cardhub_core::account::{AccountRequest, Operation};
use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::soap::{self, Version};
use cardhub_core::xml::{Document, Limits};

/// An adapter in `adapters/` and how its answers travel.
struct Shipped {
    adapter: Adapter,
    /// HTTP (a status is read), not fixed-width records on TCP.
    http: bool,
    /// The SOAP version of its envelopes.
    soap: Option<Version>,
}

static ADAPTERS: LazyLock<Vec<Shipped>> = LazyLock::new(|| {
    [
        ("canonical", true, Some(Version::V11)),
        ("legacy-soap12", true, Some(Version::V12)),
        ("homebank-xml", true, None),
        ("mainframe-fixed", false, None),
    ]
    .into_iter()
    .map(|(name, http, soap)| {
        let path = super::repo().join(format!("adapters/{name}.toml"));
        let adapter = Adapter::load(&path).unwrap_or_else(|e| panic!("{e}"));
        Shipped {
            adapter,
            http,
            soap,
        }
    })
    .collect()
});

static REQUEST: LazyLock<AccountRequest> = LazyLock::new(super::account_request);

pub fn target(data: &[u8]) {
    let body = data;
    for shipped in ADAPTERS.iter() {
        let fault = shipped.soap.is_some_and(|v| has_fault(body, v));
        for (operation, status) in Operation::ALL
            .into_iter()
            .flat_map(|op| [(op, 200), (op, 500)])
        {
            let read = shipped
                .adapter
                .decode_answer(operation, status, body, &REQUEST);
            let name = shipped.adapter.name();
            if let Ok(answer) = read {
                assert!(
                    !shipped.http || status == 200 || fault,
                    "{name} {operation:?}: HTTP {status} read as an answer {answer:?}"
                );
                // A Fault may map to a decline ([faults] codes), never to an approval.
                assert!(
                    !(fault && answer.code.is_approval()),
                    "{name} {operation:?}: a Fault read as an approval {answer:?}"
                );
            }
        }
    }
}

/// Whether `body` is a SOAP envelope of `version` whose Body holds a Fault.
fn has_fault(body: &[u8], version: Version) -> bool {
    let Ok(doc) = Document::parse(body, &Limits::default()) else {
        return false;
    };
    soap::body(&doc, version).is_ok_and(|b| soap::fault(&doc, b, version).is_some())
}
