//! The API over HTTPS (`[api.tls]`): real TLS with a test PKI from rcgen,
//! reqwest (rustls) trusting the test CA; plain HTTP to the TLS port fails;
//! mutual TLS refuses a client without a certificate; bad files stop the
//! configuration before any port is bound.

mod support;

use std::path::Path;
use std::sync::Arc;

use cardhub_core::api;
use cardhub_core::app;
use cardhub_core::config::{Config, ConfigError};
use cardhub_core::link::config::TlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "api-tls-test-token-0123";

/// Writes `tls/ca.pem`, `tls/server.{pem,key}` (127.0.0.1, localhost) and
/// `tls/client.{pem,key}` under `dir`.
fn write_pki(dir: &Path) {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "cardhub API test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(tls.join("ca.pem"), ca.pem()).unwrap();
    for (name, sans, usage) in [
        (
            "server",
            vec!["127.0.0.1".to_string(), "localhost".to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        (
            "client",
            vec!["bank-a.test".to_string()],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(tls.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(tls.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// A config with `[api.tls]` holding `tls` (paths relative to the config).
fn load(dir: &Path, tls: &str) -> Result<Config, ConfigError> {
    let extra =
        format!("\n[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n[api.tls]\n{tls}\n");
    let path = dir.join("cardhub.toml");
    std::fs::write(&path, support::config_text(&extra)).unwrap();
    Config::load(&path)
}

struct Https {
    url: String,
    plain_url: String,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
}

impl Drop for Https {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(tls: &str) -> Https {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let config = load(dir.path(), tls).unwrap();
    let hub = Arc::new(app::open(&config, Default::default()).unwrap());
    let shutdown = CancellationToken::new();
    let running = api::server::start(
        config.api.as_ref().unwrap(),
        hub,
        config.institutions.clone().into(),
        &config.prepaid,
        cardhub_core::link::LinkStats::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    Https {
        url: format!("https://{}", running.addr),
        plain_url: format!("http://{}", running.addr),
        shutdown,
        dir,
    }
}

impl Https {
    /// A client trusting the test CA, presenting the client certificate
    /// when `with_cert`.
    fn client(&self, with_cert: bool) -> reqwest::Client {
        let tls = self.dir.path().join("tls");
        let config = cardhub_core::link::tls::client_config(&TlsConfig {
            ca: Some(tls.join("ca.pem")),
            cert: with_cert.then(|| tls.join("client.pem")),
            key: with_cert.then(|| tls.join("client.key")),
            server_name: None,
        })
        .unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .build()
            .unwrap()
    }

    async fn healthz(&self, client: &reqwest::Client) -> reqwest::Result<String> {
        client
            .get(format!("{}/healthz", self.url))
            .send()
            .await?
            .text()
            .await
    }
}

const SERVER: &str = "cert = \"tls/server.pem\"\nkey = \"tls/server.key\"";

#[tokio::test]
async fn https_answers_healthz_and_status_notify_and_plain_http_fails() {
    let hub = start(SERVER).await;
    let client = hub.client(false);
    assert_eq!(hub.healthz(&client).await.unwrap(), "ok\n");

    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/soap/canonical/status-notify-request.soap11.xml"),
    )
    .unwrap();
    let response = client
        .post(format!("{}/soap/hub", hub.url))
        .bearer_auth(TOKEN)
        .header("content-type", "text/xml; charset=utf-8")
        .header("SOAPAction", "\"urn:cardhub:hub:v1#StatusNotify\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer = response.text().await.unwrap();
    assert!(
        answer.contains("<hub:state>CLOSING</hub:state>"),
        "{answer}"
    );

    let plain = cardhub_core::adapter::http::plain_http_tls().unwrap();
    let plain = reqwest::Client::builder()
        .use_preconfigured_tls(plain)
        .build()
        .unwrap();
    let refused = plain.get(format!("{}/healthz", hub.plain_url)).send().await;
    assert!(refused.is_err(), "plain HTTP answered: {refused:?}");
    // The listener goes on after the failed handshake.
    assert_eq!(hub.healthz(&client).await.unwrap(), "ok\n");
}

#[tokio::test]
async fn mutual_tls_wants_a_client_certificate_from_the_ca() {
    let hub = start(&format!("{SERVER}\nclient_ca = \"tls/ca.pem\"")).await;
    let refused = hub.healthz(&hub.client(false)).await;
    assert!(refused.is_err(), "answered without a client certificate");
    assert_eq!(hub.healthz(&hub.client(true)).await.unwrap(), "ok\n");
}

#[test]
fn bad_tls_files_stop_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let missing = load(
        dir.path(),
        "cert = \"tls/server.pem\"\nkey = \"tls/nothing.key\"",
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("api.tls: TLS file") && missing.contains("nothing.key"),
        "{missing}"
    );
    // The client's key with the server's certificate: rustls refuses the pair.
    let mismatched = load(
        dir.path(),
        "cert = \"tls/server.pem\"\nkey = \"tls/client.key\"",
    )
    .unwrap_err()
    .to_string();
    assert!(mismatched.contains("api.tls:"), "{mismatched}");
    let unknown = load(dir.path(), &format!("{SERVER}\nca = \"tls/ca.pem\""))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown field `ca`"), "{unknown}");
}
