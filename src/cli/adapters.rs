//! `cardhub adapters check [FILE…]`: compiles adapter files as the engine
//! would, checks SOAP actions against the WSDL a file names, and prints
//! every problem with the file and key it concerns.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;

use cardhub_core::adapter::Adapter;

/// Folder of adapter files (dialects live in its `switch/` subfolder).
const ADAPTERS_DIR: &str = "adapters";

#[derive(Debug, Subcommand)]
pub enum AdaptersCommand {
    /// Check adapter files (default: every `adapters/*.toml`).
    Check {
        /// Files to check.
        files: Vec<PathBuf>,
    },
}

pub fn run(command: AdaptersCommand) -> Result<()> {
    match command {
        AdaptersCommand::Check { files } => check(files),
    }
}

fn check(files: Vec<PathBuf>) -> Result<()> {
    let files = if files.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(ADAPTERS_DIR)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        found.sort();
        found
    } else {
        files
    };
    // Building HTTP clients needs a runtime context.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _guard = runtime.enter();
    let mut failed = 0;
    for path in &files {
        match Adapter::check(path) {
            Ok(adapter) => writeln!(
                std::io::stdout(),
                "ok     {} ({})",
                path.display(),
                adapter.name()
            )?,
            Err(e) => {
                failed += 1;
                writeln!(std::io::stdout(), "FAILED {}", path.display())?;
                for problem in e.problems() {
                    writeln!(std::io::stdout(), "       {problem}")?;
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} adapter files have problems", files.len());
    }
    Ok(())
}
