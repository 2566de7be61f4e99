//! Leases with fencing: a named job runs on one instance of the fleet at a
//! time.
//!
//! A lease is a row of `fleet_leases`: its holder, until when
//! (`expires_at_us`, the holder's wall clock) and a fence number. One
//! statement takes or renews it — it succeeds when the lease is free,
//! expired, or already this holder's — and the fence grows by one whenever
//! the holder changes. A [`Lease`] keeper renews every third of the TTL and,
//! when a renewal has not succeeded in time (five sixths of the TTL after
//! the last successful one was sent), stops the work it guards at once,
//! before another instance can take the lease over (which needs the whole
//! TTL to pass on that instance's clock). Clocks a second or more apart
//! shorten that margin; the fence keeps the job's writes safe regardless:
//! each checks, in its own transaction, that the lease still has the fence
//! the work started with ([`check_fence`]), and a holder that lost the
//! lease writes nothing.
//!
//! A clean shutdown releases the lease (it expires at once, the holder and
//! fence stay), so another instance takes over within a third of the TTL;
//! after `kill -9` within the TTL plus a third.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Holder, micros};
use crate::store::sql::{self, Connection, Dialect, OptionalExtension, params};
use crate::store::{Store, StoreError};

/// A lease this instance holds, with the fence its writes must check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The lease's fence while this instance holds it.
    pub fence: i64,
}

/// A lease kept by a background task: whether this instance holds it now.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    held: watch::Receiver<Option<Held>>,
}

impl Lease {
    /// Starts the keeper of lease `name` for `holder`: it takes the lease
    /// when free, renews it every `ttl / 3`, gives it up when it cannot
    /// renew in time, and releases it at `shutdown`.
    pub fn spawn(
        store: Store,
        name: String,
        holder: Holder,
        ttl: Duration,
        shutdown: CancellationToken,
    ) -> Lease {
        let (tx, held) = watch::channel(None);
        let keeper = Keeper {
            store,
            name: name.clone(),
            holder,
            ttl,
            held: tx,
        };
        tokio::spawn(keeper.run(shutdown));
        Lease { name, held }
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this instance holds the lease now, and with which fence.
    pub fn held(&self) -> Option<Held> {
        *self.held.borrow()
    }

    /// Runs `work` whenever this instance holds the lease, until shutdown:
    /// the work's future is dropped the moment the lease is lost (or its
    /// fence changes) and started again with the new fence when the lease
    /// comes back. Returns when the work returns by itself, or at
    /// `shutdown`.
    pub async fn run_while_held<F, Fut>(&self, shutdown: &CancellationToken, mut work: F)
    where
        F: FnMut(Held) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut held = self.held.clone();
        loop {
            let granted = tokio::select! {
                granted = held.wait_for(Option::is_some) => match granted {
                    Ok(granted) => *granted,
                    Err(_) => return,
                },
                () = shutdown.cancelled() => return,
            };
            let Some(grant) = granted else { continue };
            let mut watch = self.held.clone();
            tokio::select! {
                () = work(grant) => return,
                _ = watch.wait_for(|now| *now != Some(grant)) => {
                    info!(lease = %self.name, fence = grant.fence, "lease lost: its work stopped");
                }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// The task behind a [`Lease`].
struct Keeper {
    store: Store,
    name: String,
    holder: Holder,
    ttl: Duration,
    held: watch::Sender<Option<Held>>,
}

impl Keeper {
    async fn run(self, shutdown: CancellationToken) {
        let renew_every = self.ttl / 3;
        let margin = self.ttl / 6;
        // The end of the current grant on this process's monotonic clock.
        let mut valid_until: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            if valid_until.is_some_and(|until| sent >= until) {
                valid_until = None;
                self.publish(None);
            }
            let deadline = valid_until.unwrap_or(sent + renew_every);
            let attempt = tokio::select! {
                r = tokio::time::timeout_at(deadline, self.acquire()) => r,
                () = shutdown.cancelled() => break,
            };
            match attempt {
                Ok(Ok(Some(fence))) => {
                    valid_until = Some(sent + self.ttl - margin);
                    self.publish(Some(Held { fence }));
                }
                Ok(Ok(None)) => {
                    valid_until = None;
                    self.publish(None);
                }
                Ok(Err(e)) => warn!(lease = %self.name, error = %e, "lease not renewed"),
                Err(_) => {
                    warn!(lease = %self.name, "lease not renewed in time");
                    valid_until = None;
                    self.publish(None);
                }
            }
            tokio::select! {
                () = tokio::time::sleep_until(sent + renew_every) => {}
                () = shutdown.cancelled() => break,
            }
        }
        let was_held = self.held.send_replace(None).is_some();
        if was_held {
            let (name, holder) = (self.name.clone(), self.holder.to_string());
            let released = tokio::time::timeout(
                renew_every,
                self.store.write(move |c| release(c, &name, &holder)),
            )
            .await;
            if !matches!(released, Ok(Ok(_))) {
                warn!(lease = %self.name, "lease not released; it lapses after its TTL");
            }
        }
    }

    async fn acquire(&self) -> Result<Option<i64>, StoreError> {
        let (name, holder) = (self.name.clone(), self.holder.to_string());
        let (now, ttl) = (Timestamp::now().as_microsecond(), micros(self.ttl));
        self.store
            .write(move |c| acquire(c, &name, &holder, now, ttl))
            .await
    }

    fn publish(&self, to: Option<Held>) {
        let changed = self.held.send_if_modified(|now| {
            let changed = *now != to;
            *now = to;
            changed
        });
        if changed {
            match to {
                Some(Held { fence }) => {
                    info!(lease = %self.name, holder = %self.holder, fence, "lease taken")
                }
                None => info!(lease = %self.name, holder = %self.holder, "lease not held"),
            }
        }
    }
}

/// Takes or renews lease `name` for `holder` until `now_us + ttl_us`, in
/// one statement: succeeds when the lease is new, expired at `now_us`, or
/// `holder`'s already. Returns the fence (1 for a new lease, one more at
/// every change of holder), or `None` when another holder has it.
///
/// # Errors
/// The database's.
pub fn acquire(
    c: &Connection,
    name: &str,
    holder: &str,
    now_us: i64,
    ttl_us: i64,
) -> sql::Result<Option<i64>> {
    c.prepare_cached(
        "INSERT INTO fleet_leases (name, holder, fence, expires_at_us) VALUES (?1, ?2, 1, ?4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
         fence = CASE WHEN fleet_leases.holder = excluded.holder THEN fleet_leases.fence \
         ELSE fleet_leases.fence + 1 END, \
         expires_at_us = excluded.expires_at_us \
         WHERE fleet_leases.holder = excluded.holder OR fleet_leases.expires_at_us <= ?3 \
         RETURNING fence",
    )?
    .query_row(
        params![name, holder, now_us, now_us.saturating_add(ttl_us)],
        |r| r.get(0),
    )
    .optional()
}

/// Lets lease `name` expire now if `holder` has it (holder and fence stay,
/// so the next holder's fence is one more); true when it had it.
///
/// # Errors
/// The database's.
pub fn release(c: &Connection, name: &str, holder: &str) -> sql::Result<bool> {
    c.prepare_cached("UPDATE fleet_leases SET expires_at_us = 0 WHERE name = ?1 AND holder = ?2")?
        .execute(params![name, holder])
        .map(|n| n == 1)
}

/// Lets every lease of `holder` expire now (a dead run's, when its number
/// is taken over).
///
/// # Errors
/// The database's.
pub fn free_all_of(c: &Connection, holder: &str) -> sql::Result<usize> {
    c.prepare_cached("UPDATE fleet_leases SET expires_at_us = 0 WHERE holder = ?1")?
        .execute(params![holder])
}

/// Whether lease `name` still has `fence`, checked inside the caller's
/// write so the check and the writes commit together: false means another
/// holder took the lease since, and the caller must write nothing. On
/// PostgreSQL the check takes a share lock on the lease's row until the
/// caller commits: a takeover (which updates the row) waits for the fenced
/// write instead of overtaking it, while the holder's own writes, which
/// all share the lock, neither wait on each other nor fail to serialise.
/// SQLite's single writer orders them anyway.
///
/// # Errors
/// The database's.
pub fn check_fence(c: &Connection, name: &str, fence: i64) -> sql::Result<bool> {
    let sql = match c.dialect() {
        Dialect::Sqlite => "SELECT 1 FROM fleet_leases WHERE name = ?1 AND fence = ?2",
        Dialect::Postgres => "SELECT 1 FROM fleet_leases WHERE name = ?1 AND fence = ?2 FOR SHARE",
    };
    c.prepare_cached(sql)?.exists(params![name, fence])
}
