//! `[api]`: where the JSON API and the institutions' SOAP service listen,
//! the bearer token they require, and the largest SOAP request read.

use serde::Deserialize;

use super::hub_soap::DEFAULT_MAX_REQUEST_BYTES;

/// `[api]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on, e.g. `127.0.0.1:8081`.
    pub listen: String,
    /// Environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// Inline token (demo and tests only).
    pub token: Option<String>,
    /// Largest SOAP request (`POST /soap/hub`) read, in bytes; default 64 MiB.
    pub soap_max_bytes: Option<usize>,
}

/// The API's checked settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub listen: String,
    pub token: String,
    /// Largest SOAP request read; a larger one is a `REQUEST_TOO_LARGE` fault.
    pub soap_max_bytes: usize,
}

/// Shortest token accepted.
const MIN_TOKEN: usize = 16;

impl ApiConfig {
    /// The settings, or the problems that stop them.
    pub fn resolve(&self, problems: &mut Vec<String>) -> Option<ApiSettings> {
        let token = match (&self.token_env, &self.token) {
            (Some(var), None) => match std::env::var(var) {
                Ok(t) => t,
                Err(_) => {
                    problems.push(format!(
                        "api.token_env: environment variable {var} is not set"
                    ));
                    return None;
                }
            },
            (None, Some(t)) => t.clone(),
            _ => {
                problems.push("api: give exactly one of token_env and token".into());
                return None;
            }
        };
        if token.len() < MIN_TOKEN {
            problems.push(format!(
                "api: the token must be at least {MIN_TOKEN} characters"
            ));
            return None;
        }
        let soap_max_bytes = self.soap_max_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if soap_max_bytes == 0 {
            problems.push("api.soap_max_bytes must be at least 1".into());
            return None;
        }
        Some(ApiSettings {
            listen: self.listen.clone(),
            token,
            soap_max_bytes,
        })
    }
}
