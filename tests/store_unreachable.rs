//! A hub on PostgreSQL whose server stops answering (issue 18): the hub
//! reaches the tests' cluster through a TCP relay written here, which can
//! turn into a black hole (sockets stay open, nothing is forwarded, new
//! connections are accepted and never answered: a hung server or a
//! firewall dropping packets, the case that hangs a client without
//! timeouts) and back. While it is one, every request is answered 91 or 96
//! before the switch gives up, and `/readyz` is false; once it forwards
//! again the hub answers 00 by itself. No approval the switch saw is
//! missing from the journal.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::account::AccountSystem;
use cardhub_core::config::Config;
use cardhub_core::store::{PostgresOptions, Store};
use cardhub_core::{api, app, link};
use support::prepaid::{CITY, load, open_ledger};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "store-unreachable-token-01";

/// A prepaid card of institution `city`, loaded before the outage.
const PREPAID: &str = "4761739002010019";

/// A TCP relay to `upstream` that forwards while its switch says so. Turned
/// off, it forwards nothing in either direction but keeps every socket
/// open, and accepts new connections without connecting them upstream:
/// the client sees a server that never answers. Turned on again, what it
/// held goes through and new connections reach the server.
///
/// It runs on a runtime of its own, as a network would: the hub's reads
/// block the threads they run on (`Store::read`), which must not stop the
/// bytes they wait for.
struct Relay {
    addr: SocketAddr,
    forward: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (forward, _) = watch::channel(true);
        let gate = forward.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay_one(inbound, upstream, gate.subscribe()));
            }
        });
        Relay {
            addr,
            forward,
            runtime: Some(runtime),
        }
    }

    fn forward(&self, on: bool) {
        self.forward.send_replace(on);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Dropped in async code, where a blocking shutdown panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One client's connection: upstream once forwarding, then both ways.
async fn relay_one(inbound: TcpStream, upstream: SocketAddr, mut gate: watch::Receiver<bool>) {
    if gate.wait_for(|on| *on).await.is_err() {
        return;
    }
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (from_client, to_client) = inbound.into_split();
    let (from_server, to_server) = outbound.into_split();
    tokio::join!(
        pump(from_client, to_server, gate.clone()),
        pump(from_server, to_client, gate),
    );
}

/// Copies `from` to `to` while the gate is open; holds what it read while
/// it is closed.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut gate: watch::Receiver<bool>) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        if gate.wait_for(|on| *on).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if gate.wait_for(|on| *on).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `url` (`postgresql://user@host:port/db`) with `addr` for host and port.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme_user, rest) = url.split_once('@').expect("user@host in the URL");
    let (_, database) = rest.split_once('/').expect("a database in the URL");
    format!("{scheme_user}@{addr}/{database}")
}

/// The server's address in `url`.
fn server_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once('@').unwrap();
    rest.split_once('/').unwrap().0.parse().unwrap()
}

/// The hub, its link and API, on a store reached through `relay`.
struct Served {
    hub: TestHub,
    api: String,
    shutdown: CancellationToken,
}

async fn serve(url: &str, dir: tempfile::TempDir) -> Served {
    let text = config_text(&format!(
        "{CITY}\n[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .replace("path = \"hub.db\"", &format!("url = \"{url}\""));
    let path = dir.path().join("cardhub.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let csv = dir.path().join("prepaid-cards.csv");
    std::fs::write(
        &csv,
        format!(
            "pan,expiry,status,account,institution,currency,profile,product\n\
             {PREPAID},3012,inactive,P-1,city,USD,prepaid,prepaid\n"
        ),
    )
    .unwrap();
    open_ledger(&config, &csv, &["P-1"], None).await;
    let demo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv");
    import_cards(&config, &demo).await;

    let bank = Arc::new(TestBank::default());
    let systems: HashMap<String, Arc<dyn AccountSystem>> =
        HashMap::from([("bank-a".to_string(), bank.clone() as Arc<dyn AccountSystem>)]);
    let hub = Arc::new(app::open(&config, systems).unwrap());
    let shutdown = CancellationToken::new();
    let running = api::server::start(
        config.api.as_ref().unwrap(),
        hub.clone(),
        config.institutions.clone().into(),
        &config.prepaid,
        link::LinkStats::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    Served {
        hub: linked(dir, config, hub, bank).await,
        api: format!("http://{}", running.addr),
        shutdown,
    }
}

/// Imports the card file `csv` into the store of `config`.
async fn import_cards(config: &Config, csv: &std::path::Path) {
    let hub = app::open(config, HashMap::new()).unwrap();
    let rows = cardhub_core::cards::file::read(csv, &config.catalog()).unwrap();
    hub.cards().import(rows).await.unwrap();
}

/// `/readyz`'s status; panics when it takes longer than `patience`.
async fn ready(api: &str, patience: Duration) -> u16 {
    http()
        .get(format!("{api}/readyz"))
        .timeout(patience)
        .send()
        .await
        .expect("/readyz answers")
        .status()
        .as_u16()
}

/// One request of each kind: an online debit (bank-a's account system), a
/// stand-in one (bank-b has no account system: stand-in, 91 without
/// balances) and a prepaid purchase (the ledger in the store).
fn requests(stan: u32) -> [(u32, cardhub_core::iso8583::Message); 3] {
    let mut stand_in = purchase(ACTIVE_PREPAID_EUR, 100, stan + 1);
    stand_in.set(49, "978");
    [
        (stan, purchase(ACTIVE_USD, 100, stan)),
        (stan + 1, stand_in),
        (stan + 2, purchase(PREPAID, 100, stan + 2)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_gets_96_in_time_then_the_hub_recovers() {
    let real = support::pg::database("unreachable");
    let relay = Relay::start(server_of(&real));
    let Served {
        hub: t,
        api,
        shutdown,
    } = serve(&through(&real, relay.addr), tempfile::tempdir().unwrap()).await;
    // The hub's deadline for an answer: the switch's time limit (5 s) less
    // the safety margin.
    let patience = t.config.switches[0].budget();
    let c = client(&t.addr).await;
    let all = |first: u32| {
        futures::future::join_all(requests(first).map(|(stan, m)| ask(&c, stan, m, patience)))
    };

    // Before: answered, ready.
    assert_eq!(ask(&c, 1, load(PREPAID, 20_000, 1), patience).await, "00");
    let before = all(10).await;
    assert_eq!(before, ["00", "91", "00"]);
    assert_eq!(ready(&api, patience).await, 200);

    // The server stops answering: a burst of every kind, all answered in
    // time with 91 or 96, none approved.
    relay.forward(false);
    let burst: Vec<_> = (0..7).flat_map(|i| requests(100 + 10 * i)).collect();
    let stans: Vec<u32> = burst.iter().map(|(stan, _)| *stan).collect();
    let codes = futures::future::join_all(
        burst
            .into_iter()
            .map(|(stan, m)| ask(&c, stan, m, patience)),
    )
    .await;
    for (stan, code) in stans.iter().zip(&codes) {
        assert!(
            code == "96" || code == "91",
            "stan {stan} answered {code} while the store does not answer"
        );
    }
    assert_eq!(ready(&api, patience).await, 503);

    // The server answers again: the hub recovers by itself.
    relay.forward(true);
    within_wait("ready again", async {
        while ready(&api, patience).await != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let after = all(200).await;
    assert_eq!(after, ["00", "91", "00"]);

    // Every approval the switch saw is in the journal, none of the burst.
    let approved: Vec<u32> = [(1, "00".to_string())]
        .into_iter()
        .chain(requests(10).map(|r| r.0).into_iter().zip(before))
        .chain(requests(200).map(|r| r.0).into_iter().zip(after))
        .filter(|(_, code)| code == "00")
        .map(|(stan, _)| stan)
        .collect();
    let direct = Store::open_postgres(&real, PostgresOptions::default()).unwrap();
    let journaled: Vec<(String, String)> = direct
        .read(|c| {
            c.prepare_cached("SELECT stan, response_code FROM journal")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .unwrap();
    let code_of = |stan: u32| {
        journaled
            .iter()
            .filter(|(s, _)| s.parse::<u32>() == Ok(stan))
            .map(|(_, code)| code.as_str())
            .collect::<Vec<_>>()
    };
    for stan in approved {
        assert_eq!(code_of(stan), ["00"], "approval {stan} in the journal");
    }
    for stan in stans {
        assert!(
            !code_of(stan).contains(&"00"),
            "burst request {stan} answered 96 but journaled approved"
        );
    }
    shutdown.cancel();
    t.link.shutdown().await;
}

/// Sends `m` and returns its DE 39; panics when it is not answered within
/// `patience`.
async fn ask(
    c: &cardhub_lab::sim::SimClient,
    stan: u32,
    m: cardhub_core::iso8583::Message,
    patience: Duration,
) -> String {
    let (answer, _) = c
        .request(&m, patience)
        .await
        .unwrap_or_else(|e| panic!("stan {stan}: no answer before the switch's deadline: {e}"));
    answer.response_code().unwrap().to_string()
}
