//! The request readers of the reference account system and the vendor
//! demo servers (`refsys::soap`, `corebank`, `homebank`, `mainframe`): any
//! request is read or refused, and the refusal each server writes back
//! (which echoes parts of the request) is one the hub's adapter for that
//! server reads as an answer or a fault, never as a malformed reply.
//!
//! Input: byte 0 picks the server (mod 4; for CoreBank, the SOAP action by
//! the rest), the rest is the request body (the mainframe's record without
//! its length prefix).

use std::sync::LazyLock;

use cardhub_core::account::{AccountError, AccountRequest, Operation};
use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::soap::FaultCode;
use cardhub_lab::refsys::corebank::{self, Credentials, Nonces, RequestError};
use cardhub_lab::refsys::{homebank, mainframe, soap};

/// The hub's adapter for each server: canonical, legacy-soap12,
/// homebank-xml, mainframe-fixed.
static ADAPTERS: LazyLock<[Adapter; 4]> = LazyLock::new(|| {
    [
        "canonical",
        "legacy-soap12",
        "homebank-xml",
        "mainframe-fixed",
    ]
    .map(|name| {
        let path = super::repo().join(format!("adapters/{name}.toml"));
        Adapter::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
});

/// The mainframe transaction codes the hub sends (mainframe-fixed.toml).
const HUB_CODES: [&[u8]; 5] = [b"AU01", b"LD01", b"RV01", b"AD01", b"BI01"];

static REQUEST: LazyLock<AccountRequest> = LazyLock::new(super::account_request);

pub fn target(data: &[u8]) {
    let [server, body @ ..] = data else {
        return;
    };
    match server % 4 {
        0 => reference(body),
        1 => core_bank(*server, body),
        2 => home_bank(body),
        _ => main_frame(body),
    }
}

/// The hub's adapter `index` reads `reply` (HTTP `status`) as an answer or
/// a fault for one of its operations.
fn readable(index: usize, status: u16, reply: &[u8]) {
    let adapter = &ADAPTERS[index];
    let mut why = Vec::new();
    for operation in Operation::ALL {
        match adapter.decode_answer(operation, status, reply, &REQUEST) {
            Err(AccountError::Malformed(e)) => why.push(format!("{operation:?}: {e}")),
            _ => return,
        }
    }
    panic!(
        "{}: the server's refusal does not read: {}\n{}",
        adapter.name(),
        why.join("; "),
        String::from_utf8_lossy(reply)
    );
}

fn reference(body: &[u8]) {
    // Every operation's action, so a body gets past the action check.
    let actions = Operation::ALL.map(|op| format!("\"{}\"", soap::action_of(op)));
    for content_type in [None, Some("text/xml"), Some("application/soap+xml")] {
        for action in &actions {
            if let Err(e) = soap::parse_request(body, content_type, Some(action)) {
                let version = soap::fault_version(content_type);
                let fault = soap::fault(version, FaultCode::Sender, "904", &e.to_string());
                readable(0, 500, fault.as_bytes());
            }
        }
    }
}

/// CoreBank's operations, in the order of `Operation::ALL`.
const COREBANK_OPERATIONS: [&str; 5] = [
    "ReserveFunds",
    "CreditAccount",
    "CancelReservation",
    "PostAdvice",
    "GetBalance",
];

/// `pick` chooses the SOAP action. The seeds carry a token for the
/// legacy-soap12 adapter's credentials created at `now`, so the reader gets
/// past authentication.
fn core_bank(pick: u8, body: &[u8]) {
    let credentials = Credentials {
        username: "CARDHUB01".into(),
        password: "demo-only-not-a-secret".into(),
    };
    let now = "2026-03-01T12:00:00Z".parse().expect("timestamp");
    let operation = COREBANK_OPERATIONS[usize::from(pick / 4) % COREBANK_OPERATIONS.len()];
    let content_type = format!(
        "application/soap+xml; charset=utf-8; action=\"{}/{operation}\"",
        corebank::NAMESPACE
    );
    match corebank::parse_request(
        body,
        &content_type,
        &credentials,
        &mut Nonces::default(),
        now,
    ) {
        Ok(_) => {}
        Err(RequestError::Authentication(_)) => {
            let reply = corebank::authentication_fault();
            readable(1, reply.status, reply.xml.as_bytes());
        }
        Err(e) => {
            let text = e.to_string();
            let reply = corebank::fault(
                FaultCode::Sender,
                corebank::UNREADABLE,
                "Request not readable",
                &text,
                None,
            );
            readable(1, reply.status, reply.xml.as_bytes());
        }
    }
}

fn home_bank(body: &[u8]) {
    if let Err((echo, e)) = homebank::parse_request(body) {
        let reply = homebank::status(&echo, "-1", &format!("SYNTAX ERROR: {e}"));
        readable(2, 200, &reply);
    }
}

fn main_frame(record: &[u8]) {
    if let Err((echo, e)) = mainframe::read(record) {
        let reply = mainframe::refusal(&echo, &e);
        assert_eq!(reply.len(), mainframe::ANSWER_LEN, "refusal length");
        assert!(reply.is_ascii(), "refusal not ASCII");
        // The hub reads the answers to the transaction codes it sends.
        if HUB_CODES.iter().any(|code| record.starts_with(code)) {
            readable(3, 200, &reply);
        }
    }
}
