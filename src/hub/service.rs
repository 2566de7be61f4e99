//! Assembling a running hub from its configuration: the store, the PAN keys,
//! the card registry, the business day and a route per institution — and
//! keeping the card snapshot fresh while it runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::account_system::AccountSystem;
use super::limits::BusinessDay;
use super::pipeline::{Hub, Route};
use crate::cards::config::Catalog;
use crate::cards::{CardError, CardRegistry, PanKeys};
use crate::config::Config;
use crate::store::{Store, StoreError};

/// How often the card snapshot checks for changes made by other processes.
pub const CARD_REFRESH: Duration = Duration::from_secs(1);

/// Why the hub cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cards: {0}")]
    Cards(#[from] CardError),
    #[error("{0}")]
    Day(String),
    /// An account system given for an institution the config does not have.
    #[error("account system for unknown institution {0:?}")]
    UnknownInstitution(String),
}

/// Opens the store and the card registry of a configuration and builds the
/// hub. `account_systems` maps institution ids to their account systems;
/// institutions without one decline with 91.
///
/// # Errors
/// A [`HubError`] for the part that cannot start.
pub fn open(
    config: &Config,
    mut account_systems: HashMap<String, Arc<dyn AccountSystem>>,
) -> Result<Hub, HubError> {
    let store = Store::open(&config.store_path)?;
    let keys = PanKeys::from_config(&config.security)?;
    let cards = CardRegistry::open(store.clone(), keys, Catalog::from_config(config))?;
    let day = BusinessDay::from_config(&config.day).map_err(HubError::Day)?;
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
    )?)
}

/// Reloads the card snapshot whenever the registry changed (e.g. by
/// `cardhub cards block` in another process), until shutdown.
pub fn spawn_card_refresh(hub: &Arc<Hub>, shutdown: CancellationToken) {
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
