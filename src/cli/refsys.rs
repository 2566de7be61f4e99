//! `cardhub reference-account-system`: run the reference account system
//! (`src/refsys`) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::refsys::{self, Mode, RefSys, accounts, ledger::Ledger};

#[derive(Debug, Args)]
pub struct RefsysArgs {
    /// Address to serve on; SOAP at /account-system, switches at /admin/mode.
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Opening balances: CSV `account,available,currency`.
    #[arg(long, value_name = "FILE")]
    accounts: PathBuf,
    /// SQLite file keeping balances and answers across restarts (default: in memory).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Mode at start (settable later: POST /admin/mode).
    #[arg(long, value_enum, default_value = "open")]
    mode: Mode,
    /// Delay of every answer in slow mode, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    delay_ms: u64,
}

/// Loads the accounts, opens the ledger, serves until Ctrl-C.
///
/// # Errors
///
/// A bad accounts file, a ledger that cannot be opened, an address that
/// cannot be bound.
pub fn run(args: RefsysArgs) -> Result<()> {
    let openings = accounts::read(&args.accounts)?;
    let mut ledger = Ledger::open(args.store.as_deref())?;
    let added = ledger.open_accounts(&openings)?;
    let state = RefSys::new(ledger, args.mode, args.delay_ms);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            accounts = openings.len(),
            added,
            mode = ?args.mode,
            "reference account system serving at {}",
            refsys::SOAP_PATH
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        refsys::serve(listener, state, shutdown).await?;
        Ok(())
    })
}
