//! Adapter files (TOML text → compiled `Adapter`, templates and paths
//! included): a file is refused with its line and column or with every
//! problem named, or it compiles and renders each of its operations.

use cardhub_core::account::Operation;
use cardhub_core::adapter::{Adapter, AdapterError};

pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Adapter::from_toml(text, &super::repo()) {
        Ok(adapter) => {
            let request = super::account_request();
            for operation in Operation::ALL {
                // Unsupported, unsendable or a request: never a panic.
                let _ = adapter.encode_request(operation, &request);
                let _ = adapter.render(operation, &request);
            }
        }
        Err(AdapterError::Syntax { message, .. }) => {
            assert!(
                !message.contains('\n'),
                "a syntax error on several lines: {message}"
            );
        }
        Err(AdapterError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "refused without a problem");
        }
        Err(e @ AdapterError::Read { .. }) => panic!("nothing is read from disk here: {e}"),
    }
}
