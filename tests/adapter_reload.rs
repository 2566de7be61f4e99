//! Adapter files are reloaded when they change while the engine runs: a
//! valid edit serves from the next call on; a broken edit is refused and the
//! previous version keeps serving. And the hub end to end through the
//! canonical adapter: switch → hub → SOAP → account system → switch.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::account::{AccountRequest, AccountSystem};
use cardhub_core::adapter::registry::{Adapters, Reload};
use cardhub_core::app;
use cardhub_core::config::Config;
use cardhub_core::link;
use support::{ACTIVE_USD, client, purchase};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn canonical_to(url: &str) -> String {
    std::fs::read_to_string(repo().join("adapters/canonical.toml"))
        .unwrap()
        .replace("http://127.0.0.1:8080/account-system", url)
}

/// An account system that approves with a given auth id.
async fn bank(auth_id: &str) -> MockServer {
    let body = std::fs::read_to_string(
        repo().join("fixtures/soap/canonical/authorize-response.soap11.xml"),
    )
    .unwrap()
    .replace(
        "<as:authorizationId>482913</as:authorizationId>",
        &format!("<as:authorizationId>{auth_id}</as:authorizationId>"),
    );
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    server
}

fn request() -> AccountRequest {
    support::account_request("A-1001", Duration::from_secs(2))
}

async fn auth_id(handle: &dyn AccountSystem) -> String {
    handle.authorize(&request()).await.unwrap().auth_id.unwrap()
}

#[tokio::test]
async fn edits_are_reloaded_and_broken_edits_refused() {
    let (a, b) = (bank("AAAAAA").await, bank("BBBBBB").await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canonical.toml");
    std::fs::write(&file, canonical_to(&format!("{}/account-system", a.uri()))).unwrap();
    let adapters = Arc::new(Adapters::load(dir.path()).unwrap());
    let handle = adapters.handle("canonical").unwrap();
    assert_eq!(auth_id(&handle).await, "AAAAAA");
    assert!(adapters.reload_changed().is_empty(), "nothing changed");

    std::fs::write(&file, canonical_to(&format!("{}/account-system", b.uri()))).unwrap();
    let outcomes = tokio::task::spawn_blocking({
        let adapters = adapters.clone();
        move || adapters.reload_changed()
    })
    .await
    .unwrap();
    assert!(matches!(outcomes.as_slice(), [Reload::Replaced(n)] if n == "canonical"));
    assert_eq!(auth_id(&handle).await, "BBBBBB", "the edit serves");

    std::fs::write(
        &file,
        canonical_to(&format!("{}/account-system", a.uri())).replace("soap11", "soap99"),
    )
    .unwrap();
    let outcomes = tokio::task::spawn_blocking({
        let adapters = adapters.clone();
        move || adapters.reload_changed()
    })
    .await
    .unwrap();
    let [Reload::Refused(name, error)] = outcomes.as_slice() else {
        panic!("expected a refusal, got {outcomes:?}");
    };
    assert_eq!(name, "canonical");
    assert!(error.to_string().contains("soap99"), "{error}");
    assert_eq!(
        auth_id(&handle).await,
        "BBBBBB",
        "the previous version keeps serving"
    );
}

#[tokio::test]
async fn the_hub_authorizes_through_the_canonical_adapter() {
    let bank = bank("654321").await;
    let (dir, _) = support::prepare("").await;
    let adapters_dir = dir.path().join("adapters");
    std::fs::create_dir(&adapters_dir).unwrap();
    std::fs::write(
        adapters_dir.join("canonical.toml"),
        canonical_to(&format!("{}/account-system", bank.uri())),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("cardhub.toml"))
        .unwrap()
        .replace(
            "id = \"bank-a\"\nname = \"Bank A\"",
            "id = \"bank-a\"\nname = \"Bank A\"\nadapter = \"canonical\"",
        );
    let text = format!("adapters_dir = \"adapters\"\n{text}");
    std::fs::write(dir.path().join("cardhub.toml"), text).unwrap();
    let config = Config::load(&dir.path().join("cardhub.toml")).unwrap();
    let (hub, adapters) = app::open_with_adapters(&config).unwrap();
    assert!(adapters.is_some());
    let hub = Arc::new(hub);
    let running = link::start(&config.switches, &config.link, hub)
        .await
        .unwrap();
    let c = client(&running.local_addr("base24").unwrap().to_string()).await;
    let (answer, _) = c
        .request(&purchase(ACTIVE_USD, 2_500, 1), support::WAIT)
        .await
        .unwrap();
    assert_eq!(answer.response_code().unwrap().as_str(), "00");
    assert_eq!(answer.auth_id().unwrap(), "654321");
    // The account system got the canonical SOAP request for this card.
    let received = bank.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&received[0].body);
    assert!(
        body.contains("<as:card>476173******0010</as:card>"),
        "{body}"
    );
    assert!(body.contains("<as:amount>2500</as:amount>"), "{body}");
    assert!(!body.contains(ACTIVE_USD), "clear PAN sent");
    let db = rusqlite::Connection::open(Path::new(&config.store_path)).unwrap();
    let adapter: String = db
        .query_row(
            "SELECT adapter FROM journal WHERE stan = '000001'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(adapter, "canonical");
    running.shutdown().await;
}
