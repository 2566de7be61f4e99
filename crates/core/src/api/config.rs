//! `[api]`: where the JSON API and the institutions' SOAP service listen,
//! the bearer token they require, the largest SOAP request read, and
//! `[api.tls]` for HTTPS.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use super::hub_soap::DEFAULT_MAX_REQUEST_BYTES;
use crate::access::config::WebConfig;
use crate::link::config::TlsConfig;

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
    /// `[api.tls]`: serve HTTPS instead of HTTP.
    pub tls: Option<ApiTlsConfig>,
}

/// `[api.tls]`: PEM files, relative to the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsConfig {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// CA certificates for mutual TLS: when set, a client must present a
    /// certificate signed by one of them.
    pub client_ca: Option<PathBuf>,
}

/// The TLS side of the API, certificates loaded and checked.
#[derive(Clone)]
pub struct ApiTls(pub TlsAcceptor);

impl fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTls")
    }
}

/// The API's checked settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub listen: String,
    pub token: String,
    /// Largest SOAP request read; a larger one is a `REQUEST_TOO_LARGE` fault.
    pub soap_max_bytes: usize,
    /// HTTPS when set.
    pub tls: Option<ApiTls>,
    /// `[web]`: the web application's login sessions.
    pub web: WebConfig,
}

/// Shortest token accepted.
const MIN_TOKEN: usize = 16;

impl ApiConfig {
    /// The settings, or the problems that stop them. TLS files are read
    /// here, relative to `base`, so a bad certificate stops the start before
    /// any port is bound.
    pub fn resolve(
        &self,
        base: &Path,
        web: &WebConfig,
        problems: &mut Vec<String>,
    ) -> Option<ApiSettings> {
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
        let tls = match &self.tls {
            None => None,
            Some(tls) => match tls.acceptor(base) {
                Ok(acceptor) => Some(ApiTls(acceptor)),
                Err(e) => {
                    problems.push(format!("api.tls: {e}"));
                    return None;
                }
            },
        };
        Some(ApiSettings {
            listen: self.listen.clone(),
            token,
            soap_max_bytes,
            tls,
            web: web.clone(),
        })
    }
}

impl ApiTlsConfig {
    /// Loads the files with the switch link's loader ([`crate::link::tls`]).
    fn acceptor(&self, base: &Path) -> Result<TlsAcceptor, crate::link::tls::TlsError> {
        crate::link::tls::acceptor(&TlsConfig {
            cert: Some(base.join(&self.cert)),
            key: Some(base.join(&self.key)),
            ca: self.client_ca.as_ref().map(|ca| base.join(ca)),
            server_name: None,
        })
    }
}
