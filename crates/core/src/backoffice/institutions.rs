//! Institutions as operators see them: state, SAF depth and the current
//! balance file of each ([`snapshots`], for the JSON API, `/metrics` and
//! the web application), and the latest recorded events ([`events`]).

use crate::store::sql::params;
use serde::Serialize;

use crate::hub::pipeline::Hub;
use crate::metrics::InstitutionSnapshot;
use crate::standin::balances::current_files;
use crate::standin::saf;
use crate::store::{Store, StoreError};

/// Every institution now: state, SAF depth, current balance file. Reads
/// the store: call it off the async runtime.
///
/// # Errors
/// The store's error.
pub fn snapshots(hub: &Hub) -> Result<Vec<InstitutionSnapshot>, StoreError> {
    let store = hub.store();
    let depths = saf::depths(store)?;
    let files = current_files(store)?;
    let now = jiff::Timestamp::now().as_microsecond();
    Ok(hub
        .institutions()
        .statuses()
        .into_iter()
        .map(|s| {
            let depth = depths.iter().find(|d| d.0 == s.id);
            let file = files.iter().find(|f| f.institution == s.id);
            InstitutionSnapshot {
                saf_pending: depth.map_or(0, |d| d.1),
                saf_dead: depth.map_or(0, |d| d.2),
                balances_as_of: file
                    .and_then(|f| jiff::Timestamp::from_microsecond(f.as_of_us).ok())
                    .map(|t| t.to_string()),
                balances_rows: file.map(|f| f.rows),
                balance_age_secs: file.map(|f| (now - f.as_of_us) / 1_000_000),
                state: s.state,
                saf_paused: s.saf_paused,
                transitions: s.transitions,
                id: s.id,
            }
        })
        .collect())
}

/// A recorded state change or SAF pause of an institution.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub institution: String,
    /// The new state, or `saf_paused` / `saf_resumed`.
    pub event: String,
    pub previous: Option<String>,
    /// `soap`, `api`, `cli`, `web`, `breaker`, `probe` or `config`.
    pub source: String,
    pub reason: String,
    pub at_us: i64,
}

/// The latest `limit` events of every institution, newest first.
///
/// # Errors
/// The store's error.
pub fn events(store: &Store, limit: u32) -> Result<Vec<Event>, StoreError> {
    store.read(move |c| {
        c.prepare_cached(
            "SELECT institution, event, previous, source, reason, at_us FROM institution_events \
             ORDER BY id DESC LIMIT ?1",
        )?
        .query_map(params![limit], |r| {
            Ok(Event {
                institution: r.get(0)?,
                event: r.get(1)?,
                previous: r.get(2)?,
                source: r.get(3)?,
                reason: r.get(4)?,
                at_us: r.get(5)?,
            })
        })?
        .collect()
    })
}
