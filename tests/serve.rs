//! `cardhub serve --link-only` as a process: it serves a switch connection
//! from its config file, declines financial requests with 91, and on SIGTERM answers what is in flight, signs off and exits 0.

mod support;

use std::process::Command;
use std::sync::Arc;

use support::{WAIT, served};

use cardhub_core::iso8583::Dialect;
use cardhub_core::iso8583::fields::Stan;
use cardhub_core::link::frame::Framing;
use cardhub_core::link::netmgmt::{self, NetworkCode};
use cardhub_lab::sim::SimClient;

#[tokio::test]
async fn serves_declines_91_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cardhub.toml");
    std::fs::write(
        &config,
        "[[switch]]\nname = \"pos\"\nrole = \"listen\"\naddress = \"127.0.0.1:0\"\n\
         header = \"ISO006000070\"\n",
    )
    .unwrap();
    let log = dir.path().join("hub.log");
    let served = served::serve(&config, &["--link-only"], &log, &["pos"], false).await;
    let (mut hub, addr) = (served.child, served.switches["pos"].clone());
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
