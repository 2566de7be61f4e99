//! `cardhub serve`: runs the hub behind the switch link of a config file
//! until Ctrl-C or SIGTERM, then shuts down gracefully.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use tracing::info;

use cardhub_core::api;
use cardhub_core::app;
use cardhub_core::config::Config;
use cardhub_core::fleet::Holder;
use cardhub_core::fleet::members::Membership;
use cardhub_core::link::{self, IssuerUnavailable};
use cardhub_core::store::ServeLock;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file.
    #[arg(long, default_value = "cardhub.toml")]
    config: PathBuf,
    /// Run the switch link alone: network management answered, every
    /// financial request declined 91 at once (the link benchmark's floor).
    #[arg(long)]
    link_only: bool,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    // One hub per SQLite store, held until the process ends (the link
    // alone opens no store; hubs share a PostgreSQL store).
    let lock = if args.link_only || config.store_url.is_some() {
        None
    } else {
        Some(ServeLock::acquire(&config.store_path)?)
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        if args.link_only {
            let link =
                link::start(&config.switches, &config.link, Arc::new(IssuerUnavailable)).await?;
            info!("cardhub serving the link only: financial requests are declined 91");
            app::wait_for_stop_signal()
                .await
                .context("waiting for a stop signal")?;
            info!("stop signal received, shutting down");
            link.shutdown().await;
            return Ok(());
        }
        // The instance number is this process's before any id is handed out.
        let store = config.open_store()?;
        let holder = Holder::new(config.fleet.instance);
        let member = Membership::join(store.clone(), holder.clone(), config.fleet.ttl()).await?;
        info!(instance = config.fleet.instance, holder = %holder, "joined the fleet");
        // Institutions without an adapter decline 91.
        let (hub, adapters) = app::open_with_adapters_on(&config, store)?;
        if let Some(lock) = &lock {
            hub.serve_alone(lock);
        }
        let hub = Arc::new(hub);
        let link = link::start(&config.switches, &config.link, hub.clone()).await?;
        let mut membership = member.spawn(link.shutdown_token());
        app::spawn_background(&hub, &config, &holder, link.shutdown_token());
        if let Some(settings) = &config.api {
            api::server::start(
                settings,
                hub.clone(),
                config.institutions.clone().into(),
                &config.prepaid,
                link.stats_source(),
                link.shutdown_token(),
            )
            .await
            .with_context(|| format!("starting the API on {}", settings.listen))?;
        }
        if let Some(adapters) = adapters {
            adapters.spawn_watch(link.shutdown_token());
        }
        info!("cardhub serving");
        // Until a stop signal, or until another process takes this
        // instance's number (the heartbeat then ends with the reason).
        let ended = tokio::select! {
            stop = app::wait_for_stop_signal() => {
                stop.context("waiting for a stop signal")?;
                info!("stop signal received, shutting down");
                None
            }
            ended = &mut membership => Some(ended),
        };
        link.shutdown().await;
        let grace = std::time::Duration::from_millis(config.link.shutdown_grace_ms);
        hub.drain_late_answers(grace).await;
        // The heartbeat leaves the fleet once the link's shutdown cancelled it.
        let ended = match ended {
            Some(ended) => ended,
            None => membership.await,
        };
        ended.context("the fleet heartbeat stopped")??;
        Ok(())
    })
}
