//! `cardhub serve --link-only` as a process: it serves a switch connection
//! from its config file, declines financial requests with 91, and on SIGTERM answers what is in flight, signs off and exits 0.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cardhub::iso8583::Dialect;
use cardhub::iso8583::fields::Stan;
use cardhub::link::frame::Framing;
use cardhub::link::netmgmt::{self, NetworkCode};
use cardhub::sim::SimClient;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serves_declines_91_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("cardhub.toml");
    std::fs::write(
        &config,
        format!(
            "[[switch]]\nname = \"pos\"\nrole = \"listen\"\naddress = \"127.0.0.1:{port}\"\n\
             header = \"ISO006000070\"\n"
        ),
    )
    .unwrap();
    let mut hub = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["serve", "--link-only", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let addr = format!("127.0.0.1:{port}");
    let stream = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(s) = TcpStream::connect(&addr).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("hub listening");
    drop(stream);
    let dialect = Arc::new(Dialect::shipped("base24").unwrap().unwrap());
    let c = SimClient::connect(
        &addr,
        dialect,
        Framing::TwoByte,
        Some("ISO006000070".into()),
    )
    .await
    .unwrap();
    let reply = c.sign_on().await.unwrap();
    assert!(reply.response_code().unwrap().is_approval());

    let mut purchase = netmgmt::request(
        NetworkCode::Echo,
        Stan::new(2).unwrap(),
        Some("ISO026000070"),
        None,
    );
    purchase.set_mti("0100".parse().unwrap());
    purchase.remove(70);
    purchase.set(2, "4761739001010010");
    purchase.set(3, "000000");
    purchase.set(4, "000000001000");
    let (reply, _) = c.request(&purchase, WAIT).await.unwrap();
    assert_eq!(reply.mti().as_str(), "0110");
    assert_eq!(reply.response_code().unwrap().as_str(), "91");

    let killed = Command::new("kill")
        .args(["-TERM", &hub.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || hub.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "hub exited with {status}");
    // The hub signed off before closing (our side answered its 0800/002).
    assert!(!c.is_signed_on());
}
