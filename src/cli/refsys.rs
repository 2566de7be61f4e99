//! `cardhub reference-account-system`: run the reference account system
//! (`src/refsys`) in one vendor's interface until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use cardhub_lab::refsys::corebank::Credentials;
use cardhub_lab::refsys::vendors::{self, DEMO_PASSWORD, Vendor};
use cardhub_lab::refsys::{self, Mode, RefSys, accounts, ledger::Ledger};

#[derive(Debug, Args)]
pub struct RefsysArgs {
    /// Interface to speak: the canonical WSDL or the demo server of a vendor adapter.
    #[arg(long, value_enum, default_value = "canonical")]
    vendor: Vendor,
    /// Address to serve on (default: canonical 127.0.0.1:8090, legacy-soap12
    /// :8081, homebank-xml :8082, mainframe-fixed :7001, as their adapter files).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
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
    /// legacy-soap12 (UsernameToken) and homebank-xml (HTTP basic): the user
    /// (default: the adapter file's, CARDHUB01 or cardhub).
    #[arg(long)]
    username: Option<String>,
    /// legacy-soap12 and homebank-xml: the password (default: the adapter
    /// files' public demo password).
    #[arg(long)]
    password: Option<String>,
    /// mainframe-fixed: where to serve /admin/mode and /admin/stats (the HTTP
    /// interfaces serve them on --listen).
    #[arg(long, value_name = "HOST:PORT")]
    admin: Option<SocketAddr>,
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
    let listen = args.listen.unwrap_or(args.vendor.default_listen());
    let credentials = Credentials {
        username: args
            .username
            .unwrap_or_else(|| args.vendor.default_username().to_owned()),
        password: args.password.unwrap_or_else(|| DEMO_PASSWORD.to_owned()),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        if let Some(admin) = args.admin {
            let admin_listener = tokio::net::TcpListener::bind(admin)
                .await
                .with_context(|| format!("binding {admin}"))?;
            let routes = refsys::admin_router(state.clone());
            tokio::spawn(refsys::serve_router(
                admin_listener,
                routes,
                shutdown.clone(),
            ));
        }
        tracing::info!(
            vendor = ?args.vendor,
            listen = %listener.local_addr()?,
            accounts = openings.len(),
            added,
            mode = ?args.mode,
            "reference account system serving"
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        vendors::serve(args.vendor, listener, state, credentials, shutdown).await?;
        Ok(())
    })
}
