//! Listening for switch connections: a connection permit is taken before
//! `accept`, so at most `max_connections` are served at once; TLS is
//! negotiated in the connection's own task with a time limit.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::config::SwitchSettings;
use super::connection;
use super::handler::Handler;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Everything an accept loop needs.
pub(crate) struct Listener<H> {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub settings: Arc<SwitchSettings>,
    pub handler: Arc<H>,
    /// Link-wide in-flight limit.
    pub global: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    /// Connection tasks, waited for at shutdown.
    pub tracker: TaskTracker,
}

impl<H: Handler> Listener<H> {
    /// Accepts connections until shutdown.
    pub async fn run(self) {
        let name = self.settings.config.name.clone();
        let limit = Arc::new(Semaphore::new(self.settings.config.max_connections));
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = self.shutdown.cancelled() => break,
            };
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
            let _ = stream.set_nodelay(true);
            let tls = self.tls.clone();
            let settings = self.settings.clone();
            let handler = self.handler.clone();
            let global = self.global.clone();
            let shutdown = self.shutdown.clone();
            self.tracker.spawn(async move {
                let handle = match tls {
                    None => connection::spawn(stream, peer, settings, handler, global, shutdown),
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                connection::spawn(tls, peer, settings, handler, global, shutdown)
                            }
                            Ok(Err(e)) => {
                                warn!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                warn!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                let _ = handle.task.await;
                drop(permit);
            });
        }
        info!(switch = name, "stopped accepting connections");
    }
}
