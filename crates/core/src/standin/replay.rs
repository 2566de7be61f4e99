//! SAF replay: one task per institution delivers its queue while the
//! institution is `open` and not paused, a batch of due items at a time
//! (each the first undelivered item of its account, so accounts never
//! overtake themselves), retrying failures with jittered exponential
//! backoff until they become dead letters.
//!
//! Across a fleet the replay of an institution runs on the one instance
//! that holds its lease (`saf/<institution>`), and every write it makes
//! (an item delivered, failed, dead) checks the lease's fence in the same
//! transaction: a replay that lost its lease writes nothing more.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::saf::{self, Item};
use super::shadow::{self, ShadowBook};
use super::state::{Institution, Institutions};
use crate::account::{AccountAnswer, AccountError, AccountSystem, Operation};
use crate::fleet::lease::{self, Lease};
use crate::journal::txn_id::TxnId;
use crate::mask::redact_pans;
use crate::store::Store;

/// How long an idle replay sleeps before looking at the queue again.
const IDLE: Duration = Duration::from_secs(1);

/// An institution's replay.
pub struct Replay {
    pub institution: Arc<Institution>,
    pub institutions: Arc<Institutions>,
    pub system: Arc<dyn AccountSystem>,
    pub store: Store,
    pub book: Arc<ShadowBook>,
    /// The institution's replay lease: the replay runs while it is held.
    pub lease: Lease,
}

/// What one delivery attempt came to; `code` is the answer's (DE 39 and
/// the vendor's own, e.g. `94 (913)`) when the account system answered.
enum Attempt {
    /// Settled by an answer the adapter maps to success.
    Delivered { code: String },
    /// Worth retrying (the system may come back, or answered a transient code).
    Failed { error: String, code: Option<String> },
    /// Can never succeed as it is: straight to the dead letters.
    Permanent { error: String, code: Option<String> },
}

impl Attempt {
    /// What an answer to a delivery of `operation` comes to (see
    /// [`saf::Answered`]): a transient code is retried, any other failure
    /// makes the item a dead letter at once, with the code.
    fn of_answer(operation: Operation, answer: &AccountAnswer) -> Attempt {
        let code = format!("{} ({})", answer.code, answer.raw_code);
        let error = match &answer.message {
            Some(m) => format!("account system answered {code}: {}", redact_pans(m)),
            None => format!("account system answered {code}"),
        };
        match saf::Answered::of(operation, answer.code) {
            saf::Answered::Settled => Attempt::Delivered { code },
            saf::Answered::Transient => Attempt::Failed {
                error,
                code: Some(code),
            },
            saf::Answered::Refused => Attempt::Permanent {
                error,
                code: Some(code),
            },
        }
    }
}

impl Replay {
    /// Runs while the lease is held, until shutdown.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            self.lease
                .run_while_held(&shutdown, |held| self.run(held.fence, shutdown.clone()))
                .await;
        })
    }

    async fn run(&self, fence: i64, shutdown: CancellationToken) {
        let inst = self.institution.clone();
        let mut state = inst.watch_state();
        let mut paused = inst.watch_paused();
        loop {
            while !state.borrow_and_update().is_online() || *paused.borrow_and_update() {
                tokio::select! {
                    _ = state.changed() => {}
                    _ = paused.changed() => {}
                    () = shutdown.cancelled() => return,
                }
            }
            let now = Timestamp::now().as_microsecond();
            let batch = match saf::due(&self.store, &inst.id, now, inst.saf.concurrency) {
                Ok(batch) => batch,
                Err(e) => {
                    warn!(institution = %inst.id, error = %e, "SAF queue not readable");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                let wait = match saf::next_due(&self.store, &inst.id) {
                    Ok(Some(due)) => Duration::from_micros((due - now).max(1) as u64).min(IDLE),
                    _ => IDLE,
                };
                tokio::select! {
                    () = inst.saf_wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    _ = state.changed() => {}
                    _ = paused.changed() => {}
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
            join_all(batch.into_iter().map(|item| self.deliver(item, fence))).await;
        }
    }

    /// One attempt at one item, and its outcome written down if the lease
    /// still has `fence`.
    async fn deliver(&self, item: Item, fence: i64) {
        let inst = &self.institution;
        // Paused or closed since the batch was read: a pause really stops.
        if !inst.state().is_online() || inst.saf_paused() {
            return;
        }
        let attempts = item.attempts + 1;
        let timeout = Duration::from_millis(inst.saf.attempt_timeout_ms);
        let prepared = saf::request_for(&self.store, &item, Instant::now() + timeout);
        let credit = prepared.as_ref().is_ok_and(|(_, credit)| *credit);
        let operation = item.operation();
        let attempt = match prepared {
            Err(error) => Attempt::Permanent {
                error: error.to_string(),
                code: None,
            },
            Ok((request, _)) => {
                let call = self.system.call(operation, &request);
                let answered = tokio::time::timeout(timeout, call)
                    .await
                    .unwrap_or(Err(AccountError::Timeout));
                match answered {
                    Ok(answer) => Attempt::of_answer(operation, &answer),
                    // Up, but busy with concurrent writes: the next round.
                    Err(e @ AccountError::Conflict(_)) => Attempt::Failed {
                        error: e.to_string(),
                        code: None,
                    },
                    // The adapter can never send it: no sign of the system's health.
                    Err(e) if !e.is_unavailability() => Attempt::Permanent {
                        error: e.to_string(),
                        code: None,
                    },
                    Err(e) => {
                        self.institutions
                            .record_failure(&inst.id, operation, &e.to_string())
                            .await;
                        Attempt::Failed {
                            error: e.to_string(),
                            code: None,
                        }
                    }
                }
            }
        };
        let seq = item.seq;
        let txn_id: Option<TxnId> = item.txn_id.parse().ok();
        match attempt {
            Attempt::Delivered { code } => {
                self.institutions.record_success(&inst.id, operation);
                let (institution, account) = (item.institution.clone(), item.account.clone());
                let name = self.lease.name().to_string();
                let written = self
                    .store
                    .write(move |c| {
                        if !lease::check_fence(c, &name, fence)? {
                            return Ok(false);
                        }
                        saf::delivered(c, seq, attempts, &code)?;
                        if let (true, Some(id)) = (credit, txn_id) {
                            shadow::confirm_credit(c, &institution, &account, id)?;
                        }
                        Ok(true)
                    })
                    .await;
                match written {
                    Ok(false) => fenced_out(seq, fence),
                    Ok(true) => {
                        if let (true, Some(id)) = (credit, txn_id) {
                            let _ = self
                                .book
                                .confirm_credit(&item.institution, &item.account, id);
                        }
                    }
                    // Delivered again later: the account system drops the repeat by its id.
                    Err(e) => {
                        warn!(seq, error = %e, "SAF delivery not recorded; it will be repeated")
                    }
                }
            }
            Attempt::Failed { error, code } => {
                let dead = attempts >= inst.saf.max_attempts;
                self.fail(&item, attempts, dead, error, code, fence).await;
            }
            Attempt::Permanent { error, code } => {
                self.fail(&item, attempts, true, error, code, fence).await
            }
        }
    }

    async fn fail(
        &self,
        item: &Item,
        attempts: u32,
        dead: bool,
        error: String,
        code: Option<String>,
        fence: i64,
    ) {
        let next = Timestamp::now().as_microsecond()
            + backoff(&self.institution.saf, attempts).as_micros() as i64;
        let seq = item.seq;
        if dead {
            warn!(institution = %item.institution, seq, txn_id = %item.txn_id, attempts, error, "SAF item is a dead letter");
        } else {
            info!(institution = %item.institution, seq, attempts, error, "SAF delivery failed; will retry");
        }
        let name = self.lease.name().to_string();
        let written = self
            .store
            .write(move |c| {
                if !lease::check_fence(c, &name, fence)? {
                    return Ok(false);
                }
                saf::failed(c, seq, attempts, next, dead, &error, code.as_deref())?;
                Ok(true)
            })
            .await;
        match written {
            Ok(true) => {}
            Ok(false) => fenced_out(seq, fence),
            Err(e) => warn!(seq, error = %e, "SAF failure not recorded"),
        }
    }
}

/// A write refused by the fence: another instance replays now, and repeats
/// the item (the account system drops the repeat by its id).
fn fenced_out(seq: i64, fence: i64) {
    warn!(
        seq,
        fence, "SAF outcome not recorded: the replay lease moved to another instance"
    );
}

/// Delay before attempt `attempts + 1`: doubling from the initial delay up
/// to the maximum, then a random point in its upper half.
fn backoff(config: &super::config::SafConfig, attempts: u32) -> Duration {
    let doubled = config
        .backoff_initial_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let ceiling = doubled.min(config.backoff_max_ms).max(1);
    let jitter = rand::random::<u64>() % (ceiling / 2 + 1);
    Duration::from_millis(ceiling - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standin::config::SafConfig;

    #[test]
    fn backoff_doubles_within_jitter_up_to_the_maximum() {
        let config = SafConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 1_000,
            ..SafConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&config, 1).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(&config, 3).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff(&config, 20).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
        }
    }
}
