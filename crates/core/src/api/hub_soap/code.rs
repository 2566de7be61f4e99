//! `HubFault/code`: the closed set of codes a hub fault carries, whose fault
//! each one is, and the HTTP status it is sent with. The table in
//! docs/vendor-guide.md and the documentation of `HubFault/code` in
//! wsdl/hub.xsd list the same codes (a test checks both).

use super::{FaultCode, SoapVersion, fault_http_status};
use crate::standin::state::StateError;

/// cardhub's code in a `HubFault` detail. Every fault the hub sends carries
/// one of these; nothing else is ever written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HubFaultCode {
    /// The body is over the size limit.
    RequestTooLarge,
    /// A Content-Type that is not SOAP's, or a charset other than UTF-8.
    UnsupportedMediaType,
    /// Not well-formed XML, a DOCTYPE, an entity, nested too deep.
    MalformedXml,
    /// No Envelope, no Body, not exactly one element in it.
    NotSoap,
    /// An Envelope of no SOAP version, or of the other one than the Content-Type's.
    VersionMismatch,
    /// A header block for cardhub with mustUnderstand set.
    MustUnderstand,
    /// The Body's element is not an operation of hub.wsdl.
    UnknownOperation,
    /// The SOAP action names another operation than the Body.
    ActionMismatch,
    /// An element missing, unexpected, out of order; a value the XSD refuses.
    InvalidMessage,
    /// The institution is not configured in cardhub.
    UnknownInstitution,
    /// The institution is configured offline-only: it has no online state to signal.
    OfflineOnly,
    /// cardhub could not record the state (its store failed); send it again.
    StateNotRecorded,
    /// No balance-file format is configured for the institution.
    BalancesNotConfigured,
    /// `format` is not the institution's configured balance-file format.
    UnknownFormat,
    /// The file's as-of is older than the balances cardhub holds.
    OlderThanCurrent,
    /// The file was refused whole for its line errors. SOAP answers this with
    /// a `rejected` answer, never a fault; the JSON API sends the code.
    BalancesRejected,
    /// The file could not be read to its end (the upload broke off).
    BalanceFileUnreadable,
    /// cardhub could not store the balances (its store failed); send again.
    BalancesNotStored,
    /// The institution's configured format does not pass its check (cardhub's
    /// configuration; operators must fix it).
    BalanceFormatBroken,
    /// cardhub failed while processing the request (a bug); send again later.
    InternalError,
}

impl HubFaultCode {
    /// Every code, in the order of the documentation's table.
    pub const ALL: [HubFaultCode; 20] = [
        HubFaultCode::RequestTooLarge,
        HubFaultCode::UnsupportedMediaType,
        HubFaultCode::MalformedXml,
        HubFaultCode::NotSoap,
        HubFaultCode::VersionMismatch,
        HubFaultCode::MustUnderstand,
        HubFaultCode::UnknownOperation,
        HubFaultCode::ActionMismatch,
        HubFaultCode::InvalidMessage,
        HubFaultCode::UnknownInstitution,
        HubFaultCode::OfflineOnly,
        HubFaultCode::StateNotRecorded,
        HubFaultCode::BalancesNotConfigured,
        HubFaultCode::UnknownFormat,
        HubFaultCode::OlderThanCurrent,
        HubFaultCode::BalancesRejected,
        HubFaultCode::BalanceFileUnreadable,
        HubFaultCode::BalancesNotStored,
        HubFaultCode::BalanceFormatBroken,
        HubFaultCode::InternalError,
    ];

    /// The code as written in `HubFault/code` (and the JSON API's `code`).
    pub const fn as_str(self) -> &'static str {
        match self {
            HubFaultCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            HubFaultCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            HubFaultCode::MalformedXml => "MALFORMED_XML",
            HubFaultCode::NotSoap => "NOT_SOAP",
            HubFaultCode::VersionMismatch => "VERSION_MISMATCH",
            HubFaultCode::MustUnderstand => "MUST_UNDERSTAND",
            HubFaultCode::UnknownOperation => "UNKNOWN_OPERATION",
            HubFaultCode::ActionMismatch => "ACTION_MISMATCH",
            HubFaultCode::InvalidMessage => "INVALID_MESSAGE",
            HubFaultCode::UnknownInstitution => "UNKNOWN_INSTITUTION",
            HubFaultCode::OfflineOnly => "OFFLINE_ONLY",
            HubFaultCode::StateNotRecorded => "STATE_NOT_RECORDED",
            HubFaultCode::BalancesNotConfigured => "BALANCES_NOT_CONFIGURED",
            HubFaultCode::UnknownFormat => "UNKNOWN_FORMAT",
            HubFaultCode::OlderThanCurrent => "OLDER_THAN_CURRENT",
            HubFaultCode::BalancesRejected => "BALANCES_REJECTED",
            HubFaultCode::BalanceFileUnreadable => "BALANCE_FILE_UNREADABLE",
            HubFaultCode::BalancesNotStored => "BALANCES_NOT_STORED",
            HubFaultCode::BalanceFormatBroken => "BALANCE_FORMAT_BROKEN",
            HubFaultCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Whose fault it is, as the SOAP fault code: `Sender` (1.1 `Client`)
    /// when sending the request again unchanged cannot help, `Receiver` (1.1
    /// `Server`) when it may later; `VersionMismatch` and `MustUnderstand`
    /// where SOAP says so.
    pub const fn soap_code(self) -> FaultCode {
        match self {
            HubFaultCode::VersionMismatch => FaultCode::VersionMismatch,
            HubFaultCode::MustUnderstand => FaultCode::MustUnderstand,
            HubFaultCode::RequestTooLarge
            | HubFaultCode::UnsupportedMediaType
            | HubFaultCode::MalformedXml
            | HubFaultCode::NotSoap
            | HubFaultCode::UnknownOperation
            | HubFaultCode::ActionMismatch
            | HubFaultCode::InvalidMessage
            | HubFaultCode::UnknownInstitution
            | HubFaultCode::OfflineOnly
            | HubFaultCode::BalancesNotConfigured
            | HubFaultCode::UnknownFormat
            | HubFaultCode::OlderThanCurrent
            | HubFaultCode::BalancesRejected => FaultCode::Sender,
            HubFaultCode::StateNotRecorded
            | HubFaultCode::BalanceFileUnreadable
            | HubFaultCode::BalancesNotStored
            | HubFaultCode::BalanceFormatBroken
            | HubFaultCode::InternalError => FaultCode::Receiver,
        }
    }

    /// The HTTP status of a fault with this code in SOAP version `v`
    /// ([`fault_http_status`] of [`soap_code`](Self::soap_code)).
    pub fn http_status(self, v: SoapVersion) -> u16 {
        fault_http_status(v, self.soap_code())
    }

    /// The code answering a refused state change.
    pub fn of_state_error(e: &StateError) -> HubFaultCode {
        match e {
            StateError::UnknownInstitution(_) => HubFaultCode::UnknownInstitution,
            // A state name or a state no signal may set: the request's value
            // is wrong (hub.xsd's SignalledState already keeps both out).
            StateError::UnknownState(_) | StateError::NotSignallable(_) => {
                HubFaultCode::InvalidMessage
            }
            StateError::OfflineOnly(_) => HubFaultCode::OfflineOnly,
            StateError::Store(_) => HubFaultCode::StateNotRecorded,
        }
    }
}

impl std::fmt::Display for HubFaultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &str) -> String {
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The codes in backquotes in the first column of the vendor guide's table.
    fn guide_codes() -> Vec<String> {
        read("docs/vendor-guide.md")
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code.to_owned()))
            .filter(|code| code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            .collect()
    }

    #[test]
    fn the_guide_and_the_schema_document_exactly_these_codes() {
        let mut ours: Vec<&str> = HubFaultCode::ALL.iter().map(|c| c.as_str()).collect();
        let mut guide = guide_codes();
        ours.sort_unstable();
        guide.sort_unstable();
        assert_eq!(guide, ours, "docs/vendor-guide.md's fault table");
        let xsd = read("wsdl/hub.xsd");
        for code in HubFaultCode::ALL {
            if code == HubFaultCode::BalancesRejected {
                continue; // never a fault: a `rejected` answer
            }
            assert!(xsd.contains(&format!("{code} (")), "{code} in hub.xsd");
        }
    }

    #[test]
    fn whose_fault_and_status_follow_the_soap_code() {
        for code in HubFaultCode::ALL {
            let v11 = code.http_status(SoapVersion::V11);
            let v12 = code.http_status(SoapVersion::V12);
            match code.soap_code() {
                FaultCode::Sender => assert_eq!((v11, v12), (500, 400), "{code}"),
                _ => assert_eq!((v11, v12), (500, 500), "{code}"),
            }
        }
    }
}
