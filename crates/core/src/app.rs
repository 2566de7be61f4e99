//! Assembling a running hub from its configuration: the store, the PAN keys,
//! the card registry, the business day and a route per institution — and
//! keeping the card snapshot fresh while it runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::access::Access;
use crate::account::AccountSystem;
use crate::adapter::AdapterError;
use crate::adapter::registry::Adapters;
use crate::backoffice::search_index;
use crate::cards::{CardError, CardRegistry, PanKeys};
use crate::config::Config;
use crate::fleet::Holder;
use crate::fleet::lease::Lease;
use crate::hub::limits::{BusinessDay, DayError};
use crate::hub::pipeline::{Hub, Route};
use crate::prepaid::{Ledger, PrepaidLedger};
use crate::standin::balances;
use crate::standin::config::InstitutionMode;
use crate::standin::drop_folder::DropFolder;
use crate::standin::probe;
use crate::standin::replay::Replay;
use crate::store::{Store, StoreError};

/// How often the card snapshot checks for changes made by other processes.
pub const CARD_REFRESH: Duration = Duration::from_secs(1);

/// How often prepaid holds past their expiry are marked expired.
pub const HOLD_SWEEP: Duration = Duration::from_secs(60);

/// How often institution states and current balance files are read back
/// for changes made by other processes (`cardhub institutions set-state`,
/// other instances of the fleet).
pub const STATE_REFRESH: Duration = Duration::from_secs(1);

/// Why the hub cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cards: {0}")]
    Cards(#[from] CardError),
    #[error("{0}")]
    Day(#[from] DayError),
    /// An account system given for an institution the config does not have.
    #[error("account system for unknown institution {0:?}")]
    UnknownInstitution(String),
    /// Adapter files that do not compile (every problem, one per line).
    #[error("adapters: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Adapters(Vec<AdapterError>),
    /// An institution names an adapter that has no file.
    #[error("institution {institution:?}: no adapter {adapter:?} in {dir}")]
    MissingAdapter {
        institution: String,
        adapter: String,
        dir: String,
    },
}

/// Opens the hub with the adapters its institutions name, loaded from
/// `adapters_dir` (the returned set is watched for changes by the caller).
///
/// # Errors
/// As [`open`], plus adapter files that do not compile and adapters that
/// have no file.
pub fn open_with_adapters(config: &Config) -> Result<(Hub, Option<Arc<Adapters>>), HubError> {
    open_with_adapters_on(config, config.open_store()?)
}

/// [`open_with_adapters`] on a store already open (the one `serve` joined
/// the fleet on).
///
/// # Errors
/// As [`open_with_adapters`].
pub fn open_with_adapters_on(
    config: &Config,
    store: Store,
) -> Result<(Hub, Option<Arc<Adapters>>), HubError> {
    let named: Vec<(&str, &str)> = config
        .institutions
        .iter()
        .filter_map(|i| i.adapter.as_deref().map(|a| (i.id.as_str(), a)))
        .collect();
    if named.is_empty() {
        return Ok((open_on(config, store, HashMap::new())?, None));
    }
    let adapters = Arc::new(Adapters::load(&config.adapters_dir).map_err(HubError::Adapters)?);
    let mut systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::new();
    for (institution, adapter) in named {
        let handle = adapters
            .handle(adapter)
            .ok_or_else(|| HubError::MissingAdapter {
                institution: institution.to_string(),
                adapter: adapter.to_string(),
                dir: config.adapters_dir.display().to_string(),
            })?;
        systems.insert(institution.to_string(), Arc::new(handle));
    }
    Ok((open_on(config, store, systems)?, Some(adapters)))
}

/// Opens the store and the card registry of a configuration and builds the
/// hub. `account_systems` maps institution ids to their account systems;
/// an institution in mode `prepaid` not given one is served by the prepaid
/// ledger in the hub's store; other institutions without one decline with
/// 91.
///
/// # Errors
/// A [`HubError`] for the part that cannot start.
pub fn open(
    config: &Config,
    account_systems: HashMap<String, Arc<dyn AccountSystem>>,
) -> Result<Hub, HubError> {
    open_on(config, config.open_store()?, account_systems)
}

/// [`open`] on a store already open.
///
/// # Errors
/// As [`open`].
pub fn open_on(
    config: &Config,
    store: Store,
    mut account_systems: HashMap<String, Arc<dyn AccountSystem>>,
) -> Result<Hub, HubError> {
    let keys = PanKeys::from_config(&config.security)?;
    let cards = CardRegistry::open(store.clone(), keys, config.catalog())?;
    let day = BusinessDay::from_config(&config.day)?;
    for inst in &config.institutions {
        if inst.mode == InstitutionMode::Prepaid && !account_systems.contains_key(&inst.id) {
            let ledger = Ledger::new(store.clone(), &config.prepaid);
            let system = PrepaidLedger::new(ledger, config.holds.clone());
            account_systems.insert(inst.id.clone(), Arc::new(system));
        }
    }
    let routes = config
        .institutions
        .iter()
        .map(|i| Route {
            institution: i.id.clone(),
            account_system: account_systems.remove(&i.id),
        })
        .collect();
    if let Some(id) = account_systems.into_keys().next() {
        return Err(HubError::UnknownInstitution(id));
    }
    Ok(Hub::new(
        store,
        Arc::new(cards),
        config.limits.clone(),
        day,
        routes,
        &config.institutions,
        config.holds.clone(),
        config.fleet.instance,
    )?)
}

/// Starts the hub's background work until shutdown: the card snapshot,
/// institution states and current balance files kept fresh (for changes
/// other processes make: the CLI, other instances of the fleet), the
/// balance-file drop folders, the prepaid ledger's hold expiry, and, per
/// institution with an account system, its SAF replay and health probe —
/// each on the one instance of the fleet that holds its lease (`saf/<id>`,
/// `probe/<id>`), taken as `holder`.
pub fn spawn_background(
    hub: &Arc<Hub>,
    config: &Config,
    holder: &Holder,
    shutdown: CancellationToken,
) {
    spawn_card_refresh(hub, shutdown.clone());
    spawn_stale_call_reversal(hub, shutdown.clone());
    spawn_search_indexing(hub.store().clone(), shutdown.clone());
    if config
        .institutions
        .iter()
        .any(|i| i.mode == InstitutionMode::Prepaid)
    {
        let ledger = Ledger::new(hub.store().clone(), &config.prepaid);
        spawn_hold_expiry(ledger, shutdown.clone());
    }
    let store = hub.store().clone();
    tokio::task::spawn_blocking(move || match balances::discard_abandoned(&store) {
        Ok(0) => {}
        Ok(n) => warn!(
            files = n,
            "discarded balance files left half-read by an earlier run"
        ),
        Err(e) => warn!(error = %e, "half-read balance files not discarded"),
    });
    for inst in &config.institutions {
        if let (Some(folder), Some(format)) = (&inst.drop_folder, &inst.balances) {
            DropFolder {
                institution: inst.id.clone(),
                folder: folder.clone(),
                format: format.clone(),
                store: hub.store().clone(),
                book: hub.book().clone(),
            }
            .spawn(shutdown.clone());
        }
    }
    let institutions = hub.institutions().clone();
    let lease = |job: &str, id: &str| {
        Lease::spawn(
            hub.store().clone(),
            format!("{job}/{id}"),
            holder.clone(),
            config.fleet.ttl(),
            shutdown.clone(),
        )
    };
    for (id, system) in hub.account_systems() {
        let Some(institution) = institutions.get(id) else {
            continue;
        };
        Replay {
            institution: institution.clone(),
            institutions: institutions.clone(),
            system: system.clone(),
            store: hub.store().clone(),
            book: hub.book().clone(),
            lease: lease("saf", id),
        }
        .spawn(shutdown.clone());
        probe::spawn(
            institution.clone(),
            institutions.clone(),
            system.clone(),
            lease("probe", id),
            shutdown.clone(),
        );
    }
    spawn_state_refresh(hub, shutdown);
}

/// Applies institution states and balance files other processes changed,
/// every [`STATE_REFRESH`], until shutdown.
fn spawn_state_refresh(hub: &Arc<Hub>, shutdown: CancellationToken) {
    let (institutions, book, store) = (
        hub.institutions().clone(),
        hub.book().clone(),
        hub.store().clone(),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STATE_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let (institutions, book, store) = (institutions.clone(), book.clone(), store.clone());
            let refreshed = tokio::task::spawn_blocking(move || {
                if let Err(e) = institutions.refresh() {
                    warn!(error = %e, "institution states not refreshed");
                }
                match balances::current_files(&store) {
                    Ok(files) => {
                        book.files_current(&files);
                    }
                    Err(e) => warn!(error = %e, "current balance files not read"),
                }
            })
            .await;
            if let Err(e) = refreshed {
                warn!(error = %e, "state refresh stopped");
            }
        }
    });
}

/// Marks the prepaid ledger's stale holds expired every [`HOLD_SWEEP`]
/// (they stop counting against the available balance at their expiry
/// anyway; the sweep keeps their state honest for statements), until
/// shutdown.
fn spawn_hold_expiry(ledger: Ledger, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOLD_SWEEP);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = jiff::Timestamp::now().as_microsecond();
                    match ledger.expire_holds(now).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(holds = n, "prepaid holds expired"),
                        Err(e) => warn!(error = %e, "prepaid holds not expired"),
                    }
                }
                () = shutdown.cancelled() => break,
            }
        }
    });
}

/// Reverses, every minute, the calls whose decision's row was never
/// written ([`Hub::reverse_stale_calls`]).
fn spawn_stale_call_reversal(hub: &Arc<Hub>, shutdown: CancellationToken) {
    let hub = hub.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STALE_CALL_SWEEP);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = hub.reverse_stale_calls().await {
                        warn!(error = %e, "stale call intents not reversed");
                    }
                }
                _ = shutdown.cancelled() => break,
            }
        }
    });
}

/// How often [`spawn_stale_call_reversal`] looks.
const STALE_CALL_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Moves newly journaled rows into the search tables by card and by
/// account ([`search_index::catch_up`], batch after batch until the list
/// is empty) every [`search_index::EVERY`], until shutdown. Every instance
/// of a fleet does: a run finds what the others left.
fn spawn_search_indexing(store: Store, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(search_index::EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => loop {
                    match store.write(search_index::catch_up).await {
                        Ok(moved) if moved as i64 == search_index::BATCH => {}
                        Ok(_) => break,
                        Err(e) => {
                            warn!(error = %e, "journal rows not moved into the search tables");
                            break;
                        }
                    }
                },
                () = shutdown.cancelled() => break,
            }
        }
    });
}

/// Reloads the card snapshot whenever the registry changed (e.g. by
/// `cardhub cards block` in another process), until shutdown.
fn spawn_card_refresh(hub: &Arc<Hub>, shutdown: CancellationToken) {
    let cards = hub.cards().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CARD_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // A reload reads every card: keep it off the async workers.
                    let cards = cards.clone();
                    match tokio::task::spawn_blocking(move || cards.refresh_if_changed()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => warn!(error = %e, "card registry refresh failed"),
                        Err(e) => warn!(error = %e, "card registry refresh stopped"),
                    }
                }
                _ = shutdown.cancelled() => break,
            }
        }
    });
}

/// The card registry of a configuration without a snapshot, its keys
/// checked against the store (for commands that read or change single cards
/// while a hub may be running).
///
/// # Errors
/// The store cannot be opened, or the configured PAN keys are not the ones
/// the stored cards were written with.
pub fn open_card_registry(config: &Config) -> Result<CardRegistry, HubError> {
    card_registry_on(config, config.open_store()?)
}

/// The prepaid ledger, the card registry (as [`open_card_registry`]) and
/// the audit log of a configuration, on one store: for commands that load,
/// move and replace prepaid cards while a hub may be running.
///
/// # Errors
/// As [`open_card_registry`].
pub fn open_prepaid(config: &Config) -> Result<(Ledger, CardRegistry, Access), HubError> {
    let store = config.open_store()?;
    let ledger = Ledger::new(store.clone(), &config.prepaid);
    let access = Access::new(store.clone(), &config.web);
    Ok((ledger, card_registry_on(config, store)?, access))
}

fn card_registry_on(config: &Config, store: Store) -> Result<CardRegistry, HubError> {
    let keys = PanKeys::from_config(&config.security)?;
    let registry = CardRegistry::new(store, keys, config.catalog());
    registry.check_keys()?;
    Ok(registry)
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn wait_for_stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
