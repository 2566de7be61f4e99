//! Institution states: whether cardhub may ask an institution's account
//! system online, or must stand in.
//!
//! States come from three places: status signals from the institution
//! (StatusNotify over SOAP, the JSON API, `cardhub institutions set-state`),
//! the circuit breaker (too many failures in a window → `unreachable`) and
//! the health probe (`unreachable` → `open` once the system answers). Every
//! transition is written to the store with its source and reason, logged and
//! counted; another process's changes (the CLI, other instances of the
//! fleet) are picked up by [`Institutions::refresh`]: every change bumps the
//! institution's stored version, and an instance applies a stored row whose
//! version is above the one it last applied (its own writes included, so a
//! refresh that read an older row never undoes a newer change).

use crate::store::sql;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::sql::{Connection, OptionalExtension, params};
use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::config::{BreakerConfig, SafConfig, StandInConfig};
use crate::account::Operation;
use crate::standin::config::{InstitutionConfig, InstitutionMode, LoadPrefixes};
use crate::store::{Store, StoreError};

/// Where an institution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(rename_all = "kebab-case")]
pub enum InstitutionState {
    /// Online: requests go to its account system.
    Open,
    /// End of day starting: no more online requests.
    Closing,
    /// End of day: closed for online requests.
    Closed,
    /// Detected: its account system does not answer.
    Unreachable,
    /// Configured: never online, decided from balance files alone.
    OfflineOnly,
}

impl InstitutionState {
    pub const ALL: [InstitutionState; 5] = [
        InstitutionState::Open,
        InstitutionState::Closing,
        InstitutionState::Closed,
        InstitutionState::Unreachable,
        InstitutionState::OfflineOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InstitutionState::Open => "open",
            InstitutionState::Closing => "closing",
            InstitutionState::Closed => "closed",
            InstitutionState::Unreachable => "unreachable",
            InstitutionState::OfflineOnly => "offline-only",
        }
    }

    /// Whether requests may go to the account system.
    pub fn is_online(self) -> bool {
        self == InstitutionState::Open
    }
}

impl fmt::Display for InstitutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstitutionState {
    type Err = StateError;

    fn from_str(s: &str) -> Result<Self, StateError> {
        InstitutionState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StateError::UnknownState(s.to_string()))
    }
}

/// Who changed a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Soap,
    Api,
    Cli,
    /// An operator in the web application.
    Web,
    Breaker,
    Probe,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Soap => "soap",
            Source::Api => "api",
            Source::Cli => "cli",
            Source::Web => "web",
            Source::Breaker => "breaker",
            Source::Probe => "probe",
        }
    }

    /// Whether this is an institution's or operator's signal (not detection).
    fn is_signal(self) -> bool {
        matches!(self, Source::Soap | Source::Api | Source::Cli | Source::Web)
    }
}

/// Why a state change is refused.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("unknown institution {0:?}")]
    UnknownInstitution(String),
    #[error("unknown state {0:?} (open, closing, closed)")]
    UnknownState(String),
    /// Signals set open, closing or closed; unreachable is detected, offline-only configured.
    #[error("state {0} cannot be signalled (open, closing, closed)")]
    NotSignallable(InstitutionState),
    #[error("institution {0:?} is configured offline-only: it has no online state")]
    OfflineOnly(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One institution at run time.
pub struct Institution {
    pub id: String,
    pub stand_in: StandInConfig,
    pub breaker_config: BreakerConfig,
    pub saf: SafConfig,
    offline_only: bool,
    /// Served by cardhub's prepaid ledger (`mode = "prepaid"`): never
    /// stood in for.
    pub prepaid: bool,
    /// The card-number prefix loads must carry per channel.
    pub load_prefixes: LoadPrefixes,
    state: watch::Sender<InstitutionState>,
    paused: watch::Sender<bool>,
    breaker: Mutex<Breaker>,
    /// Woken when a SAF item is queued for this institution.
    pub saf_wake: Notify,
    /// State transitions since start.
    transitions: AtomicU64,
    /// The stored version last applied (see [`Institutions::refresh`]).
    version: Mutex<i64>,
}

impl Institution {
    pub fn state(&self) -> InstitutionState {
        *self.state.borrow()
    }

    /// Whether an operator paused its SAF replay.
    pub fn saf_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Watches the state (for the replay and the probe).
    pub fn watch_state(&self) -> watch::Receiver<InstitutionState> {
        self.state.subscribe()
    }

    pub fn watch_paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    /// Transitions since start (for monitoring).
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// Whether the circuit breaker tripped since the institution was last
    /// online (it is then unreachable until a probe or a signal opens it).
    pub fn breaker_tripped(&self) -> bool {
        self.breaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tripped
    }

    /// Applies a stored row (state and pause) unless a newer version was
    /// applied already; true for each part that changed.
    fn apply_stored(&self, row: &Stored) -> (bool, bool) {
        let mut version = self.version.lock().unwrap_or_else(|p| p.into_inner());
        if row.version <= *version {
            return (false, false);
        }
        *version = row.version;
        let state = !self.offline_only && self.apply(row.state);
        let paused = self.paused.send_replace(row.paused) != row.paused;
        (state, paused)
    }

    /// Sets the in-memory state; true when it changed.
    fn apply(&self, to: InstitutionState) -> bool {
        let changed = self.state.send_if_modified(|s| {
            let changed = *s != to;
            *s = to;
            changed
        });
        if changed {
            self.transitions.fetch_add(1, Ordering::Relaxed);
            if to.is_online() {
                self.breaker
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .reset();
            }
        }
        changed
    }
}

/// Consecutive failures within a window, counted per operation (an
/// Advice that succeeds says nothing about Authorize), and whether the
/// breaker already tripped since the institution was last online.
#[derive(Debug, Default)]
struct Breaker {
    by_operation: [FailureCount; Operation::ALL.len()],
    tripped: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct FailureCount {
    failures: u32,
    first: Option<Instant>,
}

impl Breaker {
    /// Counts a failure of `operation`; true exactly once, when the
    /// breaker trips with it.
    fn fail(&mut self, operation: Operation, now: Instant, config: &BreakerConfig) -> bool {
        let window = Duration::from_secs(config.window_secs);
        let count = &mut self.by_operation[operation.index()];
        match count.first {
            Some(first) if now.duration_since(first) <= window => count.failures += 1,
            _ => {
                count.first = Some(now);
                count.failures = 1;
            }
        }
        let trips = !self.tripped && count.failures >= config.failures;
        self.tripped |= trips;
        trips
    }

    /// An answer to `operation`: its failures start again.
    fn succeed(&mut self, operation: Operation) {
        self.by_operation[operation.index()] = FailureCount::default();
    }

    fn reset(&mut self) {
        *self = Breaker::default();
    }
}

/// An institution's stored row.
#[derive(Debug, Clone)]
struct Stored {
    state: InstitutionState,
    paused: bool,
    version: i64,
}

/// What an operator sees of an institution.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstitutionStatus {
    pub id: String,
    pub state: &'static str,
    pub saf_paused: bool,
    pub transitions: u64,
}

/// Every configured institution's run-time state.
pub struct Institutions {
    store: Store,
    by_id: HashMap<String, Arc<Institution>>,
}

impl Institutions {
    /// Institutions of the configuration with their last stored state
    /// (`open` when none was ever stored; `offline-only` from the config).
    ///
    /// # Errors
    /// The store's error.
    pub fn open(store: Store, configs: &[InstitutionConfig]) -> Result<Institutions, StoreError> {
        let stored = store.read(read_stored)?;
        let by_id = configs
            .iter()
            .map(|cfg| {
                let offline_only = cfg.mode == InstitutionMode::OfflineOnly;
                let row = stored.get(&cfg.id);
                let state = match (offline_only, row) {
                    (true, _) => InstitutionState::OfflineOnly,
                    (false, Some(row)) => row.state,
                    (false, None) => InstitutionState::Open,
                };
                let inst = Institution {
                    id: cfg.id.clone(),
                    stand_in: cfg.stand_in.clone(),
                    breaker_config: cfg.breaker.clone(),
                    saf: cfg.saf.clone(),
                    offline_only,
                    prepaid: cfg.mode == InstitutionMode::Prepaid,
                    load_prefixes: cfg.load_prefixes.clone(),
                    state: watch::Sender::new(state),
                    paused: watch::Sender::new(row.is_some_and(|r| r.paused)),
                    breaker: Mutex::default(),
                    saf_wake: Notify::new(),
                    transitions: AtomicU64::new(0),
                    version: Mutex::new(row.map_or(0, |r| r.version)),
                };
                (cfg.id.clone(), Arc::new(inst))
            })
            .collect();
        Ok(Institutions { store, by_id })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Institution>> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Institution>> {
        self.by_id.values()
    }

    /// Every institution's status, by id.
    pub fn statuses(&self) -> Vec<InstitutionStatus> {
        let mut all: Vec<_> = self
            .by_id
            .values()
            .map(|i| InstitutionStatus {
                id: i.id.clone(),
                state: i.state().as_str(),
                saf_paused: i.saf_paused(),
                transitions: i.transitions(),
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    fn institution(&self, id: &str) -> Result<&Arc<Institution>, StateError> {
        self.by_id
            .get(id)
            .ok_or_else(|| StateError::UnknownInstitution(id.to_string()))
    }

    /// Records a state signal or detection; returns the previous state.
    ///
    /// # Errors
    /// [`StateError`] for unknown institutions, offline-only ones, states a
    /// signal cannot set, and the store's error (the state is then unchanged).
    pub async fn set_state(
        &self,
        id: &str,
        to: InstitutionState,
        source: Source,
        reason: &str,
    ) -> Result<InstitutionState, StateError> {
        let inst = self.institution(id)?;
        check_change(inst.offline_only, id, to, source)?;
        let from = inst.state();
        let (id_, reason_) = (id.to_string(), reason.to_string());
        let row = self
            .store
            .write(move |c| write_state(c, &id_, Some(from), to, source, &reason_))
            .await?;
        if inst.apply_stored(&row).0 {
            info!(institution = id, from = %from, to = %to, source = source.as_str(), reason, "institution state changed");
        }
        Ok(from)
    }

    /// Pauses or resumes an institution's SAF replay.
    ///
    /// # Errors
    /// Unknown institution or the store's error.
    pub async fn set_paused(
        &self,
        id: &str,
        paused: bool,
        source: Source,
    ) -> Result<(), StateError> {
        let inst = self.institution(id)?;
        let id_ = id.to_string();
        let row = self
            .store
            .write(move |c| write_paused(c, &id_, paused, source))
            .await?;
        if inst.apply_stored(&row).1 {
            info!(
                institution = id,
                paused,
                source = source.as_str(),
                "SAF replay {}",
                if paused { "paused" } else { "resumed" }
            );
        }
        Ok(())
    }

    /// Counts a failure of `operation`; opens the breaker (→ `unreachable`,
    /// one institution event) when one operation has failed often enough
    /// within the window.
    pub async fn record_failure(&self, id: &str, operation: Operation, reason: &str) {
        let Some(inst) = self.by_id.get(id) else {
            return;
        };
        if inst.state() != InstitutionState::Open {
            return;
        }
        let trips = inst.breaker.lock().unwrap_or_else(|p| p.into_inner()).fail(
            operation,
            Instant::now(),
            &inst.breaker_config,
        );
        if trips {
            let reason = format!(
                "{} consecutive {} failures within {} s, last: {reason}",
                inst.breaker_config.failures,
                operation.as_str(),
                inst.breaker_config.window_secs
            );
            if let Err(e) = self
                .set_state(id, InstitutionState::Unreachable, Source::Breaker, &reason)
                .await
            {
                warn!(institution = id, error = %e, "breaker could not record unreachable");
            }
        }
    }

    /// An answer to `operation`: its failure count starts again.
    pub fn record_success(&self, id: &str, operation: Operation) {
        if let Some(inst) = self.by_id.get(id) {
            inst.breaker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .succeed(operation);
        }
    }

    /// Applies state and pause changes other processes wrote to the store
    /// (the CLI, other instances of the fleet): every stored row whose
    /// version is above the one last applied. Returns how many institutions
    /// changed.
    ///
    /// # Errors
    /// The store's error.
    pub fn refresh(&self) -> Result<usize, StoreError> {
        let stored = self.store.read(read_stored)?;
        let mut changed = 0;
        for (id, row) in stored {
            let Some(inst) = self.by_id.get(&id) else {
                continue;
            };
            let (state, paused) = inst.apply_stored(&row);
            if state || paused {
                info!(
                    institution = %id,
                    state = %inst.state(),
                    saf_paused = inst.saf_paused(),
                    version = row.version,
                    "institution change from the store applied"
                );
                changed += 1;
            }
        }
        Ok(changed)
    }
}

/// Every stored institution row, by institution (an unknown state name,
/// from a newer binary, reads as `open`).
fn read_stored(c: &Connection) -> sql::Result<HashMap<String, Stored>> {
    c.prepare_cached("SELECT institution, state, saf_paused, version FROM institution_state")?
        .query_map(params![], |r| {
            Ok((
                r.get::<String>(0)?,
                stored_row(r.get(1)?, r.get(2)?, r.get(3)?),
            ))
        })?
        .collect()
}

fn stored_row(state: String, paused: i64, version: i64) -> Stored {
    Stored {
        state: state.parse().unwrap_or(InstitutionState::Open),
        paused: paused != 0,
        version,
    }
}

const PAUSED: &str = "saf_paused";
const RESUMED: &str = "saf_resumed";

/// Whether `source` may move an institution to `to`.
fn check_change(
    offline_only: bool,
    id: &str,
    to: InstitutionState,
    source: Source,
) -> Result<(), StateError> {
    if offline_only {
        return Err(StateError::OfflineOnly(id.to_string()));
    }
    let signallable = matches!(
        to,
        InstitutionState::Open | InstitutionState::Closing | InstitutionState::Closed
    );
    if source.is_signal() && !signallable {
        return Err(StateError::NotSignallable(to));
    }
    Ok(())
}

/// Writes a state and its event (for the hub and for the CLI's own store);
/// returns the stored row with its new version.
fn write_state(
    c: &Connection,
    id: &str,
    from: Option<InstitutionState>,
    to: InstitutionState,
    source: Source,
    reason: &str,
) -> sql::Result<Stored> {
    let now = Timestamp::now().as_microsecond();
    let row = c
        .prepare_cached(
            "INSERT INTO institution_state (institution, state, reason, changed_us, version) \
             VALUES (?1, ?2, ?3, ?4, 1) \
             ON CONFLICT (institution) DO UPDATE SET state = ?2, reason = ?3, changed_us = ?4, \
             version = institution_state.version + 1 \
             RETURNING state, saf_paused, version",
        )?
        .query_row(params![id, to.as_str(), reason, now], |r| {
            Ok(stored_row(r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    insert_event(
        c,
        id,
        to.as_str(),
        from.map(InstitutionState::as_str),
        source,
        reason,
        now,
    )?;
    Ok(row)
}

/// Writes a pause or resume and its event; returns the stored row with its
/// new version.
fn write_paused(c: &Connection, id: &str, paused: bool, source: Source) -> sql::Result<Stored> {
    let now = Timestamp::now().as_microsecond();
    let row = c
        .prepare_cached(
            "INSERT INTO institution_state (institution, state, reason, changed_us, saf_paused, version) \
             VALUES (?1, 'open', '', ?2, ?3, 1) ON CONFLICT (institution) DO UPDATE SET saf_paused = ?3, \
             version = institution_state.version + 1 \
             RETURNING state, saf_paused, version",
        )?
        .query_row(params![id, now, i64::from(paused)], |r| {
            Ok(stored_row(r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let event = if paused { PAUSED } else { RESUMED };
    insert_event(c, id, event, None, source, "", now)?;
    Ok(row)
}

fn insert_event(
    c: &Connection,
    id: &str,
    event: &str,
    previous: Option<&str>,
    source: Source,
    reason: &str,
    at_us: i64,
) -> sql::Result<()> {
    c.prepare_cached(
        "INSERT INTO institution_events (institution, event, previous, source, reason, at_us) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![id, event, previous, source.as_str(), reason, at_us])
    .map(|_| ())
}

/// Sets a state from another process (the CLI), for the running hub to pick up.
///
/// # Errors
/// As [`Institutions::set_state`].
pub fn set_state_in_store(
    store: &Store,
    config: &InstitutionConfig,
    to: InstitutionState,
    source: Source,
    reason: &str,
) -> Result<(), StateError> {
    check_change(
        config.mode == InstitutionMode::OfflineOnly,
        &config.id,
        to,
        source,
    )?;
    let (id, reason) = (config.id.clone(), reason.to_string());
    store.write_blocking(move |c| {
        let from: Option<String> = c
            .query_row(
                "SELECT state FROM institution_state WHERE institution = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        let from = from.and_then(|s| s.parse().ok());
        write_state(c, &id, from, to, source, &reason).map(drop)
    })?;
    Ok(())
}

/// Pauses or resumes replay from another process (the CLI).
///
/// # Errors
/// The store's error.
pub fn set_paused_in_store(
    store: &Store,
    id: &str,
    paused: bool,
    source: Source,
) -> Result<(), StoreError> {
    let id = id.to_string();
    store.write_blocking(move |c| write_paused(c, &id, paused, source).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_on_enough_failures_within_the_window_only() {
        let config = BreakerConfig {
            failures: 3,
            window_secs: 10,
            ..BreakerConfig::default()
        };
        let auth = Operation::Authorize;
        let mut b = Breaker::default();
        let t0 = Instant::now();
        assert!(!b.fail(auth, t0, &config));
        assert!(!b.fail(auth, t0 + Duration::from_secs(1), &config));
        // Outside the window: counting starts again.
        assert!(!b.fail(auth, t0 + Duration::from_secs(20), &config));
        assert!(!b.fail(auth, t0 + Duration::from_secs(21), &config));
        assert!(b.fail(auth, t0 + Duration::from_secs(22), &config));
        b.reset();
        assert!(!b.fail(auth, t0 + Duration::from_secs(23), &config));
    }

    /// Advices that succeed (SAF replay) do not hide Authorize failing;
    /// and concurrent failures past the threshold trip the breaker once.
    #[test]
    fn failures_count_per_operation_and_trip_once() {
        let config = BreakerConfig {
            failures: 3,
            window_secs: 10,
            ..BreakerConfig::default()
        };
        for (i, op) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        let mut b = Breaker::default();
        let t0 = Instant::now();
        assert!(!b.fail(Operation::Authorize, t0, &config));
        b.succeed(Operation::Advice);
        assert!(!b.fail(Operation::Authorize, t0, &config));
        b.succeed(Operation::Advice);
        assert!(
            b.fail(Operation::Authorize, t0, &config),
            "third Authorize failure"
        );
        assert!(
            !b.fail(Operation::Authorize, t0, &config),
            "tripped already"
        );
        assert!(!b.fail(Operation::Load, t0, &config));
        b.reset();
        b.fail(Operation::Authorize, t0, &config);
        b.succeed(Operation::Authorize);
        assert!(!b.fail(Operation::Authorize, t0, &config));
        assert!(!b.fail(Operation::Authorize, t0, &config));
    }

    #[test]
    fn signals_cannot_set_detected_or_configured_states() {
        assert!(check_change(false, "B", InstitutionState::Closing, Source::Soap).is_ok());
        assert!(matches!(
            check_change(false, "B", InstitutionState::Unreachable, Source::Api),
            Err(StateError::NotSignallable(_))
        ));
        assert!(check_change(false, "B", InstitutionState::Unreachable, Source::Breaker).is_ok());
        assert!(matches!(
            check_change(true, "B", InstitutionState::Open, Source::Cli),
            Err(StateError::OfflineOnly(_))
        ));
        assert_eq!(
            "closing".parse::<InstitutionState>().unwrap(),
            InstitutionState::Closing
        );
        assert!("shut".parse::<InstitutionState>().is_err());
    }
}
