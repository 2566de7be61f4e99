//! Declarative adapters: how cardhub reaches each vendor's account system.
//! An adapter is a file in `adapters/` (format: `docs/adapters.md`),
//! compiled once into an [`Adapter`] that implements the hub's
//! `AccountSystem`: templates render requests, the transport carries them
//! (SOAP 1.1/1.2 or XML over HTTP, fixed-width records over TCP), and paths or
//! columns read the answer, whose result code a table maps to DE 39.

mod compile;
pub mod engine;
mod faults;
pub mod file;
pub mod fixed;
pub mod http;
mod record;
pub mod registry;
pub mod soap;
pub mod template;
pub mod wsdl;

use std::path::{Path, PathBuf};

pub use engine::Adapter;

/// An adapter file that cannot be used. Always the file's fault; nothing is
/// loaded from it (a running engine keeps the previous version).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or keys that do not fit the format (with line and column).
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    /// Values that cannot work; one entry per problem, each naming its key.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

impl AdapterError {
    /// Problems found outside any particular file.
    pub(crate) fn invalid(problems: Vec<String>) -> AdapterError {
        AdapterError::Invalid {
            origin: "adapter".into(),
            problems,
        }
    }

    /// The same error, naming the file it is about.
    pub(crate) fn in_file(self, path: &Path) -> AdapterError {
        let origin = path.display().to_string();
        match self {
            AdapterError::Syntax { message, .. } => AdapterError::Syntax { origin, message },
            AdapterError::Invalid { problems, .. } => AdapterError::Invalid { origin, problems },
            read => read,
        }
    }

    /// Every problem, one line each.
    pub fn problems(&self) -> Vec<String> {
        match self {
            AdapterError::Invalid { problems, .. } => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}
