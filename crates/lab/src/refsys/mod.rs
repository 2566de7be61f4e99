//! `cardhub reference-account-system`: a real account system implementing
//! `wsdl/account-system.wsdl` (SOAP 1.1 and 1.2 on one path), for vendors to
//! compare their implementation with and for demos. cardhub's canonical
//! adapter (`adapters/canonical.toml`) calls it like any vendor's system.
//!
//! Layers: [`soap`] reads requests and writes answers (no I/O; requests
//! through [`xml`], a reader independent of the hub's), [`ledger`]
//! holds balances, holds and the answer per transaction id (SQLite),
//! [`accounts`] reads the opening balances; this module is the HTTP server
//! and its switches ([`Mode`]), settable at run time on `/admin/mode`, and
//! counts what it served on `/admin/stats`.
//!
//! It is a reference, not a bank: no authentication, no TLS, one request
//! applied at a time.

pub mod accounts;
pub mod corebank;
pub mod homebank;
pub mod ledger;
pub mod mainframe;
pub mod soap;
pub mod vendors;
pub mod xml;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use cardhub_core::account::Operation;
use cardhub_core::adapter::soap::{SOAP_ACTION, content_type};
use cardhub_core::soap_writer::{FaultCode, Version};
use ledger::{Ledger, LedgerError, codes};
use soap::{Answer, Request};

/// The SOAP endpoint's path (as in `adapters/canonical.toml`).
pub const SOAP_PATH: &str = "/account-system";

/// How the account system behaves; see `docs/reference-account-system.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answers every operation.
    #[default]
    Open,
    /// End of day: Authorize and Load get a SOAP Fault (detail code 907,
    /// issuer inoperative), which cardhub treats as no answer and stands in;
    /// Reverse, Advice and BalanceInquiry are still served.
    Closed,
    /// Answers every operation `delay_ms` late (the request is applied
    /// first, as a slow system applies it even when the caller gave up).
    Slow,
    /// Broken: HTTP 500 with a plain-text body for every SOAP request,
    /// nothing applied.
    Fail,
}

/// The switches, as `/admin/mode` sets them and `/admin/stats` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switches {
    pub mode: Mode,
    /// Delay of every answer in `slow` mode; kept when a request omits it.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

/// What `/admin/stats` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub mode: Mode,
    pub delay_ms: u64,
    /// SOAP requests read, per operation (`authorize`, …), repeats and
    /// refused ones included.
    pub requests: BTreeMap<String, u64>,
    /// Requests answered from the stored answer of their transaction id.
    pub repeats: u64,
    /// Requests answered with a SOAP Fault or an HTTP error.
    pub faults: u64,
    /// Distinct transaction ids seen since start.
    pub distinct_transaction_ids: u64,
}

/// What [`RefSys::process`] did with a request, for the front end that
/// read it to answer in its own format.
#[derive(Debug)]
pub enum Outcome {
    /// Decided now, or answered again from the stored answer (`repeat`).
    Answered { answer: Answer, repeat: bool },
    /// Closed for end of day: an Authorize or Load, refused and not applied.
    Closed,
    /// Fail mode: refused and not applied.
    Failed,
    /// The ledger failed; nothing was applied.
    Broken(LedgerError),
}

/// The server's shared state: one per server, shared by every connection.
pub struct RefSys {
    /// The ledger; one request at a time holds it (on a blocking thread).
    ledger: Arc<Mutex<Ledger>>,
    /// Set by `/admin/mode`, read by every request.
    switches: Mutex<(Mode, u64)>,
    /// Counters, updated by every request.
    counters: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<String, u64>,
    repeats: u64,
    faults: u64,
    ids: HashSet<String>,
}

impl RefSys {
    /// A server state over `ledger`, starting in `mode` with `delay_ms`.
    pub fn new(ledger: Ledger, mode: Mode, delay_ms: u64) -> Arc<RefSys> {
        Arc::new(RefSys {
            ledger: Arc::new(Mutex::new(ledger)),
            switches: Mutex::new((mode, delay_ms)),
            counters: Mutex::new(Counters::default()),
        })
    }

    /// Sets the mode (and the delay, when given).
    pub fn set_mode(&self, switches: Switches) {
        let mut s = self.switches.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 = switches.mode;
        if let Some(delay) = switches.delay_ms {
            s.1 = delay;
        }
    }

    /// The counters and switches now.
    pub fn stats(&self) -> Stats {
        let (mode, delay_ms) = *self.switches.lock().unwrap_or_else(PoisonError::into_inner);
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Stats {
            mode,
            delay_ms,
            requests: c.requests.clone(),
            repeats: c.repeats,
            faults: c.faults,
            distinct_transaction_ids: c.ids.len() as u64,
        }
    }

    /// Counts a request that could not be read (answered with a fault).
    pub fn unreadable(&self) {
        self.count(|c| c.faults += 1);
    }

    /// Counts `request`, applies it to the ledger unless the mode refuses
    /// it, and in slow mode waits `delay_ms` after applying (a slow system
    /// applies a request even when its caller gave up). Front ends read
    /// requests and write the outcome in their own format.
    pub async fn process(&self, request: Request) -> Outcome {
        let (mode, delay_ms) = *self.switches.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = self.decide(mode, request).await;
        if mode == Mode::Slow {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        outcome
    }

    async fn decide(&self, mode: Mode, request: Request) -> Outcome {
        let op = request.operation;
        self.count(|c| {
            *c.requests.entry(op.as_str().to_owned()).or_default() += 1;
            c.ids.insert(request.transaction_id.clone());
        });
        let refused = match mode {
            Mode::Fail => Some(Outcome::Failed),
            Mode::Closed if matches!(op, Operation::Authorize | Operation::Load) => {
                Some(Outcome::Closed)
            }
            _ => None,
        };
        if let Some(refused) = refused {
            self.count(|c| c.faults += 1);
            return refused;
        }
        let ledger = self.ledger.clone();
        let applied = tokio::task::spawn_blocking(move || {
            ledger
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(&request)
        })
        .await
        .unwrap_or_else(|e| Err(LedgerError::Panicked(e.to_string())));
        match applied {
            Ok((answer, repeat)) => {
                if repeat {
                    self.count(|c| c.repeats += 1);
                }
                Outcome::Answered { answer, repeat }
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger failed");
                self.count(|c| c.faults += 1);
                Outcome::Broken(e)
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// The routes: `POST /account-system` (SOAP) and [`admin_router`]'s.
pub fn router(state: Arc<RefSys>) -> Router {
    Router::new()
        .route(SOAP_PATH, post(soap_call))
        .layer(DefaultBodyLimit::max(soap::MAX_REQUEST_BYTES))
        .with_state(state.clone())
        .merge(admin_router(state))
}

/// The switches and counters every front end serves: `POST /admin/mode`,
/// `GET /admin/stats`, `GET /healthz`.
pub fn admin_router(state: Arc<RefSys>) -> Router {
    Router::new()
        .route("/admin/mode", post(set_mode))
        .route("/admin/stats", get(stats))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` is cancelled.
///
/// # Errors
///
/// The listener failed.
pub async fn serve(
    listener: TcpListener,
    state: Arc<RefSys>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// Serves `routes` on `listener` until `shutdown` is cancelled.
///
/// # Errors
///
/// The listener failed.
pub async fn serve_router(
    listener: TcpListener,
    routes: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, routes)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Equality of a secret sent with the expected one, in time independent of
/// where they first differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Binds `addr` and serves in a task; returns the bound address (useful
/// with port 0). Cancel `shutdown` to stop.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn spawn(
    addr: SocketAddr,
    state: Arc<RefSys>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, state, shutdown).await {
            tracing::error!(error = %e, "reference account system stopped");
        }
    });
    Ok(bound)
}

async fn set_mode(State(state): State<Arc<RefSys>>, Json(switches): Json<Switches>) -> Json<Stats> {
    state.set_mode(switches);
    tracing::info!(?switches, "mode set");
    Json(state.stats())
}

async fn stats(State(state): State<Arc<RefSys>>) -> Json<Stats> {
    Json(state.stats())
}

/// One SOAP request: read, then [`RefSys::process`], then the answer or
/// fault in the request's SOAP version.
async fn soap_call(
    State(state): State<Arc<RefSys>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let action = headers.get(SOAP_ACTION).and_then(|v| v.to_str().ok());
    let (version, request) = match soap::parse_request(&body, declared, action) {
        Ok(read) => read,
        Err(e) => {
            state.unreadable();
            let v = soap::fault_version(declared);
            return soap_fault(v, FaultCode::Sender, "904", &e.to_string());
        }
    };
    let op = request.operation;
    match state.process(request).await {
        Outcome::Answered { answer, .. } => {
            let xml = soap::answer(version, op, &answer);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type(version, None))],
                xml,
            )
                .into_response()
        }
        Outcome::Closed => {
            let message = "closed for end of day";
            soap_fault(version, FaultCode::Receiver, codes::CLOSED, message)
        }
        Outcome::Failed => fail_mode_response(),
        Outcome::Broken(e) => soap_fault(
            version,
            FaultCode::Receiver,
            codes::MALFUNCTION,
            &e.to_string(),
        ),
    }
}

/// What every HTTP front end answers in fail mode: HTTP 500, plain text.
pub fn fail_mode_response() -> Response {
    let text = "reference account system: fail mode\n";
    (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
}

/// A Fault with HTTP 500 (SOAP 1.1, and 1.2 `Receiver`) or 400 (1.2 `Sender`).
fn soap_fault(version: Version, code: FaultCode, vendor_code: &str, message: &str) -> Response {
    let status = match (version, code) {
        (Version::V12, FaultCode::Sender) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let xml = soap::fault(version, code, vendor_code, message);
    (
        status,
        [(header::CONTENT_TYPE, content_type(version, None))],
        xml,
    )
        .into_response()
}
