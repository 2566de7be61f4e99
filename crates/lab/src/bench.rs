//! `cardhub bench`: the end-to-end benchmark on loopback. Three processes:
//! this one (the switch simulator, one thread, as `cardhub sim flood`), and
//! two children of this same binary — the hub (`cardhub serve`) and the
//! reference account system (`cardhub reference-account-system`). Four
//! scenarios, each a warm-up then a measured run:
//!
//! - **floor**: `cardhub serve --link-only` — the link answering 91 at once,
//!   no pipeline, no store: what the hub is measured against;
//! - **online**: the hub with its journal on disk, deciding through the
//!   canonical adapter (SOAP 1.1) with the reference system;
//! - **stand-in**: bank-a closed and its balance file applied, every
//!   request decided from the shadow balance and queued for replay;
//! - **prepaid**: the cards of an institution in mode `prepaid`, loaded
//!   once, every purchase a hold in cardhub's own durable ledger (no
//!   account-system process).
//!
//! Every scenario must be answered with its expected code (91 for the
//! floor, 00 otherwise) for most requests: a benchmark of declines or
//! timeouts measures nothing, so the command fails when one is not.
//!
//! The hubs keep their store in SQLite, or with `--postgres-url` in a new
//! database of that server per hub setup; there, `--instances N` runs N
//! hub children (and N link-only ones for the floor) on one database, the
//! simulator's connections spread over them, and each one's CPU is
//! reported over the requests it answered, the server's over all.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use tokio::time::Instant;

use crate::loopback;
use crate::refsys::Stats;
use crate::sim::template::{self, RRN_SEQUENCE};
use crate::sim::{self, FloodOptions, FloodReport, Pace};
use cardhub_core::cards::file;
use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::iso8583::{Dialect, Message};
use cardhub_core::link::frame::Framing;
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::{
    Ledger, NewOrderer, NewProgramme, PinDelivery, PrepaidError, ProgrammeKind,
};
use instances::{HubSetup, Instances, hub_configs, serve_args};
use postgres::Postgres;
use process::{Child, cpu_time, free_addresses};
use report::{Cpu, Measured, Report, failures, ratios};

mod instances;
mod postgres;
mod process;
mod report;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated (default: all four).
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Requests of each measured run (default: what --duration takes).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Seconds each measured run lasts, about: the rate, or the warm-up's
    /// throughput, times this.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Requests of each warm-up run (not measured).
    #[arg(long, default_value_t = 2000)]
    warm_up: u64,
    /// Requests in flight at once; each sends the next when answered.
    #[arg(long, default_value_t = 64, conflicts_with = "rate")]
    concurrency: usize,
    /// Requests started per second instead, answered or not.
    #[arg(long)]
    rate: Option<f64>,
    /// Switch connections the simulator opens to each hub instance.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Keep the hubs' store in a new database on this PostgreSQL server
    /// (a database per hub setup, dropped after a successful run; the user
    /// must be allowed to create databases) instead of SQLite. When the
    /// server runs on this machine its processes' CPU is reported too.
    #[arg(long, value_name = "URL")]
    postgres_url: Option<String>,
    /// Hub instances (`cardhub serve` children, `[fleet] instance` 0 to
    /// N-1) each scenario runs, on one database: more than one needs
    /// --postgres-url. The simulator spreads its connections over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    instances: u8,
    /// Cards (one account each) the requests go round.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    cards: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Folder for the hub's store, configs and logs (default: a temporary
    /// folder, removed after a successful run).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// The link alone (`serve --link-only`).
    Floor,
    /// Hub → canonical adapter → reference account system.
    Online,
    /// Institution closed, decided from the shadow balance.
    StandIn,
    /// Prepaid cards: holds in cardhub's own ledger.
    Prepaid,
}

/// The prepaid institution and a maximum balance no bench run reaches.
const PREPAID: &str = "[prepaid]
default_max_balance = 1000000000000000
[[institution]]
id = \"city\"
name = \"City prepaid (bench)\"
mode = \"prepaid\"";
/// Each prepaid card's one load: 100,000,000,000.00 USD, for holds of
/// 125.50 USD.
const PREPAID_LOAD: u64 = 10_000_000_000_000;
/// Tries of one prepaid setup write that fails to serialise.
const SETUP_ATTEMPTS: u64 = 20;
/// How long a child process may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each request waits for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The request template: a BASE24 POS purchase, 125.50 USD.
const TEMPLATE: &str = include_str!("../../../fixtures/iso8583/base24/0100.hex");
/// The bench's limits profile: generous, so that limits never decline —
/// the benchmark measures decisions, not a card's daily count.
const LIMITS: &str = "[limits.bench]
atm = { per_transaction = 500000, daily_amount = 100000000000, daily_count = 1000000 }
pos = { per_transaction = 500000, daily_amount = 100000000000, daily_count = 1000000 }";

pub fn run(args: BenchArgs) -> Result<()> {
    if args.instances > 1 && args.postgres_url.is_none() {
        bail!(
            "--instances {} needs --postgres-url: instances share one PostgreSQL database, \
             and an SQLite store is served by one process",
            args.instances
        );
    }
    // One thread, as `cardhub sim flood`: the simulator shares the machine
    // with what it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("cardhub-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let outcome = runtime.block_on(async {
        let postgres = match &args.postgres_url {
            Some(url) => Some(Postgres::connect(url).await?),
            None => None,
        };
        let scenarios = Bench::new(&args, &dir, postgres.as_ref())?.run().await?;
        Ok::<_, anyhow::Error>((scenarios, postgres))
    });
    let (scenarios, postgres) = match outcome {
        Ok(s) => s,
        Err(e) => return Err(e.context(format!("files and logs kept in {}", dir.display()))),
    };
    let report = Report {
        pace: args.pace_text(),
        store: if postgres.is_some() {
            "postgresql"
        } else {
            "sqlite"
        },
        instances: args.instances,
        connections: args.connections,
        cards: args.cards,
        warm_up: args.warm_up,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average,
        ratios_to_floor: ratios(&scenarios),
        scenarios,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.text());
    }
    let failed = failures(&report.scenarios);
    if !failed.is_empty() {
        bail!(
            "the benchmark measured failures, not decisions (files and logs kept in {}):\n  {}",
            dir.display(),
            failed.join("\n  ")
        );
    }
    if let Some(postgres) = &postgres {
        runtime.block_on(postgres.drop_databases())?;
    }
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

impl BenchArgs {
    fn pace(&self) -> Pace {
        match self.rate {
            Some(rate) => Pace::Rate(rate),
            None => Pace::Concurrency(self.concurrency),
        }
    }

    fn pace_text(&self) -> String {
        match self.pace() {
            Pace::Rate(r) => format!("rate {r}/s"),
            Pace::Concurrency(c) => format!("concurrency {c}"),
        }
    }

    fn wants(&self, scenario: Scenario) -> bool {
        self.scenario.is_empty() || self.scenario.contains(&scenario)
    }

    /// Requests of a measured run, after a warm-up that gave `warm_up`.
    fn measured_count(&self, warm_up: &FloodReport) -> u64 {
        if let Some(count) = self.count {
            return count;
        }
        let per_second = match self.pace() {
            Pace::Rate(rate) => rate,
            Pace::Concurrency(_) => warm_up.throughput,
        };
        ((per_second * self.duration).ceil() as u64).clamp(1, RRN_SEQUENCE)
    }
}

impl Scenario {
    fn title(self) -> &'static str {
        match self {
            Scenario::Floor => "link-only floor",
            Scenario::Online => "online",
            Scenario::StandIn => "stand-in",
            Scenario::Prepaid => "prepaid",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Scenario::Floor => "cardhub serve --link-only: no pipeline, every request answered 91",
            Scenario::Online => {
                "hub (journal fsynced) → canonical adapter → reference account system, SOAP 1.1"
            }
            Scenario::StandIn => {
                "bank-a closed, balance file applied: decided from the shadow balance, queued for replay"
            }
            Scenario::Prepaid => {
                "prepaid cards loaded once: each purchase a hold in the durable prepaid ledger"
            }
        }
    }

    fn expected_code(self) -> &'static str {
        match self {
            Scenario::Floor => "91",
            Scenario::Online | Scenario::StandIn | Scenario::Prepaid => "00",
        }
    }
}

/// One run of the benchmark: its folder, its free ports, its cards.
struct Bench<'a> {
    args: &'a BenchArgs,
    dir: &'a Path,
    /// The server of the hubs' databases; `None`: SQLite.
    postgres: Option<&'a Postgres>,
    dialect: Arc<Dialect>,
    template: Message,
    cards: Vec<Pan>,
    http: reqwest::Client,
}

impl<'a> Bench<'a> {
    fn new(
        args: &'a BenchArgs,
        dir: &'a Path,
        postgres: Option<&'a Postgres>,
    ) -> Result<Bench<'a>> {
        let dialect = Arc::new(Dialect::shipped("base24").context("base24 dialect")??);
        let template_path = dir.join("template.hex");
        std::fs::write(&template_path, TEMPLATE)?;
        let template = template::load(&template_path, &dialect)?;
        Ok(Bench {
            args,
            dir,
            postgres,
            dialect,
            template,
            cards: (0..args.cards).map(card).collect::<Result<_>>()?,
            http: loopback::http_client()?,
        })
    }

    /// Runs the wanted scenarios in order: floor, online, stand-in, prepaid.
    async fn run(self) -> Result<Vec<Measured>> {
        let mut measured = Vec::new();
        if self.args.wants(Scenario::Floor) {
            measured.push(self.floor().await?);
        }
        if self.args.wants(Scenario::Online) || self.args.wants(Scenario::StandIn) {
            measured.extend(self.hub().await?);
        }
        if self.args.wants(Scenario::Prepaid) {
            measured.push(self.prepaid().await?);
        }
        Ok(measured)
    }

    /// As many link-only children as hub instances.
    async fn floor(&self) -> Result<Measured> {
        let slots = instances::slots(self.dir, "hub-link-only", self.instances(), false)?;
        for slot in &slots {
            std::fs::write(
                slot.folder.join("floor.toml"),
                format!(
                    "[[switch]]\nname = \"base24\"\nrole = \"listen\"\naddress = \"{}\"\n\
                     header = \"ISO006000070\"\nidle_echo_ms = 0\n",
                    slot.switch
                ),
            )?;
        }
        let links = Instances::start(&slots, |slot| {
            let config = slot.folder.join("floor.toml");
            let config = config.to_string_lossy();
            ["serve", "--link-only", "--config", &config]
                .map(String::from)
                .to_vec()
        })
        .await?;
        let measured = self.measure(Scenario::Floor, &links, &[], None).await;
        links.stop().await;
        measured
    }

    /// The reference system and the hubs; online, then stand-in.
    async fn hub(&self) -> Result<Vec<Measured>> {
        let [bank] = free_addresses::<1>()?;
        let accounts = self.dir.join("accounts.csv");
        std::fs::write(&accounts, self.accounts())?;
        let mut refsys = Child::spawn(
            self.dir,
            "reference-account-system",
            &[
                "reference-account-system",
                "--listen",
                &bank.to_string(),
                "--accounts",
                &accounts.to_string_lossy(),
            ],
        )?;
        refsys.wait_listening(&[bank]).await?;
        let bank_url = format!("http://{bank}");
        let store_url = self.store_url("hub").await?;
        let setup = HubSetup {
            bank_url: &bank_url,
            cards: &self.card_file("bank-a", "debit"),
            extra: LIMITS,
            store_url: store_url.as_deref(),
        };
        let slots = instances::slots(self.dir, "hub", self.instances(), true)?;
        let configs = hub_configs(&slots, &setup)?;
        let registry = cardhub_core::app::open_card_registry(&configs[0])?;
        let rows = file::read(&slots[0].folder.join("cards.csv"), &configs[0].catalog())?;
        registry.import(rows).await?;
        drop(registry);
        let hubs = Instances::start(&slots, serve_args).await?;

        let mut measured = Vec::new();
        let others = [&refsys];
        if self.args.wants(Scenario::Online) {
            let run = self.measure(Scenario::Online, &hubs, &others, Some(&bank_url));
            measured.push(run.await?);
        }
        if self.args.wants(Scenario::StandIn) {
            self.close_bank_a(&bank_url, hubs.apis()).await?;
            let run = self.measure(Scenario::StandIn, &hubs, &others, Some(&bank_url));
            measured.push(run.await?);
        }
        hubs.stop().await;
        refsys.stop().await;
        Ok(measured)
    }

    /// Hubs whose cards are prepaid cards of `city` (mode `prepaid`), each
    /// loaded once through the ledger before the hubs start.
    async fn prepaid(&self) -> Result<Measured> {
        let dir = self.dir.join("prepaid");
        let store_url = self.store_url("prepaid").await?;
        let setup = HubSetup {
            // bank-a is not asked: no account-system process runs.
            bank_url: "http://127.0.0.1:9",
            cards: &self.card_file("city", "prepaid"),
            extra: &format!("{LIMITS}\n{PREPAID}"),
            store_url: store_url.as_deref(),
        };
        let slots = instances::slots(&dir, "hub", self.instances(), true)?;
        let configs = hub_configs(&slots, &setup)?;
        prepaid_cards(&configs[0], &slots[0].folder, self.cards.len()).await?;
        let hubs = Instances::start(&slots, serve_args).await?;
        let measured = self.measure(Scenario::Prepaid, &hubs, &[], None).await;
        hubs.stop().await;
        measured
    }

    fn instances(&self) -> usize {
        usize::from(self.args.instances)
    }

    /// A new database named for `name` on the PostgreSQL server; `None`
    /// for SQLite.
    async fn store_url(&self, name: &str) -> Result<Option<String>> {
        match self.postgres {
            Some(postgres) => Ok(Some(postgres.database(name).await?)),
            None => Ok(None),
        }
    }

    /// A warm-up, then the measured run, with what the hubs, `others` and
    /// the account system at `bank_url` did during it.
    async fn measure(
        &self,
        scenario: Scenario,
        hubs: &Instances,
        others: &[&Child],
        bank_url: Option<&str>,
    ) -> Result<Measured> {
        let title = scenario.title();
        let warm_up = match self.args.warm_up {
            0 => FloodReport::default(),
            count => {
                eprintln!("bench: {title}: warm-up, {count} requests");
                self.flood(hubs.switches(), count).await?
            }
        };
        let count = self.args.measured_count(&warm_up);
        eprintln!("bench: {title}: measuring, {count} requests");
        // The simulator, the hubs (in the order of the flood's addresses),
        // the other children, the database server.
        let cpu = || {
            let mut cpu = vec![("simulator".to_string(), cpu_time(std::process::id()))];
            let children = hubs.children().iter().chain(others.iter().copied());
            cpu.extend(children.map(|c| (c.name.clone(), c.cpu_time())));
            if let Some(postgres) = self.postgres {
                cpu.push(("postgres".to_string(), postgres.cpu_time()));
            }
            cpu
        };
        let calls_before = match bank_url {
            Some(url) => Some(self.authorizations(url).await?),
            None => None,
        };
        let cpu_before = cpu();
        let report = self.flood(hubs.switches(), count).await?;
        let cpu = cpu()
            .into_iter()
            .zip(cpu_before)
            .enumerate()
            .filter_map(|(i, ((name, after), (_, before)))| {
                Some(Cpu {
                    name,
                    used: after?.saturating_sub(before?),
                    // Entry 0 is the simulator, 1 to N the hubs.
                    answered: i
                        .checked_sub(1)
                        .and_then(|hub| report.answered_by_address.get(hub).copied()),
                })
            })
            .collect();
        let authorizations = match (bank_url, calls_before) {
            (Some(url), Some(before)) => {
                Some(self.authorizations(url).await?.saturating_sub(before))
            }
            _ => None,
        };
        Ok(Measured {
            scenario,
            report,
            authorizations,
            cpu,
        })
    }

    /// `count` requests over the connections to `switches`, `--connections`
    /// to each.
    async fn flood(&self, switches: &[SocketAddr], count: u64) -> Result<FloodReport> {
        let report = sim::flood(FloodOptions {
            addresses: switches.iter().map(SocketAddr::to_string).collect(),
            dialect: self.dialect.clone(),
            framing: Framing::TwoByte,
            header: Some("ISO006000070".into()),
            template: self.template.clone(),
            cards: self.cards.clone(),
            pace: self.args.pace(),
            count,
            connections: self.args.connections * switches.len(),
            timeout: REQUEST_TIMEOUT,
            progress: !self.args.json && std::io::stderr().is_terminal(),
        })
        .await?;
        Ok(report)
    }

    /// Closes bank-a's account system for the day and tells the hubs
    /// through the first one's API, with a balance file applied first;
    /// returns when every hub has the institution closed and the file.
    async fn close_bank_a(&self, bank_url: &str, apis: &[SocketAddr]) -> Result<()> {
        let api = apis.first().context("the hubs serve no API")?;
        loopback::post(
            &self.http,
            &format!("{bank_url}/admin/mode"),
            "application/json",
            r#"{"mode":"closed"}"#.into(),
        )
        .await?;
        let balances = format!("#as_of={}\n{}", jiff::Timestamp::now(), self.accounts());
        loopback::post(
            &self.http,
            &format!("http://{api}/api/institutions/bank-a/balances"),
            "text/csv",
            balances,
        )
        .await?;
        loopback::post(
            &self.http,
            &format!("http://{api}/api/institutions/bank-a/state"),
            "application/json",
            r#"{"state":"closed","reason":"cardhub bench: stand-in"}"#.into(),
        )
        .await?;
        for api in apis {
            self.wait_closed_with_balances(*api).await?;
        }
        Ok(())
    }

    /// Waits until the hub at `api` has bank-a closed and its balance file
    /// current (another instance applies both within about a second).
    async fn wait_closed_with_balances(&self, api: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let url = format!("http://{api}/api/institutions");
            let text = loopback::send(&self.http, reqwest::Method::GET, &url, None).await?;
            let list: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("reading {url}"))?;
            let bank_a = list["institutions"]
                .as_array()
                .and_then(|all| all.iter().find(|i| i["id"] == "bank-a"));
            let ready = bank_a.is_some_and(|i| {
                i["state"] == "closed" && i["balances_rows"] == self.cards.len() as u64
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the hub at {api} did not show bank-a closed with its balance file within {START_TIMEOUT:?}: {bank_a:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Authorize calls the reference system has received so far.
    async fn authorizations(&self, bank_url: &str) -> Result<u64> {
        let text = self
            .http
            .get(format!("{bank_url}/admin/stats"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let stats: Stats = serde_json::from_str(&text).context("reading /admin/stats")?;
        Ok(stats.requests.get("authorize").copied().unwrap_or(0))
    }

    /// The card file: card `i` on account `BENCH-i` of `institution`.
    fn card_file(&self, institution: &str, product: &str) -> String {
        let mut text =
            String::from("pan,expiry,status,account,institution,currency,profile,product\n");
        for (i, pan) in self.cards.iter().enumerate() {
            text.push_str(&format!(
                "{},2812,active,{},{institution},USD,bench,{product}\n",
                pan.expose(),
                account(i)
            ));
        }
        text
    }

    /// The accounts (and balance file) of the cards: plenty of money each.
    fn accounts(&self) -> String {
        let mut text = String::from("account,available,currency\n");
        for i in 0..self.cards.len() {
            text.push_str(&format!("{},1000000000.00,USD\n", account(i)));
        }
        text
    }
}

/// Imports the card file written beside `config` (in `dir`) and sets the
/// prepaid ledger up for its `cards` cards: one orderer and programme, a
/// card account per card, each loaded with [`PREPAID_LOAD`].
async fn prepaid_cards(config: &Config, dir: &Path, cards: usize) -> Result<()> {
    let hub = cardhub_core::app::open(config, std::collections::HashMap::new())?;
    let rows = file::read(&dir.join("cards.csv"), &config.catalog())?;
    hub.cards().import(rows).await?;
    let ledger = Ledger::new(hub.store().clone(), &config.prepaid);
    ledger
        .create_orderer(NewOrderer {
            id: "city".into(),
            name: "cardhub bench".into(),
            funding_account: "BENCH-FUNDING".into(),
        })
        .await?;
    ledger
        .create_programme(NewProgramme {
            id: "city-bench".into(),
            orderer: "city".into(),
            kind: ProgrammeKind::SmallPurchase,
            currency: Currency::from_numeric(840).context("USD")?,
            max_balance: None,
            pin_delivery: PinDelivery::WithCard,
            daily: Default::default(),
        })
        .await?;
    let usd = Currency::from_numeric(840).context("USD")?;
    let opened = (0..cards).map(|i| {
        let ledger = ledger.clone();
        async move {
            let (account, reference) = (account(i), format!("BENCH-LOAD-{i}"));
            retried(|| ledger.open_card(&account, "city-bench")).await?;
            let money = Money::new(PREPAID_LOAD, usd);
            retried(|| ledger.load(&reference, &account, money)).await
        }
    });
    // Concurrent: SQLite commits them in a few groups; PostgreSQL runs
    // them on its writers, where some conflict and are tried again.
    for outcome in futures::future::join_all(opened).await {
        outcome?;
    }
    Ok(())
}

/// `op`, tried again after a short random pause while it fails with a
/// retryable store error (on PostgreSQL, concurrent setup writes can fail
/// to serialise), [`SETUP_ATTEMPTS`] times at most.
async fn retried<T, F: Future<Output = Result<T, PrepaidError>>>(
    op: impl Fn() -> F,
) -> Result<T, PrepaidError> {
    let mut attempt = 1;
    loop {
        match op().await {
            Err(PrepaidError::Store(e)) if e.is_retryable() && attempt < SETUP_ATTEMPTS => {
                let pause = rand::random_range(1..=10 * attempt);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The `i`-th bench card: a test-range PAN with a valid Luhn digit.
fn card(i: u32) -> Result<Pan> {
    loopback::luhn_pan(&format!("4761738{i:08}"))
}

fn account(i: usize) -> String {
    format!("BENCH-{i:07}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_cards_are_distinct_valid_test_range_card_numbers() {
        let cards: Vec<Pan> = (0..1000).map(|i| card(i).unwrap()).collect();
        let distinct: std::collections::HashSet<&str> = cards.iter().map(Pan::expose).collect();
        assert_eq!(distinct.len(), 1000);
        assert!(
            cards
                .iter()
                .all(|p| p.luhn_ok() && p.expose().starts_with("476173"))
        );
    }
}
