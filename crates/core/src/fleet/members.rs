//! The fleet's members: one row per instance number in use, with a
//! heartbeat. A process joins under its number when no row has it or the
//! row's heartbeat is a TTL old (its process is dead); otherwise it waits
//! one TTL to see whether that heartbeat moves, and is refused if it does.
//!
//! Taking over a dead run's number also frees the leases that run held, so
//! an instance restarted after `kill -9` resumes its jobs at once instead of
//! after their TTL. A member that finds its row taken by another process
//! (it stalled for longer than the TTL) stops: two live runs with one
//! number could hand out the same transaction ids.

use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{FleetError, Holder, lease, micros};
use crate::store::Store;
use crate::store::sql::{self, Connection, OptionalExtension, params};

/// A joined instance: renews its heartbeat until shutdown, then leaves.
#[derive(Clone)]
pub struct Membership {
    store: Store,
    holder: Holder,
    ttl: Duration,
}

/// The row of an instance number held by a live-looking run.
#[derive(Debug, Clone)]
struct Member {
    holder: String,
    host: String,
    pid: i64,
    heartbeat_us: i64,
}

/// Why a member stopped before shutdown.
#[derive(Debug, thiserror::Error)]
#[error(
    "instance number {instance} was taken over by {by} while this process ({holder}) did not renew it in time; this process stops"
)]
pub struct MembershipLost {
    pub instance: u8,
    pub holder: String,
    /// The row's holder now (`nobody` when the row is gone).
    pub by: String,
}

impl Membership {
    /// Joins the fleet on `store` as `holder`'s instance number; when a
    /// live-looking run holds the number, waits until its heartbeat is a
    /// full `ttl` old and tries once more.
    ///
    /// # Errors
    /// [`FleetError::InstanceInUse`] when that run's heartbeat moved (it is
    /// alive); [`FleetError::Store`] when the store fails.
    pub async fn join(
        store: Store,
        holder: Holder,
        ttl: Duration,
    ) -> Result<Membership, FleetError> {
        let member = Membership { store, holder, ttl };
        let held = match member.try_join().await? {
            None => return Ok(member),
            Some(held) => held,
        };
        let age = Timestamp::now().as_microsecond() - held.heartbeat_us;
        let wait = Duration::from_micros((micros(ttl) - age).max(0) as u64) + ttl / 10;
        info!(
            instance = member.holder.instance(),
            holder = held.holder,
            wait_ms = wait.as_millis() as u64,
            "instance number held by a run with a recent heartbeat; waiting to see whether it is alive"
        );
        tokio::time::sleep(wait).await;
        match member.try_join().await? {
            None => Ok(member),
            Some(held) => Err(FleetError::InstanceInUse {
                instance: member.holder.instance(),
                holder: held.holder,
                host: held.host,
                pid: held.pid,
                age_ms: (Timestamp::now().as_microsecond() - held.heartbeat_us) / 1_000,
            }),
        }
    }

    /// This run.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// One registration attempt: `None` when joined, else the live-looking
    /// row in the way.
    async fn try_join(&self) -> Result<Option<Member>, FleetError> {
        let (holder, ttl) = (self.holder.clone(), self.ttl);
        let now = Timestamp::now().as_microsecond();
        let outcome = self
            .store
            .write(move |c| register(c, &holder, now, micros(ttl)))
            .await?;
        match outcome {
            Ok(Some(previous)) => {
                warn!(
                    instance = self.holder.instance(),
                    previous = previous.holder,
                    "instance number taken over from a run that stopped without leaving; its leases are freed"
                );
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(held) => Ok(Some(held)),
        }
    }

    /// Renews the heartbeat every third of the TTL until `shutdown`, then
    /// leaves (deletes its row). Ends early, with the reason, when another
    /// process took the number.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<Result<(), MembershipLost>> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.ttl / 3);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                match self.heartbeat().await {
                    Ok(None) => {}
                    Ok(Some(by)) => {
                        let lost = MembershipLost {
                            instance: self.holder.instance(),
                            holder: self.holder.to_string(),
                            by,
                        };
                        error!(error = %lost, "fleet membership lost");
                        return Err(lost);
                    }
                    Err(e) => warn!(error = %e, "fleet heartbeat not written"),
                }
            }
            let holder = self.holder.clone();
            let left = self
                .store
                .write(move |c| {
                    c.prepare_cached(
                        "DELETE FROM fleet_members WHERE instance = ?1 AND holder = ?2",
                    )?
                    .execute(params![i64::from(holder.instance()), holder.as_str()])
                })
                .await;
            if let Err(e) = left {
                warn!(error = %e, "fleet membership not left; it lapses after its TTL");
            }
            Ok(())
        })
    }

    /// Writes the heartbeat; `Some(holder now)` when the row is no longer
    /// this run's.
    async fn heartbeat(&self) -> Result<Option<String>, crate::store::StoreError> {
        let holder = self.holder.clone();
        let now = Timestamp::now().as_microsecond();
        self.store
            .write(move |c| {
                let instance = i64::from(holder.instance());
                let renewed = c
                    .prepare_cached(
                        "UPDATE fleet_members SET heartbeat_us = ?3 WHERE instance = ?1 AND holder = ?2",
                    )?
                    .execute(params![instance, holder.as_str(), now])?;
                if renewed == 1 {
                    return Ok(None);
                }
                let by: Option<String> = c
                    .query_row(
                        "SELECT holder FROM fleet_members WHERE instance = ?1",
                        params![instance],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(Some(by.unwrap_or_else(|| "nobody".to_string())))
            })
            .await
    }
}

/// Takes `holder`'s number unless a run whose heartbeat is younger than
/// `ttl_us` holds it: `Ok(Some(previous))` when a dead run's row was taken
/// over (its leases are then freed), `Ok(None)` when the number was free,
/// `Err(row)` when it is held.
fn register(
    c: &Connection,
    holder: &Holder,
    now_us: i64,
    ttl_us: i64,
) -> sql::Result<Result<Option<Member>, Member>> {
    let instance = i64::from(holder.instance());
    let row = |c: &Connection| {
        c.query_row(
            "SELECT holder, host, pid, heartbeat_us FROM fleet_members WHERE instance = ?1",
            params![instance],
            |r| {
                Ok(Member {
                    holder: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    heartbeat_us: r.get(3)?,
                })
            },
        )
    };
    let before = row(c).optional()?;
    let joined = c
        .prepare_cached(
            "INSERT INTO fleet_members (instance, holder, host, pid, started_us, heartbeat_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
             ON CONFLICT (instance) DO UPDATE SET holder = excluded.holder, host = excluded.host, \
             pid = excluded.pid, started_us = excluded.started_us, heartbeat_us = excluded.heartbeat_us \
             WHERE fleet_members.heartbeat_us <= ?6 \
             RETURNING instance",
        )?
        .query_row(
            params![
                instance,
                holder.as_str(),
                holder.host(),
                i64::from(std::process::id()),
                now_us,
                now_us - ttl_us
            ],
            |r| r.get::<i64>(0),
        )
        .optional()?;
    match (joined, before) {
        (Some(_), Some(previous)) => {
            lease::free_all_of(c, &previous.holder)?;
            Ok(Ok(Some(previous)))
        }
        (Some(_), None) => Ok(Ok(None)),
        // Refused: the row in the way now (another run may have joined
        // since `before` was read).
        (None, _) => Ok(Err(row(c)?)),
    }
}
