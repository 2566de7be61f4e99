//! TLS for switch connections: builds a rustls acceptor (listen) or connector
//! (dial) from a [`TlsConfig`], loading PEM certificates, keys and CAs from disk.
//! Crypto is always the `ring` provider, passed explicitly (no global provider).
//! It does not open sockets, reload files, or check revocation (CRL/OCSP).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::config::TlsConfig;

/// Why a TLS acceptor or connector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read, held nothing usable, or was malformed.
    #[error("TLS file {}: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    /// A certificate file contained no `CERTIFICATE` section.
    #[error("TLS file {}: no certificates found", path.display())]
    NoCertificates { path: PathBuf },
    /// A setting needed for this role is absent (`cert`, `key` or `ca`).
    #[error("TLS setting `{0}` is required here")]
    MissingSetting(&'static str),
    /// The name to verify the server against is not a DNS name or IP address.
    #[error("TLS server name {name:?} is not a valid DNS name or IP address")]
    BadServerName { name: String },
    /// rustls refused the configuration (e.g. key does not match certificate).
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built from the CA.
    #[error("TLS client verifier: {0}")]
    Verifier(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the acceptor for a listening switch connection.
///
/// Needs `cert` and `key`. When `ca` is set, clients must present a
/// certificate signed by one of its CAs; otherwise no client certificate is
/// requested.
///
/// # Errors
///
/// [`TlsError::MissingSetting`] without `cert` or `key`; [`TlsError::Pem`] or
/// [`TlsError::NoCertificates`] when a file is unreadable, malformed or empty;
/// [`TlsError::Verifier`] when the CA file yields no usable trust anchor;
/// [`TlsError::Rustls`] when rustls rejects the certificate/key pair.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let cert_path = cfg
        .cert
        .as_deref()
        .ok_or(TlsError::MissingSetting("cert"))?;
    let key_path = cfg.key.as_deref().ok_or(TlsError::MissingSetting("key"))?;
    let certs = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let provider = provider();
    let verifier = match cfg.ca.as_deref() {
        Some(ca) => WebPkiClientVerifier::builder_with_provider(
            Arc::new(load_roots(ca)?),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| TlsError::Verifier(format!("CA file {}: {e}", ca.display())))?,
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Builds the connector for dialing a switch at `address` (`host:port`), and
/// the name its certificate is verified against: `server_name` if set,
/// otherwise the host part of `address` (DNS name or IP address; IPv6 may be
/// bracketed).
///
/// Needs `ca`; `cert` and `key`, if both set, are sent as client certificate.
///
/// # Errors
///
/// [`TlsError::MissingSetting`] without `ca`, or with only one of `cert` and
/// `key`; [`TlsError::Pem`] or [`TlsError::NoCertificates`] when a file is
/// unreadable, malformed or empty; [`TlsError::BadServerName`] when the name is
/// neither a DNS name nor an IP address; [`TlsError::Rustls`] when rustls
/// rejects the client certificate/key pair.
pub fn connector(
    cfg: &TlsConfig,
    address: &str,
) -> Result<(TlsConnector, ServerName<'static>), TlsError> {
    let name = server_name(cfg.server_name.as_deref(), address)?;
    Ok((TlsConnector::from(Arc::new(client_config(cfg)?)), name))
}

/// The client side's rustls configuration: the server's CA (`ca`, required)
/// and an optional client certificate (`cert` + `key`). Also used by the
/// adapters' HTTPS clients.
///
/// # Errors
/// As [`connector`], without the server name.
pub fn client_config(cfg: &TlsConfig) -> Result<ClientConfig, TlsError> {
    let ca = cfg.ca.as_deref().ok_or(TlsError::MissingSetting("ca"))?;
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match (cfg.cert.as_deref(), cfg.key.as_deref()) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(load_certs(cert)?, load_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(TlsError::MissingSetting("key")),
        (None, Some(_)) => return Err(TlsError::MissingSetting("cert")),
    })
}

/// The configured name, or the host part of `host:port` / `[v6]:port`.
fn server_name(configured: Option<&str>, address: &str) -> Result<ServerName<'static>, TlsError> {
    let name = match configured {
        Some(name) => name,
        None => {
            let (host, _port) =
                address
                    .rsplit_once(':')
                    .ok_or_else(|| TlsError::BadServerName {
                        name: address.to_owned(),
                    })?;
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
        }
    };
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::BadServerName {
        name: name.to_owned(),
    })
}

fn pem_error(path: &Path, e: &rustls_pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// All certificates in a PEM file, in order; at least one.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Pem {
            path: path.to_owned(),
            reason: "no private key found".into(),
        },
        e => pem_error(path, &e),
    })
}

/// A root store holding every certificate of a CA PEM file.
fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}
