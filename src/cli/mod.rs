//! The command line: one subcommand per area, each in its own file. Errors
//! reach the user as one `error:` line with their causes; the exit code is 1.

use std::process::ExitCode;

use cardhub_lab::{bench, demo};
use clap::{Parser, Subcommand};

mod adapters;
mod cards;
mod iso;
mod prepaid;
mod prepaid_files;
mod prepaid_orders;
mod refsys;
mod serve;
mod sim;
mod standin;
mod status;
mod txn;
mod users;

/// `--config`: the hub's configuration file, for commands that work on its
/// store while the hub may be running.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file of the hub (store, PAN keys, institutions, limits).
    #[arg(long, default_value = "cardhub.toml")]
    config: std::path::PathBuf,
}

impl ConfigArg {
    /// The configuration and its store.
    fn open(&self) -> anyhow::Result<(cardhub_core::config::Config, cardhub_core::store::Store)> {
        use anyhow::Context as _;
        let config = cardhub_core::config::Config::load(&self.config)?;
        let store = config
            .open_store()
            .with_context(|| format!("opening {}", config.store_location()))?;
        Ok((config, store))
    }
}

/// cardhub — authorization hub for card issuers on legacy account systems.
#[derive(Debug, Parser)]
#[command(name = "cardhub", version, about)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole job in one command: the hub, a reference account system and a
    /// scripted story through the switch simulator, on loopback.
    Demo(demo::DemoArgs),
    /// End-to-end benchmark on loopback: the link-only floor, the online
    /// path and the stand-in path, with throughput and latency percentiles.
    Bench(bench::BenchArgs),
    /// Card registry: import card files, show and change cards.
    Cards {
        #[command(subcommand)]
        command: cards::CardsCommand,
    },
    /// Prepaid ledger: orderers, programmes, card accounts, loads, moves,
    /// lost-card replacement, statements, audit.
    Prepaid {
        #[command(subcommand)]
        command: prepaid::PrepaidCommand,
    },
    /// Declarative account-system adapters: check adapter files.
    Adapters {
        #[command(subcommand)]
        command: adapters::AdaptersCommand,
    },
    /// Decode and encode ISO 8583 messages with a dialect.
    Iso {
        #[command(subcommand)]
        command: iso::IsoCommand,
    },
    /// Institution states: list them, signal open / closing / closed.
    Institutions {
        #[command(subcommand)]
        command: standin::InstitutionsCommand,
    },
    /// Store-and-forward queue: list items and dead letters, re-queue, pause, resume.
    Saf {
        #[command(subcommand)]
        command: standin::SafCommand,
    },
    /// Balance files: upload one to the running hub.
    Balances {
        #[command(subcommand)]
        command: standin::BalancesCommand,
    },
    /// One screen of the hub's health: institutions, SAF depth, balance files, last minute's traffic.
    Status(status::StatusArgs),
    /// Back office: the whole story of one transaction.
    Txn {
        #[command(subcommand)]
        command: txn::TxnCommand,
    },
    /// Users of the web application and the API, their API tokens, and the audit log.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Run the hub: serve the switch connections of a config file.
    Serve(serve::ServeArgs),
    /// Run the reference account system (wsdl/account-system.wsdl, or a vendor adapter's interface) for demos and vendors.
    ReferenceAccountSystem(refsys::RefsysArgs),
    /// Switch simulator: send requests to a running hub, or flood it.
    Sim {
        #[command(subcommand)]
        command: sim::SimCommand,
    },
}

/// Runs the command line and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands whose only pipe or socket written to is standard output.
    let prints_only = matches!(
        cli.command,
        Command::Cards { .. }
            | Command::Prepaid { .. }
            | Command::Adapters { .. }
            | Command::Iso { .. }
            | Command::Institutions { .. }
            | Command::Saf { .. }
            | Command::Status(_)
            | Command::Txn { .. }
            | Command::Users { .. }
    );
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Cards { command } => cards::run(command),
        Command::Prepaid { command } => prepaid::run(command),
        Command::Adapters { command } => adapters::run(command),
        Command::Iso { command } => iso::run(command),
        Command::Serve(args) => {
            init_logging(cli.log_json);
            serve::run(args)
        }
        Command::ReferenceAccountSystem(args) => {
            init_logging(cli.log_json);
            refsys::run(args)
        }
        Command::Sim { command } => sim::run(command),
        Command::Institutions { command } => standin::run_institutions(command),
        Command::Saf { command } => standin::run_saf(command),
        Command::Status(args) => status::run(args),
        Command::Txn { command } => txn::run(command),
        Command::Users { command } => users::run(command),
        Command::Balances { command } => standin::run_balances(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`cardhub txn search | head`):
        // end quietly, with the status of a process ended by SIGPIPE.
        Err(e) if prints_only && is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether an error is a write to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
