//! The command line: one subcommand per area, each in its own file. Errors
//! reach the user as one `error:` line with their causes; the exit code is 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod iso;

/// cardhub — authorization hub for card issuers on legacy account systems.
#[derive(Debug, Parser)]
#[command(name = "cardhub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and encode ISO 8583 messages with a dialect.
    Iso {
        #[command(subcommand)]
        command: iso::IsoCommand,
    },
}

/// Runs the command line and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Iso { command } => iso::run(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
