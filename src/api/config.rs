//! `[api]`: where the JSON API and the institutions' SOAP service listen,
//! and the bearer token they require.

use serde::Deserialize;

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
}

/// The API's checked settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub listen: String,
    pub token: String,
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
        Some(ApiSettings {
            listen: self.listen.clone(),
            token,
        })
    }
}
