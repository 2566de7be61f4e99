//! Fuzz target: a request to the hub interface (untrusted SOAP from an
//! institution) must never panic the parser, and any error it reports must
//! render as a fault envelope that reads back.

use cardhub_core::api::hub_soap::{self, SoapVersion};
use cardhub_core::xml::{Document, Limits};

pub fn target(data: &[u8]) {
    for content_type in [None, Some("text/xml"), Some("application/soap+xml")] {
        if let Err(e) = hub_soap::parse_request_limited(data, content_type, None, 1 << 20) {
            let fault = e.to_fault(SoapVersion::V12);
            assert!(Document::parse(fault.as_bytes(), &Limits::default()).is_ok());
        }
    }
}
