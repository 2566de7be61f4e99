//! The hub's configuration (`cardhub.toml` text → checked `Config`, the
//! switch dialects it names read from `adapters/switch/`): text is refused
//! with its line and column or with every problem named, or it loads.

use std::path::Path;

use cardhub_core::config::{Config, ConfigError};

pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = super::repo().join("fixtures/config");
    match Config::from_toml(Path::new("fuzz.toml"), text, &base) {
        Ok(_) => {}
        Err(ConfigError::Syntax { message, .. }) => {
            assert!(
                !message.contains('\n'),
                "a syntax error on several lines: {message}"
            );
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "refused without a problem");
        }
        Err(e) => panic!("{e} (only a refusal of the text is expected here)"),
    }
}
