//! `cardhub demo`: the whole job in one command, on loopback. Starts the
//! reference account system in each interface of `adapters/` (the canonical
//! WSDL, CoreBank SOAP 1.2, HomeBank XML, the fixed-width mainframe), the
//! hub (embedded store, the four adapters, the API) and drives a scripted
//! story through the switch simulator: online approvals and declines at
//! each adapter, a bank decided from balance files alone, end of day with stand-in and a declined double spend,
//! reopening with store-and-forward replay, a reversal, a retransmission
//! and a malformed frame, then prepaid cards in cardhub's own ledger
//! (`demo/prepaid.rs`: ordered, produced, loaded, spent, replaced,
//! exported). Prints the addresses it listens on (the account
//! systems and the switch listener always on free ports), a narrative and
//! a summary, then keeps running with the API up until Ctrl-C — or exits
//! with `--once`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::loopback::{self, TOKEN};
use crate::refsys::corebank::Credentials;
use crate::refsys::vendors::{self, DEMO_PASSWORD, Vendor};
use crate::refsys::{Mode, RefSys, Switches, accounts, ledger::Ledger};
use crate::sim::SimClient;
use cardhub_core::app;
use cardhub_core::cards::file;
use cardhub_core::fleet::Holder;
use cardhub_core::hub::pipeline::Hub;
use cardhub_core::iso8583::{Dialect, Message};
use cardhub_core::link::{self, frame::Framing};
use cardhub_core::soap_writer::{self, Version};
use cardhub_core::store::ServeLock;

mod prepaid;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run the story, print the summary and exit (what the tests use).
    #[arg(long)]
    once: bool,
    /// Folder for the demo's store and files (default: a new temporary folder).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address of the API (back office); port 0 takes any free port (the
    /// bound address is printed). Default: 127.0.0.1:8081, or any free
    /// port with `--once`.
    #[arg(long)]
    api: Option<String>,
}

/// The API's address when `--api` is not given and the demo keeps running.
const DEFAULT_API: &str = "127.0.0.1:8081";

/// Demo card numbers (test range, public in `fixtures/cards/demo-cards.csv`).
const CARDS: &str = include_str!("../../../fixtures/cards/demo-cards.csv");
/// The demo's own cards, at the banks behind the vendor adapters.
const VENDOR_CARDS: &str = "4761739001030018,2812,active,0042778812,bank-c,USD,standard,debit
4761739001040017,2812,active,4711002,bank-d,USD,standard,debit
4761739001050016,2812,active,4711000123,bank-e,USD,standard,debit
";
/// An online bank of the demo and its account system.
struct DemoBank {
    id: &'static str,
    /// The adapter file as shipped in `adapters/`.
    adapter: &'static str,
    /// The endpoint in the shipped file, replaced by the demo server's.
    shipped: &'static str,
    vendor: Vendor,
    account: &'static str,
    card: &'static str,
}

const BANKS: [DemoBank; 4] = [
    DemoBank {
        id: "bank-a",
        adapter: ADAPTER_CANONICAL,
        shipped: "http://127.0.0.1:8080",
        vendor: Vendor::Canonical,
        account: "A-1001",
        card: ACTIVE,
    },
    DemoBank {
        id: "bank-c",
        adapter: ADAPTER_COREBANK,
        shipped: "http://127.0.0.1:8081",
        vendor: Vendor::LegacySoap12,
        account: "0042778812",
        card: "4761739001030018",
    },
    DemoBank {
        id: "bank-d",
        adapter: ADAPTER_HOMEBANK,
        shipped: "http://127.0.0.1:8082",
        vendor: Vendor::HomebankXml,
        account: "4711002",
        card: "4761739001040017",
    },
    DemoBank {
        id: "bank-e",
        adapter: ADAPTER_MAINFRAME,
        shipped: "127.0.0.1:7001",
        vendor: Vendor::MainframeFixed,
        account: "4711000123",
        card: "4761739001050016",
    },
];
/// Banks c, d and e in the config, after the loopback setup's bank-a and bank-b.
const VENDOR_INSTITUTIONS: &str = r#"
[[institution]]
id = "bank-c"
name = "Bank C (CoreBank, SOAP 1.2 with WS-Security)"
mode = "online"
adapter = "legacy-soap12"
[[institution]]
id = "bank-d"
name = "Bank D (HomeBank XML over HTTP)"
mode = "online"
adapter = "homebank-xml"
[[institution]]
id = "bank-e"
name = "Bank E (mainframe, fixed-width records over TCP)"
mode = "online"
adapter = "mainframe-fixed"
"#;
const ADAPTER_CANONICAL: &str = include_str!("../../../adapters/canonical.toml");
const ADAPTER_COREBANK: &str = include_str!("../../../adapters/legacy-soap12.toml");
const ADAPTER_HOMEBANK: &str = include_str!("../../../adapters/homebank-xml.toml");
const ADAPTER_MAINFRAME: &str = include_str!("../../../adapters/mainframe-fixed.toml");
const ACTIVE: &str = "4761739001010010"; // A-1001, bank-a, USD
const ACTIVE_2: &str = "4761739001010028"; // A-1002, bank-a, USD
const LOST: &str = "4761739001010036"; // A-1003, lost
const PREPAID: &str = "4761739001010085"; // B-9002, bank-b (offline-only), EUR

pub fn run(args: DemoArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("cardhub-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(dir.join("adapters")).context("creating the demo folder")?;
    let stop = CancellationToken::new();

    // The account systems: bank-a's the reference implementation of the
    // WSDL, the others the demo servers of the vendor interfaces, each
    // with a ledger of its own; each adapter file aimed at its server.
    let mut bank = None;
    let mut listening = Vec::new();
    for b in &BANKS {
        let (state, url) = start_bank(b, &dir, &stop).await?;
        listening.push((format!("account system of {}", b.id), url.clone()));
        if b.vendor == Vendor::Canonical {
            bank = Some((state, url));
        }
    }
    let (bank, bank_url) = bank.context("bank-a is in BANKS")?;

    let api = match (&args.api, args.once) {
        (Some(api), _) => api.as_str(),
        (None, true) => "127.0.0.1:0",
        (None, false) => DEFAULT_API,
    };
    let config = loopback::write_config(
        &dir,
        &loopback::Setup {
            bank_url: &bank_url,
            api,
            switch: "127.0.0.1:0",
            cards: &format!("{CARDS}{VENDOR_CARDS}"),
            store_url: None,
            extra: &format!("{VENDOR_INSTITUTIONS}{}", prepaid::CONFIG),
        },
    )?;
    // A `--dir` of an earlier demo may hold a store another demo serves.
    let _lock = ServeLock::acquire(&config.store_path)?;
    let (hub, _adapters) = app::open_with_adapters(&config)?;
    let hub = Arc::new(hub);
    let rows = file::read(&dir.join("cards.csv"), &config.catalog())?;
    hub.cards().import(rows).await?;
    let link = link::start(&config.switches, &config.link, hub.clone()).await?;
    app::spawn_background(
        &hub,
        &config,
        &Holder::new(config.fleet.instance),
        link.shutdown_token(),
    );
    let api_settings = config.api.clone().context("the demo config has an [api]")?;
    let running = cardhub_core::api::server::start(
        &api_settings,
        hub.clone(),
        config.institutions.clone().into(),
        &config.prepaid,
        link.stats_source(),
        link.shutdown_token(),
    )
    .await
    .with_context(|| format!("starting the API on {api}"))?;
    let api_url = format!("http://{}", running.addr);
    let switch = link.local_addr("base24").context("listening")?.to_string();
    listening.push(("switch listener (BASE24)".into(), switch.clone()));
    listening.push(("API".into(), api_url.clone()));
    println!("Listening:");
    for (what, address) in &listening {
        println!("  {what:<28} {address}");
    }
    let dialect = Arc::new(Dialect::shipped("base24").context("base24 dialect")??);
    let client = SimClient::connect(
        &switch,
        dialect.clone(),
        Framing::TwoByte,
        Some("ISO006000070".into()),
    )
    .await?;
    client.sign_on().await?;
    let story = Story {
        client,
        dialect,
        switch,
        api: api_url.clone(),
        http: loopback::http_client()?,
        bank: bank.clone(),
    };
    story.tell().await?;
    let outbox = config
        .prepaid
        .outbox
        .as_deref()
        .context("the demo config has an outbox")?;
    story
        .tell_prepaid(&prepaid::Setting { outbox, dir: &dir })
        .await?;
    println!("{}", summary(&hub)?);
    if args.once {
        link.shutdown().await;
        stop.cancel();
        if args.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Ok(());
    }
    let files = match &args.dir {
        None => "removes the demo's files".to_string(),
        Some(dir) => format!("keeps the demo's files in {}", dir.display()),
    };
    println!(
        "The hub keeps running. Back office: {api_url}/api/institutions (Authorization: Bearer {TOKEN}), \
         {api_url}/metrics; the switch listens on {}; Ctrl-C or SIGTERM stops (and {files}).",
        story.switch
    );
    cardhub_core::app::wait_for_stop_signal().await?;
    link.shutdown().await;
    stop.cancel();
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Starts `b`'s account system on loopback with its account opened
/// (bank-a: two), and writes its adapter file into `dir/adapters/` aimed at
/// the server.
async fn start_bank(
    b: &DemoBank,
    dir: &Path,
    stop: &CancellationToken,
) -> Result<(Arc<RefSys>, String)> {
    let (id, vendor, adapter, shipped) = (b.id, b.vendor, b.adapter, b.shipped);
    let lines = match vendor {
        Vendor::Canonical => "A-1001,1000.00,USD\nA-1002,250.00,USD\n".to_owned(),
        _ => format!("{},500.00,USD\n", b.account),
    };
    let opening = accounts::parse(format!("account,available,currency\n{lines}").as_bytes())
        .map_err(|e| {
            anyhow::anyhow!(
                "{id}'s demo accounts: {}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    let mut ledger = Ledger::open(None)?;
    ledger.open_accounts(&opening)?;
    let state = RefSys::new(ledger, Mode::Open, 0);
    let credentials = Credentials {
        username: vendor.default_username().to_owned(),
        password: DEMO_PASSWORD.to_owned(),
    };
    let any = "127.0.0.1:0".parse()?;
    let addr = vendors::spawn(vendor, any, state.clone(), credentials, stop.clone()).await?;
    let name = adapter
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .map(|n| n.trim_matches('"'))
        .context("an adapter file without a name")?;
    if !adapter.contains(shipped) {
        bail!("demo: adapters/{name}.toml no longer points at {shipped}");
    }
    let scheme = if shipped.starts_with("http://") {
        "http://"
    } else {
        ""
    };
    let url = format!("{scheme}{addr}");
    std::fs::write(
        dir.join(format!("adapters/{name}.toml")),
        adapter.replace(shipped, &url),
    )?;
    Ok((state, url))
}

struct Story {
    client: SimClient,
    dialect: Arc<Dialect>,
    switch: String,
    api: String,
    http: reqwest::Client,
    bank: Arc<RefSys>,
}

/// A BASE24 request (fixed terminal data).
fn request(
    mti: &str,
    processing: &str,
    pan: &str,
    amount: u64,
    stan: u32,
    currency: &str,
) -> Message {
    let mti = mti
        .parse()
        .unwrap_or(cardhub_core::iso8583::Mti::NETWORK_REQUEST);
    crate::sim::template::base24_request(mti, processing, pan, amount, stan, currency)
}

impl Story {
    async fn send(&self, what: &str, m: &Message) -> Result<String> {
        let (answer, took) = self.client.request(m, Duration::from_secs(10)).await?;
        let code = answer
            .response_code()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        println!(
            "  {what:<58} → {} {code}  ({:.1} ms)",
            answer.mti(),
            took.as_secs_f64() * 1e3
        );
        Ok(code)
    }

    async fn expect(&self, what: &str, m: &Message, code: &str) -> Result<()> {
        let got = self.send(what, m).await?;
        if got != code {
            bail!("demo: {what}: expected {code}, got {got}");
        }
        Ok(())
    }

    async fn post(&self, path: &str, content_type: &str, body: String) -> Result<String> {
        loopback::post(
            &self.http,
            &format!("{}{path}", self.api),
            content_type,
            body,
        )
        .await
    }

    async fn status_notify(&self, state: &str) -> Result<()> {
        let notify = format!(
            r#"<hub:StatusNotify xmlns:hub="urn:cardhub:hub:v1"><hub:institution>bank-a</hub:institution><hub:state>{state}</hub:state><hub:reason>demo</hub:reason><hub:time>{}</hub:time></hub:StatusNotify>"#,
            jiff::Timestamp::now()
        );
        let body = soap_writer::message(Version::V11, |out| out.push_str(&notify));
        self.post("/soap/hub", "text/xml; charset=utf-8", body)
            .await?;
        println!("  StatusNotify {state} (SOAP, from bank-a)");
        Ok(())
    }

    async fn tell(&self) -> Result<()> {
        let as_of = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        println!("\n1. Balance files: bank-a's and bank-b's uploaded through the API");
        let a = format!(
            "#as_of={as_of}\naccount,available,currency\nA-1001,1000.00,USD\nA-1002,250.00,USD\n"
        );
        self.post("/api/institutions/bank-a/balances", "text/csv", a)
            .await?;
        let b = format!("#as_of={as_of}\naccount,available,currency\nB-9002,80.00,EUR\n");
        self.post("/api/institutions/bank-b/balances", "text/csv", b)
            .await?;

        println!("\n2. Online: bank-a's account system (the reference implementation) decides");
        self.expect(
            "ATM cash 100.00 USD, A-1001",
            &request("0200", "011000", ACTIVE, 10_000, 1, "840"),
            "00",
        )
        .await?;
        self.expect(
            "POS purchase 400.00 USD, A-1002 (250.00 on it)",
            &request("0100", "000000", ACTIVE_2, 40_000, 2, "840"),
            "51",
        )
        .await?;
        self.expect(
            "POS purchase on a card reported lost (hub rule)",
            &request("0100", "000000", LOST, 1_000, 3, "840"),
            "41",
        )
        .await?;

        println!("\n3. Online through the vendor adapters: each bank's own interface decides");
        let mut stan = 100;
        for b in BANKS.iter().skip(1) {
            let how = match b.vendor {
                Vendor::LegacySoap12 => "CoreBank SOAP 1.2",
                Vendor::HomebankXml => "HomeBank XML",
                _ => "mainframe records",
            };
            stan += 2;
            self.expect(
                &format!("POS purchase 120.00 USD, {} ({how})", b.id),
                &request("0100", "000000", b.card, 12_000, stan, "840"),
                "00",
            )
            .await?;
            self.expect(
                &format!("POS purchase 900.00 USD, {} (380.00 left)", b.id),
                &request("0100", "000000", b.card, 90_000, stan + 1, "840"),
                "51",
            )
            .await?;
        }

        println!("\n4. bank-b is offline-only: cardhub decides from its balance file");
        self.expect(
            "POS purchase 30.00 EUR, prepaid B-9002 (80.00)",
            &request("0100", "000000", PREPAID, 3_000, 4, "978"),
            "00",
        )
        .await?;
        self.expect(
            "POS purchase 60.00 EUR, B-9002 (50.00 left)",
            &request("0100", "000000", PREPAID, 6_000, 5, "978"),
            "51",
        )
        .await?;

        println!("\n5. End of day at bank-a: stand-in from the shadow balance");
        self.status_notify("CLOSING").await?;
        self.bank.set_mode(Switches {
            mode: Mode::Closed,
            delay_ms: None,
        });
        self.expect(
            "ATM cash 500.00 USD, A-1001 (900.00 left)",
            &request("0200", "011000", ACTIVE, 50_000, 6, "840"),
            "00",
        )
        .await?;
        self.expect(
            "POS purchase 450.00 USD, A-1001: the double spend",
            &request("0200", "000000", ACTIVE, 45_000, 7, "840"),
            "51",
        )
        .await?;

        println!("\n6. bank-a reopens: store-and-forward replays stand-in's approvals");
        self.bank.set_mode(Switches {
            mode: Mode::Open,
            delay_ms: None,
        });
        self.status_notify("OPEN").await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self
            .bank
            .stats()
            .requests
            .get("advice")
            .copied()
            .unwrap_or(0)
            < 1
        {
            if tokio::time::Instant::now() > deadline {
                bail!("demo: the stand-in approval was not replayed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("  the account system received the advice of the ATM cash 500.00");

        println!("\n7. A reversal, a retransmission and a malformed frame");
        self.expect(
            "reversal of the ATM cash 100.00 (0400)",
            &request("0400", "011000", ACTIVE, 10_000, 1, "840"),
            "00",
        )
        .await?;
        self.expect(
            "retransmission of the lost-card request (0101)",
            &request("0101", "000000", LOST, 1_000, 3, "840"),
            "41",
        )
        .await?;
        self.malformed().await?;
        self.expect(
            "and the hub keeps serving: POS purchase 20.00 USD",
            &request("0100", "000000", ACTIVE, 2_000, 8, "840"),
            "00",
        )
        .await?;
        Ok(())
    }

    /// A frame whose DE 41 is cut short: the hub answers 30 and goes on.
    async fn malformed(&self) -> Result<()> {
        // Header, MTI, bitmap (DE 11 and 41), DE 11, then 4 of DE 41's 16 characters.
        let body = concat!("ISO026000070", "0100", "0020000000800000", "000777", "TERM").as_bytes();
        let mut stream = tokio::net::TcpStream::connect(&self.switch).await?;
        stream.write_all(&(body.len() as u16).to_be_bytes()).await?;
        stream.write_all(body).await?;
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len)).await??;
        let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut answer).await?;
        let answer = self.dialect.decode(&answer)?;
        let code = answer
            .response_code()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        println!(
            "  {:<58} → {} {code}",
            "malformed 0100 (DE 41 cut short)",
            answer.mti()
        );
        if code != "30" {
            bail!("demo: malformed frame answered {code}, not 30");
        }
        Ok(())
    }
}

/// Counts by outcome and the store-and-forward check, from the journal.
fn summary(hub: &Hub) -> Result<String> {
    let rows: Vec<(String, String, String, i64)> = hub.store().read(|c| {
        c.prepare_cached(
            "SELECT COALESCE(institution, '-'), decided_by, response_code, COUNT(*) FROM journal \
             WHERE entry = 'request' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect()
    })?;
    let (stand_in_approved, delivered): (i64, i64) = hub.store().read(|c| {
        c.query_row(
            "SELECT (SELECT COUNT(*) FROM journal WHERE institution = 'bank-a' AND decided_by = 'stand_in' \
             AND response_code = '00' AND entry = 'request'), \
             (SELECT COUNT(*) FROM saf_queue WHERE state = 'delivered' AND operation = 'advice')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    })?;
    let mut out = String::from("\nSummary\n");
    let _ = writeln!(
        out,
        "  {:<12} {:<15} {:<5} {:>5}",
        "institution", "decided by", "code", "count"
    );
    for (institution, decided_by, code, count) in rows {
        let _ = writeln!(
            out,
            "  {institution:<12} {decided_by:<15} {code:<5} {count:>5}"
        );
    }
    let _ = writeln!(
        out,
        "  SAF: {delivered} advice(s) delivered for {stand_in_approved} stand-in approval(s) at bank-a{}",
        if delivered == stand_in_approved {
            " — all told"
        } else {
            " — NOT all told"
        }
    );
    Ok(out)
}
