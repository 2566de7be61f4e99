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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    use tempfile::TempDir;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    /// PEM files of a test PKI: `ca`, `server` (localhost, 127.0.0.1) and
    /// `client` signed by `ca`, plus an unrelated `other_ca`.
    struct Pki {
        dir: TempDir,
    }

    impl Pki {
        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn new() -> Pki {
            let dir = TempDir::new().expect("temp dir");
            let write = |name: &str, pem: String| {
                std::fs::write(dir.path().join(name), pem).expect("write pem")
            };

            let ca = new_ca("cardhub test CA");
            write("ca.pem", ca.pem());
            let other = new_ca("unrelated CA");
            write("other_ca.pem", other.pem());

            for (name, sans, usage) in [
                (
                    "server",
                    vec!["localhost".to_string(), "127.0.0.1".to_string()],
                    ExtendedKeyUsagePurpose::ServerAuth,
                ),
                (
                    "client",
                    vec!["switch-client.test".to_string()],
                    ExtendedKeyUsagePurpose::ClientAuth,
                ),
            ] {
                let key = KeyPair::generate().expect("key");
                let mut params = CertificateParams::new(sans).expect("params");
                params.distinguished_name.push(DnType::CommonName, name);
                params.extended_key_usages = vec![usage];
                let cert = params.signed_by(&key, &ca).expect("sign");
                write(&format!("{name}.pem"), cert.pem());
                write(&format!("{name}.key"), key.serialize_pem());
            }
            Pki { dir }
        }

        fn listen(&self, require_client_cert: bool) -> TlsConfig {
            TlsConfig {
                cert: Some(self.path("server.pem")),
                key: Some(self.path("server.key")),
                ca: require_client_cert.then(|| self.path("ca.pem")),
                server_name: None,
            }
        }

        fn dial(&self, ca: &str, client_cert: bool) -> TlsConfig {
            TlsConfig {
                cert: client_cert.then(|| self.path("client.pem")),
                key: client_cert.then(|| self.path("client.key")),
                ca: Some(self.path(ca)),
                server_name: None,
            }
        }
    }

    fn new_ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
    }

    /// Accepts one TCP connection, completes the TLS handshake and echoes
    /// what it reads until EOF. Returns the handshake's outcome.
    async fn spawn_echo_server(
        acceptor: TlsAcceptor,
    ) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let mut buf = [0u8; 1024];
            loop {
                let n = tls.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                tls.write_all(&buf[..n]).await?;
                tls.flush().await?;
            }
        });
        (address, task)
    }

    /// Dials, sends `msg` and reads it back; any failure comes back as an error.
    async fn echo_once(cfg: &TlsConfig, address: &str, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        let (connector, name) = connector(cfg, address).expect("connector");
        let tcp = TcpStream::connect(address).await?;
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(msg).await?;
        tls.flush().await?;
        let mut got = vec![0u8; msg.len()];
        tls.read_exact(&mut got).await?;
        tls.shutdown().await?;
        Ok(got)
    }

    #[tokio::test]
    async fn server_auth_only_echoes() {
        let pki = Pki::new();
        let (address, server) =
            spawn_echo_server(acceptor(&pki.listen(false)).expect("acceptor")).await;
        let msg = b"0800\x82\x20\x00\x00\x00\x00\x00\x00 echo";
        let got = timeout(LIMIT, echo_once(&pki.dial("ca.pem", false), &address, msg))
            .await
            .expect("in time")
            .expect("echo over TLS");
        assert_eq!(got, msg);
        timeout(LIMIT, server)
            .await
            .expect("in time")
            .expect("join")
            .expect("server side");
    }

    #[tokio::test]
    async fn server_name_defaults_to_host_or_ip() {
        let pki = Pki::new();
        let dial = pki.dial("ca.pem", false);
        let (_, name) = connector(&dial, "localhost:8583").expect("connector");
        assert_eq!(name, ServerName::try_from("localhost").expect("dns"));
        let (_, name) = connector(&dial, "127.0.0.1:8583").expect("connector");
        assert!(matches!(name, ServerName::IpAddress(_)));
        let (_, name) = connector(&dial, "[::1]:8583").expect("connector");
        assert!(matches!(name, ServerName::IpAddress(_)));
        let explicit = TlsConfig {
            server_name: Some("switch.example".into()),
            ..dial.clone()
        };
        let (_, name) = connector(&explicit, "10.0.0.1:8583").expect("connector");
        assert_eq!(name, ServerName::try_from("switch.example").expect("dns"));
        let bad = TlsConfig {
            server_name: Some("not a name!".into()),
            ..dial
        };
        assert!(matches!(
            connector(&bad, "10.0.0.1:8583"),
            Err(TlsError::BadServerName { name }) if name == "not a name!"
        ));
    }

    #[tokio::test]
    async fn mutual_tls_rejects_client_without_certificate() {
        let pki = Pki::new();
        let (address, server) =
            spawn_echo_server(acceptor(&pki.listen(true)).expect("acceptor")).await;
        let result = timeout(
            LIMIT,
            echo_once(&pki.dial("ca.pem", false), &address, b"hello"),
        )
        .await
        .expect("in time");
        assert!(result.is_err(), "client without certificate got {result:?}");
        let served = timeout(LIMIT, server)
            .await
            .expect("in time")
            .expect("join");
        let err = served.expect_err("server accepted a client without certificate");
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[tokio::test]
    async fn mutual_tls_accepts_client_with_certificate() {
        let pki = Pki::new();
        let (address, server) =
            spawn_echo_server(acceptor(&pki.listen(true)).expect("acceptor")).await;
        let got = timeout(
            LIMIT,
            echo_once(&pki.dial("ca.pem", true), &address, b"hello"),
        )
        .await
        .expect("in time")
        .expect("mutual TLS echo");
        assert_eq!(got, b"hello");
        timeout(LIMIT, server)
            .await
            .expect("in time")
            .expect("join")
            .expect("server side");
    }

    #[tokio::test]
    async fn client_with_unrelated_ca_fails() {
        let pki = Pki::new();
        let (address, server) =
            spawn_echo_server(acceptor(&pki.listen(false)).expect("acceptor")).await;
        let result = timeout(
            LIMIT,
            echo_once(&pki.dial("other_ca.pem", false), &address, b"hello"),
        )
        .await
        .expect("in time");
        let err = result.expect_err("server certificate from an unknown CA was trusted");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
        let served = timeout(LIMIT, server)
            .await
            .expect("in time")
            .expect("join");
        assert!(served.is_err());
    }

    #[test]
    fn missing_key_file_names_the_path() {
        let pki = Pki::new();
        let missing = pki.path("nope.key");
        let cfg = TlsConfig {
            key: Some(missing.clone()),
            ..pki.listen(false)
        };
        match acceptor(&cfg) {
            Err(e @ TlsError::Pem { .. }) => {
                assert!(
                    e.to_string().contains(&missing.display().to_string()),
                    "{e}"
                );
                assert!(matches!(e, TlsError::Pem { path, .. } if path == missing));
            }
            other => panic!("expected Pem error, got {:?}", other.err()),
        }
    }

    #[test]
    fn key_file_without_key_is_pem_error() {
        let pki = Pki::new();
        let cfg = TlsConfig {
            key: Some(pki.path("server.pem")),
            ..pki.listen(false)
        };
        assert!(matches!(
            acceptor(&cfg),
            Err(TlsError::Pem { path, .. }) if path == pki.path("server.pem")
        ));
    }

    #[test]
    fn pem_without_certificates_is_reported() {
        let pki = Pki::new();
        // A key file holds PEM, but no CERTIFICATE section.
        let cfg = TlsConfig {
            cert: Some(pki.path("server.key")),
            ..pki.listen(false)
        };
        assert!(matches!(
            acceptor(&cfg),
            Err(TlsError::NoCertificates { path }) if path == pki.path("server.key")
        ));
        let empty = pki.path("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let dial = TlsConfig {
            ca: Some(empty.clone()),
            ..pki.dial("ca.pem", false)
        };
        assert!(matches!(
            connector(&dial, "localhost:1"),
            Err(TlsError::NoCertificates { path }) if path == empty
        ));
    }

    #[test]
    fn missing_settings_are_reported() {
        let pki = Pki::new();
        let no_cert = TlsConfig {
            cert: None,
            ..pki.listen(false)
        };
        assert!(matches!(
            acceptor(&no_cert),
            Err(TlsError::MissingSetting("cert"))
        ));
        let no_key = TlsConfig {
            key: None,
            ..pki.listen(false)
        };
        assert!(matches!(
            acceptor(&no_key),
            Err(TlsError::MissingSetting("key"))
        ));
        let no_ca = TlsConfig {
            ca: None,
            ..pki.dial("ca.pem", false)
        };
        assert!(matches!(
            connector(&no_ca, "localhost:1"),
            Err(TlsError::MissingSetting("ca"))
        ));
        let cert_only = TlsConfig {
            key: None,
            ..pki.dial("ca.pem", true)
        };
        assert!(matches!(
            connector(&cert_only, "localhost:1"),
            Err(TlsError::MissingSetting("key"))
        ));
    }

    #[test]
    fn mismatched_key_is_rejected_by_rustls() {
        let pki = Pki::new();
        let cfg = TlsConfig {
            key: Some(pki.path("client.key")),
            ..pki.listen(false)
        };
        assert!(matches!(acceptor(&cfg), Err(TlsError::Rustls(_))));
    }

    /// The whole link over mutual TLS: `link::start` listening with a
    /// certificate, a switch-side connection dialing through `connector`.
    #[tokio::test]
    async fn link_serves_a_switch_over_mutual_tls() {
        use crate::config::Config;
        use crate::link::connection;
        use crate::link::frame::Framing;
        use crate::link::netmgmt::{self, NetworkCode};
        use crate::link::{IssuerUnavailable, SwitchSettings};

        let pki = Pki::new();
        let text = "[[switch]]\nname = \"tls\"\nrole = \"listen\"\naddress = \"127.0.0.1:0\"\n\
             header = \"ISO006000070\"\n\
             tls = { cert = \"server.pem\", key = \"server.key\", ca = \"ca.pem\" }\n";
        let cfg = Config::from_toml(Path::new("t.toml"), text, pki.dir.path()).expect("config");
        let link = crate::link::start(&cfg.switches, &cfg.link, Arc::new(IssuerUnavailable))
            .await
            .expect("link starts");
        let addr = link.local_addr("tls").expect("bound").to_string();

        let (connector, name) = connector(&pki.dial("ca.pem", true), &addr).expect("connector");
        let tcp = TcpStream::connect(&addr).await.expect("connect");
        let peer = tcp.peer_addr().expect("peer");
        let stream = connector.connect(name, tcp).await.expect("handshake");
        let settings = SwitchSettings::simulator(
            &addr,
            cfg.switches[0].dialect.clone(),
            Framing::TwoByte,
            Some("ISO006000070".into()),
        );
        let c = connection::spawn(
            stream,
            peer,
            Arc::new(settings),
            Arc::new(IssuerUnavailable),
            Arc::new(tokio::sync::Semaphore::new(10)),
            tokio_util::sync::CancellationToken::new(),
        );
        let stan = c.outbound.next_stan();
        let on = netmgmt::request(NetworkCode::SignOn, stan, Some("ISO006000070"), None);
        let reply = c.outbound.request(&on, LIMIT).await.expect("answered");
        assert_eq!(reply.mti().as_str(), "0810");
        assert!(reply.response_code().expect("DE 39").is_approval());
        link.shutdown().await;
    }
}
