//! `cardhub sim send | flood`: the switch simulator from the command line.
//! Answers are printed with card data masked.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Subcommand};

use super::iso::{DialectArgs, print_fields};
use cardhub_core::iso8583::{Dialect, Mti, de};
use cardhub_core::link::frame::Framing;
use cardhub_lab::sim::send::BuildOptions;
use cardhub_lab::sim::{
    self, Exchange, FloodOptions, MessageSpec, Pace, SendOptions, load_cards, template,
};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Sign on, send one request (a fixture, or built from options), print the masked answer.
    Send(Box<SendArgs>),
    /// Sign on and send many requests from a template; report codes and latency.
    Flood(Box<FloodArgs>),
}

/// How to reach the hub; shared by `send` and `flood`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The hub's switch listener, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    to: String,
    #[command(flatten)]
    dialect: DialectArgs,
    /// Length header in front of each message.
    #[arg(long, default_value = "two-byte", value_parser = framing_parser())]
    framing: Framing,
    /// Header of the sign-on and of built requests (BASE24 default: ISO006000070).
    #[arg(long)]
    header: Option<String>,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["file", "mti"])))]
pub struct SendArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Request to send as it is: .hex, or a .json / .toml field list.
    #[arg(long, value_name = "FIXTURE")]
    file: Option<PathBuf>,
    /// Build a request of this type (with --pan and --amount).
    #[arg(long, requires_all = ["pan", "amount"])]
    mti: Option<Mti>,
    /// Card number (DE 2).
    #[arg(long, requires = "mti")]
    pan: Option<String>,
    /// Amount in minor units (DE 4).
    #[arg(long, requires = "mti")]
    amount: Option<u64>,
    /// Processing code (DE 3).
    #[arg(long, default_value = "000000", requires = "mti")]
    processing_code: String,
    /// Card expiry YYMM (DE 14).
    #[arg(long, requires = "mti")]
    expiry: Option<String>,
    /// Terminal id (DE 41; default CARDHUB-SIM, padded to the field's length).
    #[arg(long, requires = "mti")]
    terminal: Option<String>,
    /// Merchant id (DE 42).
    #[arg(long, requires = "mti")]
    merchant: Option<String>,
    /// Numeric currency code (DE 49).
    #[arg(long, default_value = "978", requires = "mti")]
    currency: String,
    /// Set or replace a field, N=VALUE (binary fields as hex); repeatable.
    #[arg(long = "field", value_name = "N=VALUE", value_parser = parse_field)]
    fields: Vec<(u16, String)>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("pace").required(true).args(["rate", "concurrency"])))]
pub struct FloodArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Requests started per second in total, answered or not.
    #[arg(long)]
    rate: Option<f64>,
    /// Requests in flight in total; each sends the next when answered.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Requests to send.
    #[arg(long)]
    count: u64,
    /// Request every request is made from: .hex, or a .json / .toml field list.
    #[arg(long, value_name = "FIXTURE")]
    template: PathBuf,
    /// Card numbers used round-robin in DE 2 and DE 35, one per line.
    #[arg(long)]
    cards: Option<PathBuf>,
    /// Connections to open, each signed on.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(command: SimCommand) -> Result<()> {
    // One thread: the simulator shares the machine with the hub it measures,
    // and a single thread avoids cross-thread wake-ups on every answer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    match command {
        SimCommand::Send(args) => runtime.block_on(send(*args)),
        SimCommand::Flood(args) => runtime.block_on(flood(*args)),
    }
}

async fn send(args: SendArgs) -> Result<()> {
    let dialect = Arc::new(args.connect.dialect.load()?);
    let message = match (args.file, args.mti, args.pan, args.amount) {
        (Some(path), ..) => MessageSpec::File(path),
        (None, Some(mti), Some(pan), Some(amount)) => MessageSpec::Build(BuildOptions {
            mti,
            pan,
            amount,
            processing_code: args.processing_code,
            expiry: args.expiry,
            terminal: args.terminal,
            merchant: args.merchant,
            currency: args.currency,
        }),
        _ => bail!("give --file, or --mti with --pan and --amount"),
    };
    let to = args.connect.to.clone();
    let exchange = sim::send(SendOptions {
        address: args.connect.to,
        dialect: dialect.clone(),
        framing: args.connect.framing,
        header: args.connect.header,
        message,
        fields: args.fields,
        timeout: Duration::from_millis(args.connect.timeout_ms),
    })
    .await?;
    print_exchange(&exchange, &dialect, &to)
}

fn print_exchange(exchange: &Exchange, dialect: &Dialect, to: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let request = &exchange.request;
    let text = |field| {
        request
            .get(field)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    writeln!(
        out,
        "sent     {} to {to}, STAN {}, RRN {}",
        request.mti(),
        text(de::STAN),
        text(de::RRN)
    )?;
    writeln!(
        out,
        "answer   in {:.3} ms",
        exchange.round_trip.as_secs_f64() * 1000.0
    )?;
    print_fields(&mut out, &exchange.answer, dialect)?;
    let code = exchange
        .answer
        .get(de::RESPONSE_CODE)
        .map_or_else(|| "none".into(), String::from_utf8_lossy);
    writeln!(out, "response {code}")?;
    Ok(())
}

async fn flood(args: FloodArgs) -> Result<()> {
    let dialect = Arc::new(args.connect.dialect.load()?);
    let template = template::load(&args.template, &dialect)?;
    let cards = match &args.cards {
        Some(path) => load_cards(path)?,
        None => Vec::new(),
    };
    let pace = match (args.rate, args.concurrency) {
        (Some(rate), _) => Pace::Rate(rate),
        (None, Some(concurrency)) => Pace::Concurrency(concurrency),
        (None, None) => bail!("give --rate or --concurrency"),
    };
    let report = sim::flood(FloodOptions {
        addresses: vec![args.connect.to],
        dialect,
        framing: args.connect.framing,
        header: args.connect.header,
        template,
        cards,
        pace,
        count: args.count,
        connections: args.connections,
        timeout: Duration::from_millis(args.connect.timeout_ms),
        progress: !args.quiet && std::io::stderr().is_terminal(),
    })
    .await?;
    println!("{report}");
    if report.answered == 0 {
        bail!("no request was answered");
    }
    Ok(())
}

fn framing_parser() -> impl TypedValueParser<Value = Framing> {
    PossibleValuesParser::new(["two-byte", "two-byte-etx", "four-ascii"]).map(|name| {
        match name.as_str() {
            "two-byte-etx" => Framing::TwoByteEtx,
            "four-ascii" => Framing::FourAscii,
            _ => Framing::TwoByte,
        }
    })
}

/// A `--field` argument that is not `N=VALUE`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum FieldArgError {
    #[error("{0:?} is not N=VALUE")]
    NoEquals(String),
    #[error("{0:?} is not a field number (2 to 192)")]
    Number(String),
}

/// `N=VALUE`, N a field number.
fn parse_field(arg: &str) -> Result<(u16, String), FieldArgError> {
    let (number, value) = arg
        .split_once('=')
        .ok_or_else(|| FieldArgError::NoEquals(arg.to_owned()))?;
    let number = number
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|n| (2..=192).contains(n))
        .ok_or_else(|| FieldArgError::Number(number.to_owned()))?;
    Ok((number, value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arguments() {
        assert_eq!(parse_field("41=TERM 1"), Ok((41, "TERM 1".to_string())));
        assert_eq!(parse_field("48="), Ok((48, String::new())));
        assert_eq!(
            parse_field("41"),
            Err(FieldArgError::NoEquals("41".to_string()))
        );
        assert_eq!(
            parse_field("x=1"),
            Err(FieldArgError::Number("x".to_string()))
        );
        assert_eq!(
            parse_field("1=1"),
            Err(FieldArgError::Number("1".to_string()))
        );
    }
}
