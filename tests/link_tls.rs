//! TLS on the switch link: the rustls acceptor and connector against each
//! other (server and mutual authentication, bad CA, PEM errors), and end to
//! end: the in-process hub (link, pipeline, store, account system) listening
//! with a generated certificate, the switch dialing over TLS with the
//! connection code the simulator uses, signing on and getting 00 for an
//! authorization.

mod support;

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use std::path::PathBuf;
use std::sync::Arc;

use cardhub_core::iso8583::Dialect;
use cardhub_core::link::config::TlsConfig;
use cardhub_core::link::frame::Framing;
use cardhub_core::link::netmgmt::{self, NetworkCode};
use cardhub_core::link::tls::{TlsError, acceptor, connector};
use cardhub_core::link::{
    ConnectionHandle, IssuerUnavailable, LinkError, SwitchSettings, connection,
};
use rustls_pki_types::ServerName;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

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
    let (address, server) = spawn_echo_server(acceptor(&pki.listen(true)).expect("acceptor")).await;
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
    let (address, server) = spawn_echo_server(acceptor(&pki.listen(true)).expect("acceptor")).await;
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

const HEADER: &str = "ISO006000070";

/// A hub whose switch endpoint listens with TLS; with `mutual`, clients
/// must present a certificate signed by the test CA.
async fn hub_over_tls(pki: &Pki, mutual: bool) -> support::TestHub {
    let ca = if mutual {
        format!(", ca = \"{}\"", pki.path("ca.pem").display())
    } else {
        String::new()
    };
    support::start(&format!(
        "tls = {{ cert = \"{}\", key = \"{}\"{ca} }}",
        pki.path("server.pem").display(),
        pki.path("server.key").display()
    ))
    .await
}

/// The switch side over TLS: the link's own connection code, set up as the
/// simulator sets it up (`SwitchSettings::simulator`).
async fn dial_tls(pki: &Pki, addr: &str, client_cert: bool) -> std::io::Result<ConnectionHandle> {
    let (connector, name) = connector(&pki.dial("ca.pem", client_cert), addr).expect("connector");
    let tcp = TcpStream::connect(addr).await?;
    let peer = tcp.peer_addr()?;
    let stream = connector.connect(name, tcp).await?;
    let dialect = Arc::new(
        Dialect::shipped("base24")
            .expect("shipped")
            .expect("base24"),
    );
    let settings = SwitchSettings::simulator(addr, dialect, Framing::TwoByte, Some(HEADER.into()));
    Ok(connection::spawn(
        stream,
        peer,
        Arc::new(settings),
        Arc::new(IssuerUnavailable),
        Arc::new(Semaphore::new(100)),
        CancellationToken::new(),
    ))
}

async fn sign_on(c: &ConnectionHandle) -> Result<String, LinkError> {
    let on = netmgmt::request(
        NetworkCode::SignOn,
        c.outbound.next_stan(),
        Some(HEADER),
        None,
    );
    let reply = c.outbound.request(&on, LIMIT).await?;
    Ok(reply.response_code().expect("DE 39").to_string())
}

async fn authorize(c: &ConnectionHandle, stan: u32) -> String {
    let purchase = support::purchase(support::ACTIVE_USD, 12_550, stan);
    let reply = c
        .outbound
        .request(&purchase, LIMIT)
        .await
        .expect("answered");
    assert_eq!(reply.mti().as_str(), "0110");
    reply.response_code().expect("DE 39").to_string()
}

#[tokio::test]
async fn the_switch_signs_on_over_tls_and_gets_00_from_the_hub() {
    let pki = Pki::new();
    let hub = hub_over_tls(&pki, false).await;
    let c = dial_tls(&pki, &hub.addr, false)
        .await
        .expect("TLS handshake");
    assert_eq!(sign_on(&c).await.expect("sign-on answered"), "00");
    assert_eq!(authorize(&c, 1).await, "00");
    let calls = hub.bank.calls("authorize");
    assert_eq!(calls.len(), 1, "the account system decided it");
    assert_eq!(calls[0].amount, 12_550);
    hub.link.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_serves_a_switch_with_a_certificate_and_refuses_one_without() {
    let pki = Pki::new();
    let hub = hub_over_tls(&pki, true).await;

    // Without a client certificate: the hub ends the handshake (TLS 1.3
    // reports it on the client's first read), nothing reaches the hub core.
    match dial_tls(&pki, &hub.addr, false).await {
        Err(_) => {}
        Ok(c) => {
            let outcome = sign_on(&c).await;
            assert!(
                outcome.is_err(),
                "signed on without a certificate: {outcome:?}"
            );
        }
    }

    let c = dial_tls(&pki, &hub.addr, true)
        .await
        .expect("TLS handshake");
    assert_eq!(sign_on(&c).await.expect("sign-on answered"), "00");
    assert_eq!(authorize(&c, 2).await, "00");
    assert_eq!(hub.bank.calls("authorize").len(), 1);
    hub.link.shutdown().await;
}
