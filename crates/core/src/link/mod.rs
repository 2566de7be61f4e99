//! The switch link: ISO 8583 over TCP (optionally TLS) to and from card
//! switches. Framing, network management (sign-on, sign-off, echo), many
//! requests in flight per connection, backpressure, deadlines and graceful
//! shutdown live here. What to answer to a financial request does not: the
//! link hands each decoded request to a [`Handler`].

pub mod admission;
pub mod config;
pub mod connection;
mod dialer;
pub mod frame;
mod frame_clock;
pub mod handler;
mod listener;
pub mod netmgmt;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::iso8583::{EncodeError, Mti};
pub use admission::ConnectionStats;
pub use config::{LinkSettings, Role, SwitchConfig, SwitchSettings};
pub use connection::{ConnectionHandle, Outbound};
pub use handler::{Handler, IssuerUnavailable, Origin, Request};

/// Errors of the switch link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A listen address cannot be bound (ours to fix: port taken, permissions).
    #[error("switch {switch}: cannot listen on {address}: {source}")]
    Bind {
        switch: String,
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The switch cannot be reached (retrying may help).
    #[error("connecting to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// TLS settings that cannot be used.
    #[error("switch {switch}: {source}")]
    Tls {
        switch: String,
        #[source]
        source: tls::TlsError,
    },
    /// A message cardhub built does not fit the dialect (our fault).
    #[error("encoding {mti}: {source}")]
    Encode {
        mti: Mti,
        #[source]
        source: EncodeError,
    },
    /// A message larger than the connection's frame limit.
    #[error("message of {length} bytes exceeds the frame limit of {max}")]
    TooLarge { length: usize, max: usize },
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
    /// No answer within the time limit (the peer may be slow or dead).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Another request with the same MTI class, DE 41 and DE 11 is waiting.
    #[error("a request with the same MTI class, DE 41 and DE 11 is already waiting")]
    DuplicateKey,
}

/// Where a switch endpoint's [`ConnectionStats`] come from.
enum StatsSource {
    /// A listener's slot table (with its counters).
    Listen(Arc<admission::Slots>),
    /// A dialer's connection counters.
    Dial(Arc<admission::Counters>),
}

/// Every switch endpoint's [`ConnectionStats`], readable at any time (the
/// API's `/metrics` reads them at each scrape). Cheap to clone; the default
/// has no endpoint (no link).
#[derive(Clone, Default)]
pub struct LinkStats {
    endpoints: Arc<[(String, StatsSource)]>,
}

/// One switch endpoint's stats, as [`LinkStats::all`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    /// The switch connection's name.
    pub switch: String,
    /// Whether it listens (only then are `open` and `established` counted).
    pub listening: bool,
    /// Its connections now and its counters since start.
    pub stats: ConnectionStats,
}

/// A started link: listeners bound, dialers running.
pub struct RunningLink {
    listening: Vec<(String, SocketAddr)>,
    stats: LinkStats,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

/// Binds every listening switch connection and starts every dialer. All
/// addresses are bound before anything is served; a failure binds nothing.
///
/// # Errors
/// [`LinkError::Bind`] or [`LinkError::Tls`] for the first switch that cannot start.
pub async fn start<H: Handler>(
    switches: &[Arc<SwitchSettings>],
    settings: &LinkSettings,
    handler: Arc<H>,
) -> Result<RunningLink, LinkError> {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let global = Arc::new(Semaphore::new(settings.max_in_flight));
    let mut listeners = Vec::new();
    let mut dialers = Vec::new();
    let tls_error = |s: &SwitchSettings| {
        let switch = s.config.name.clone();
        move |source| LinkError::Tls { switch, source }
    };
    for s in switches {
        let cfg = &s.config;
        match cfg.role {
            Role::Listen => {
                let tls = match &cfg.tls {
                    Some(t) => Some(tls::acceptor(t).map_err(tls_error(s))?),
                    None => None,
                };
                let listener =
                    TcpListener::bind(&cfg.address)
                        .await
                        .map_err(|source| LinkError::Bind {
                            switch: cfg.name.clone(),
                            address: cfg.address.clone(),
                            source,
                        })?;
                listeners.push((s.clone(), listener, tls));
            }
            Role::Dial => {
                let tls = match &cfg.tls {
                    Some(t) => Some(tls::connector(t, &cfg.address).map_err(tls_error(s))?),
                    None => None,
                };
                dialers.push((s.clone(), tls));
            }
        }
    }
    let mut listening = Vec::new();
    let mut stats = Vec::new();
    for (s, listener, tls) in listeners {
        let addr = listener.local_addr().map_err(|source| LinkError::Bind {
            switch: s.config.name.clone(),
            address: s.config.address.clone(),
            source,
        })?;
        info!(switch = s.config.name, %addr, "listening");
        listening.push((s.config.name.clone(), addr));
        let slots = admission::Slots::new(
            admission::Limits {
                max_connections: s.config.max_connections,
                reserved: s.reserved_connections(),
                per_address: s.config.max_connections_per_address,
                allow: s.allow.clone(),
            },
            Arc::default(),
        );
        stats.push((s.config.name.clone(), StatsSource::Listen(slots.clone())));
        tracker.spawn(
            listener::Listener {
                listener,
                tls,
                settings: s,
                handler: handler.clone(),
                global: global.clone(),
                slots,
                shutdown: shutdown.clone(),
                tracker: tracker.clone(),
            }
            .run(),
        );
    }
    for (s, tls) in dialers {
        let counters = Arc::new(admission::Counters::default());
        stats.push((s.config.name.clone(), StatsSource::Dial(counters.clone())));
        tracker.spawn(
            dialer::Dialer {
                settings: s,
                tls,
                counters,
                handler: handler.clone(),
                global: global.clone(),
                shutdown: shutdown.clone(),
            }
            .run(),
        );
    }
    Ok(RunningLink {
        listening,
        stats: LinkStats {
            endpoints: stats.into(),
        },
        shutdown,
        tracker,
        grace: Duration::from_millis(settings.shutdown_grace_ms),
    })
}

impl StatsSource {
    fn read(&self) -> ConnectionStats {
        match self {
            StatsSource::Listen(slots) => slots.stats(),
            StatsSource::Dial(counters) => counters.snapshot(),
        }
    }
}

impl LinkStats {
    /// A switch endpoint's stats now, by name.
    pub fn get(&self, switch: &str) -> Option<ConnectionStats> {
        self.endpoints
            .iter()
            .find(|(name, _)| name == switch)
            .map(|(_, source)| source.read())
    }

    /// Every endpoint's stats now, in configuration order.
    pub fn all(&self) -> Vec<EndpointStats> {
        self.endpoints
            .iter()
            .map(|(name, source)| EndpointStats {
                switch: name.clone(),
                listening: matches!(source, StatsSource::Listen(_)),
                stats: source.read(),
            })
            .collect()
    }
}

impl RunningLink {
    /// The bound address of a listening switch connection, by name.
    pub fn local_addr(&self, switch: &str) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(name, _)| name == switch)
            .map(|(_, addr)| *addr)
    }

    /// A switch endpoint's connections and what it refused, evicted and
    /// timed out since start, by name.
    pub fn stats(&self, switch: &str) -> Option<ConnectionStats> {
        self.stats.get(switch)
    }

    /// A handle on every endpoint's stats, for readers that outlive this
    /// borrow (the API's `/metrics`).
    pub fn stats_source(&self) -> LinkStats {
        self.stats.clone()
    }

    /// The token that stops the link; cancelling it starts a graceful shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight requests finish, signs off, closes —
    /// waiting at most the grace period.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(grace = ?self.grace, "shutdown grace period over, closing anyway");
        } else {
            info!("link stopped");
        }
    }
}
