//! Listening for switch connections. `accept` never waits for a free slot:
//! each accepted connection is admitted or refused at once by the endpoint's
//! slot table ([`admission`](super::admission)), which may evict a stranger
//! to make room. TLS is negotiated in the connection's own task, within the
//! sign-on time limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::admission::{Admitted, Slots, Timeout};
use super::config::SwitchSettings;
use super::connection::{self, Supervision};
use super::handler::Handler;

/// Time a client has to finish the TLS handshake (also bounded by the sign-on limit).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Refusals and evictions are logged at most once per this period, with a count.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// Everything an accept loop needs.
pub(crate) struct Listener<H> {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub settings: Arc<SwitchSettings>,
    pub handler: Arc<H>,
    /// Link-wide in-flight limit.
    pub global: Arc<Semaphore>,
    /// This endpoint's slot table; only this loop admits into it.
    pub slots: Arc<Slots>,
    pub shutdown: CancellationToken,
    /// Connection tasks, waited for at shutdown.
    pub tracker: TaskTracker,
}

/// A warning that repeats at most once per [`LOG_PERIOD`]; what it held back
/// is counted into the next one (the counters have every event).
#[derive(Default)]
struct QuietLog {
    last: Option<Instant>,
    held_back: u64,
}

impl QuietLog {
    /// Whether to log now, and how many were held back since the last line.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|at| now < at + LOG_PERIOD) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

impl<H: Handler> Listener<H> {
    /// Accepts connections until shutdown.
    pub async fn run(self) {
        let name = self.settings.config.name.clone();
        let mut refusals = QuietLog::default();
        let mut evictions = QuietLog::default();
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!(switch = name, error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                },
                _ = self.shutdown.cancelled() => break,
            };
            let Admitted { slot, evicted } = match self.slots.admit(peer.ip()) {
                Ok(admitted) => admitted,
                Err(why) => {
                    if let Some(held_back) = refusals.due() {
                        warn!(switch = name, %peer, reason = %why, held_back, "connection refused");
                    }
                    continue;
                }
            };
            if evicted && let Some(held_back) = evictions.due() {
                warn!(
                    switch = name,
                    %peer,
                    held_back,
                    "all slots strangers may use are taken: closed the oldest connection not signed on"
                );
            }
            let _ = stream.set_nodelay(true);
            let sign_on_by = self.settings.sign_on_timeout().map(|d| Instant::now() + d);
            let supervision = Supervision {
                established: slot.established.clone(),
                close: slot.close.clone(),
                counters: self.slots.counters.clone(),
                sign_on_by,
            };
            let tls = self.tls.clone();
            let settings = self.settings.clone();
            let handler = self.handler.clone();
            let global = self.global.clone();
            let shutdown = self.shutdown.clone();
            self.tracker.spawn(async move {
                let handle = match tls {
                    None => connection::spawn_supervised(
                        stream,
                        peer,
                        settings,
                        handler,
                        global,
                        shutdown,
                        supervision,
                    ),
                    Some(acceptor) => {
                        let limit = Instant::now() + HANDSHAKE_TIMEOUT;
                        let limit = sign_on_by.map_or(limit, |s| s.min(limit));
                        let handshake = tokio::select! {
                            r = tokio::time::timeout_at(limit, acceptor.accept(stream)) => r,
                            _ = slot.close.cancelled() => return,
                        };
                        match handshake {
                            Ok(Ok(tls)) => connection::spawn_supervised(
                                tls,
                                peer,
                                settings,
                                handler,
                                global,
                                shutdown,
                                supervision,
                            ),
                            Ok(Err(e)) => {
                                warn!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                supervision.counters.timed_out(Timeout::SignOn);
                                warn!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let _ = handle.task.await;
                drop(slot);
            });
        }
        info!(switch = name, "stopped accepting connections");
    }
}
