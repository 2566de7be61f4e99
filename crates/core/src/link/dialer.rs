//! Dialing a switch: connect, sign on, serve until the connection ends, then
//! reconnect after a jittered exponential backoff — until shutdown.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::admission::Counters;
use super::config::SwitchSettings;
use super::connection::{self, ConnectionHandle, Supervision};
use super::handler::Handler;
use super::netmgmt::{self, NetworkCode};

/// Time to establish the TCP connection (and TLS) before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a dial loop needs.
pub(crate) struct Dialer<H> {
    pub settings: Arc<SwitchSettings>,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub handler: Arc<H>,
    /// Where this switch's connections count their time-limit closes.
    pub counters: Arc<Counters>,
    /// Link-wide in-flight limit.
    pub global: Arc<Semaphore>,
    pub shutdown: CancellationToken,
}

impl<H: Handler> Dialer<H> {
    /// Keeps a signed-on connection to the switch until shutdown.
    pub async fn run(self) {
        let cfg = &self.settings.config;
        let min = Duration::from_millis(cfg.reconnect_min_ms);
        let max = Duration::from_millis(cfg.reconnect_max_ms);
        let mut backoff = min;
        while !self.shutdown.is_cancelled() {
            let connected = tokio::select! {
                r = tokio::time::timeout(CONNECT_TIMEOUT, self.connect()) => r,
                _ = self.shutdown.cancelled() => break,
            };
            match connected {
                Ok(Ok(handle)) => {
                    if self.sign_on(&handle).await {
                        backoff = min;
                    }
                    let _ = handle.task.await;
                }
                Ok(Err(e)) => {
                    warn!(switch = cfg.name, address = cfg.address, error = %e, "connect failed")
                }
                Err(_) => warn!(
                    switch = cfg.name,
                    address = cfg.address,
                    "connect timed out"
                ),
            }
            let pause = jitter(backoff);
            backoff = (backoff * 2).min(max);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown.cancelled() => break,
            }
        }
        info!(switch = cfg.name, "dialer stopped");
    }

    async fn connect(&self) -> Result<ConnectionHandle, super::LinkError> {
        let cfg = &self.settings.config;
        let stream =
            TcpStream::connect(&cfg.address)
                .await
                .map_err(|source| super::LinkError::Connect {
                    address: cfg.address.clone(),
                    source,
                })?;
        let _ = stream.set_nodelay(true);
        let peer = stream
            .peer_addr()
            .map_err(|source| super::LinkError::Connect {
                address: cfg.address.clone(),
                source,
            })?;
        let (settings, handler, global, shutdown) = (
            self.settings.clone(),
            self.handler.clone(),
            self.global.clone(),
            self.shutdown.clone(),
        );
        // cardhub signs on itself (bounded by `echo_timeout_ms`): no sign-on limit here.
        let supervision = Supervision {
            counters: self.counters.clone(),
            ..Supervision::default()
        };
        Ok(match &self.tls {
            None => connection::spawn_supervised(
                stream,
                peer,
                settings,
                handler,
                global,
                shutdown,
                supervision,
            ),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|source| super::LinkError::Connect {
                        address: cfg.address.clone(),
                        source,
                    })?;
                connection::spawn_supervised(
                    tls,
                    peer,
                    settings,
                    handler,
                    global,
                    shutdown,
                    supervision,
                )
            }
        })
    }

    /// Signs on; closes the connection and returns false when refused or unanswered.
    async fn sign_on(&self, handle: &ConnectionHandle) -> bool {
        let cfg = &self.settings.config;
        let request = netmgmt::request(
            NetworkCode::SignOn,
            handle.outbound.next_stan(),
            cfg.header.as_deref(),
            cfg.terminal_id.as_deref(),
        );
        match handle
            .outbound
            .request(&request, self.settings.echo_timeout())
            .await
        {
            Ok(reply) if reply.response_code().is_ok_and(|c| c.is_approval()) => {
                // The connection marked itself signed on when it read this answer.
                info!(switch = cfg.name, address = cfg.address, "signed on");
                true
            }
            Ok(reply) => {
                warn!(switch = cfg.name, code = ?reply.response_code(), "sign-on refused");
                handle.close.cancel();
                false
            }
            Err(e) => {
                warn!(switch = cfg.name, error = %e, "sign-on not answered");
                handle.close.cancel();
                false
            }
        }
    }
}

/// A delay between half and all of `base`, so reconnecting peers spread out.
fn jitter(base: Duration) -> Duration {
    let half = base / 2;
    let spread = half.as_millis().max(1) as u64;
    half + Duration::from_millis(rand::random::<u64>() % spread)
}
