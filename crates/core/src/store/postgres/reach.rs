//! How long the store waits for PostgreSQL, and what it does when the
//! server stops answering.
//!
//! tokio-postgres has no timeout of its own: a server that stops answering
//! without closing the socket (a hung server, a firewall dropping packets,
//! a network partition) would keep a writer thread, and every job queued
//! behind it, waiting forever. So every round trip (connecting, each
//! statement, `COMMIT`) is bounded here ([`Reach::bounded`]), and a
//! connection whose round trip outlived its bound is dropped, never used
//! again (its I/O task aborted: the socket closes).
//!
//! Bounds alone would still queue: each job waiting its full bound, one
//! after the other, past the switch's deadline. So the store also knows
//! whether the server answered its last connection attempt: while it did
//! not, only one connection attempt at a time goes out (the probe); every
//! other one is refused at once ([`Error::Unreachable`]) and the job that
//! needed it answered with that error. The next attempt after the server
//! answers again finds it up: the store recovers by itself.

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::executor::block_on;
use tokio::runtime::Handle;
use tokio::time::error::Elapsed;

use crate::store::sql::Error;

/// What the connections of one store share about reaching its server.
pub(super) struct Reach {
    /// The store's runtime: its timer bounds the round trips.
    runtime: Handle,
    /// The longest wait for a statement's (or `COMMIT`'s) answer.
    pub(super) round_trip: Duration,
    /// The longest wait for a new connection, authentication included.
    pub(super) connect: Duration,
    /// Whether the last connection attempt failed, and whether one is
    /// under way.
    state: Mutex<State>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct State {
    /// The last connection attempt failed or a round trip timed out, and
    /// no connection attempt succeeded since.
    down: bool,
    /// A connection attempt is under way while `down`.
    probing: bool,
}

/// Leave to try connecting; while the server is down it is the one probe,
/// and gives the turn back when dropped.
pub(super) struct Attempt<'a> {
    reach: &'a Reach,
    probe: bool,
}

impl Reach {
    pub(super) fn new(runtime: Handle, round_trip: Duration, connect: Duration) -> Reach {
        Reach {
            runtime,
            round_trip,
            connect,
            state: Mutex::default(),
        }
    }

    /// The store's runtime, where connections' I/O tasks run.
    pub(super) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Drives `future` on the calling thread for at most `bound`. Works on
    /// any thread, a tokio worker included: only the timer is the
    /// runtime's.
    pub(super) fn bounded<F: Future>(
        &self,
        bound: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        // The timer is registered with the store's runtime when created;
        // polling it afterwards needs no runtime context.
        let timed = {
            let _runtime = self.runtime.enter();
            tokio::time::timeout(bound, future)
        };
        block_on(timed)
    }

    /// Leave to try a new connection: always while the server answers;
    /// while it does not, for one attempt at a time.
    ///
    /// # Errors
    /// [`Error::Unreachable`] while the server is down and another
    /// connection attempt is under way.
    pub(super) fn attempt(&self) -> Result<Attempt<'_>, Error> {
        let mut state = self.state();
        if !state.down {
            return Ok(Attempt {
                reach: self,
                probe: false,
            });
        }
        if state.probing {
            return Err(Error::Unreachable);
        }
        state.probing = true;
        Ok(Attempt {
            reach: self,
            probe: true,
        })
    }

    /// A connection attempt failed or a round trip timed out.
    pub(super) fn lost(&self) {
        let mut state = self.state();
        if !state.down {
            tracing::warn!(
                "PostgreSQL does not answer: one connection attempt at a time until it does"
            );
        }
        state.down = true;
    }

    /// A connection attempt succeeded.
    pub(super) fn answered(&self) {
        let mut state = self.state();
        if state.down {
            tracing::info!("PostgreSQL answers again");
        }
        state.down = false;
    }

    /// Whether the server failed its last connection attempt (or a round
    /// trip) and none succeeded since.
    #[cfg(test)]
    fn is_down(&self) -> bool {
        self.state().down
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Two flags: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.reach.state().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach() -> (tokio::runtime::Runtime, Reach) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let reach = Reach::new(
            runtime.handle().clone(),
            Duration::from_millis(50),
            Duration::from_millis(50),
        );
        (runtime, reach)
    }

    #[test]
    fn while_down_one_attempt_at_a_time_until_one_succeeds() {
        let (_runtime, reach) = reach();
        let (a, b) = (reach.attempt().unwrap(), reach.attempt().unwrap());
        drop((a, b));
        reach.lost();
        let probe = reach.attempt().unwrap();
        assert!(matches!(reach.attempt(), Err(Error::Unreachable)));
        drop(probe);
        let probe = reach.attempt().unwrap();
        reach.answered();
        drop(probe);
        assert!(!reach.is_down());
        let _both = (reach.attempt().unwrap(), reach.attempt().unwrap());
    }

    #[test]
    fn a_future_that_never_ends_is_cut_at_its_bound() {
        let (_runtime, reach) = reach();
        let never = futures::future::pending::<()>();
        assert!(reach.bounded(Duration::from_millis(20), never).is_err());
        assert_eq!(reach.bounded(Duration::from_secs(5), async { 7 }), Ok(7));
    }
}
