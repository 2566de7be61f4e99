//! Writing the answers and faults, always valid against hub.xsd.

use super::{FaultCode, HubFaultCode, LineErrorOut, NAMESPACE, SoapVersion, TEXT_MAX, clamp};
use crate::soap_writer::{self, Fault, escape};
use crate::standin::state::InstitutionState;

/// The HTTP status of a fault, as SOAP's HTTP bindings ask: SOAP 1.1 always
/// 500; SOAP 1.2 400 for `Sender`, 500 otherwise. Answers are 200.
pub fn fault_http_status(v: SoapVersion, code: FaultCode) -> u16 {
    match (v, code) {
        (SoapVersion::V12, FaultCode::Sender) => 400,
        _ => 500,
    }
}

/// The answer to `StatusNotify`: the state cardhub now holds.
pub fn status_response(v: SoapVersion, held: InstitutionState) -> String {
    let held = match held {
        InstitutionState::Open => "OPEN",
        InstitutionState::Closing => "CLOSING",
        InstitutionState::Closed => "CLOSED",
        InstitutionState::Unreachable => "UNREACHABLE",
        InstitutionState::OfflineOnly => "OFFLINE_ONLY",
    };
    soap_writer::message(v, |out| {
        open_message(out, "StatusNotifyResponse");
        out.push_str("<hub:state>");
        out.push_str(held);
        out.push_str("</hub:state></hub:StatusNotifyResponse>");
    })
}

/// The answer to `SubmitBalances` when the snapshot replaced the previous
/// one: its record count.
pub fn balances_accepted(v: SoapVersion, records: u64) -> String {
    soap_writer::message(v, |out| {
        open_message(out, "SubmitBalancesResponse");
        out.push_str("<hub:accepted><hub:records>");
        out.push_str(&records.to_string());
        out.push_str("</hub:records></hub:accepted></hub:SubmitBalancesResponse>");
    })
}

/// The answer to `SubmitBalances` when the file was refused whole, with its
/// line errors. Always valid against hub.xsd: line 0 is written as 1, a
/// column that is a number from 1 as `column`, any other as `columnName`,
/// texts cut to 512 characters (ending in `…`), and an empty `errors` as one
/// error on line 1 (the XSD wants at least one).
pub fn balances_rejected(v: SoapVersion, errors: &[LineErrorOut]) -> String {
    let fallback = [LineErrorOut {
        line: 1,
        column: None,
        reason: "the file was refused without a line error".into(),
    }];
    let errors = if errors.is_empty() { &fallback } else { errors };
    soap_writer::message(v, |out| {
        open_message(out, "SubmitBalancesResponse");
        out.push_str("<hub:rejected>");
        for e in errors {
            out.push_str("<hub:error><hub:line>");
            out.push_str(&e.line.max(1).to_string());
            out.push_str("</hub:line>");
            match e.column.as_deref() {
                Some(c)
                    if c.bytes().all(|b| b.is_ascii_digit())
                        && c.parse().is_ok_and(|n: u64| n > 0) =>
                {
                    out.push_str("<hub:column>");
                    out.push_str(c.trim_start_matches('0'));
                    out.push_str("</hub:column>");
                }
                Some(name) => {
                    out.push_str("<hub:columnName>");
                    push_text(name, TEXT_MAX, out);
                    out.push_str("</hub:columnName>");
                }
                None => {}
            }
            out.push_str("<hub:reason>");
            push_text(&e.reason, TEXT_MAX, out);
            out.push_str("</hub:reason></hub:error>");
        }
        out.push_str("</hub:rejected></hub:SubmitBalancesResponse>");
    })
}

/// A SOAP Fault carrying a `HubFault` detail: 1.1 `faultcode` `soap:Client`
/// / `soap:Server` …, 1.2 `Code/Value` `soap:Sender` / `soap:Receiver` …
/// (`soap` bound to the version's namespace) as `code` says
/// ([`HubFaultCode::soap_code`]); `message` is the faultstring / Reason text
/// and the detail's message, cut to 512 characters. Send it with
/// [`HubFaultCode::http_status`].
pub fn fault(v: SoapVersion, code: HubFaultCode, message: &str) -> String {
    let mut detail = String::new();
    open_message(&mut detail, "HubFault");
    detail.push_str("<hub:code>");
    detail.push_str(code.as_str());
    detail.push_str("</hub:code><hub:message>");
    push_text(message, TEXT_MAX, &mut detail);
    detail.push_str("</hub:message></hub:HubFault>");
    let reason = clamp(message, TEXT_MAX);
    let fault = Fault::new(code.soap_code(), &reason, Some(&detail));
    soap_writer::message(v, |out| soap_writer::write_fault(v, &fault, out))
}

/// Appends `text` cut to `max` characters, escaped.
fn push_text(text: &str, max: usize, out: &mut String) {
    escape(&clamp(text, max), out);
}

/// `<hub:{name} xmlns:hub="urn:cardhub:hub:v1">`.
fn open_message(out: &mut String, name: &str) {
    out.push_str("<hub:");
    out.push_str(name);
    out.push_str(r#" xmlns:hub=""#);
    out.push_str(NAMESPACE);
    out.push_str(r#"">"#);
}
