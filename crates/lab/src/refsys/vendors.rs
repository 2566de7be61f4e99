//! The demo servers of the vendor interfaces of `adapters/`: thin protocol
//! layers over the one ledger ([`RefSys::process`]), so each adapter can run
//! against something real.
//!
//! - CoreBank CardAuth 2009 ([`corebank`]): SOAP 1.2 over HTTP with a
//!   WS-Security UsernameToken, at [`corebank::PATH`];
//! - HomeBank XML v3 ([`homebank`]): XML over HTTP with basic
//!   authentication, at [`homebank::PATH`];
//! - the CARDAUTH mainframe ([`mainframe`]): fixed-width records over
//!   persistent TCP, two-byte length framing, many requests in flight on one
//!   connection, answers matched by the echoed SEQ-NO.
//!
//! The HTTP ones also serve [`admin_router`](super::admin_router)'s
//! switches and counters; the mainframe's are served apart (the CLI's
//! `--admin`). Each front end answers the modes in its vendor's way:
//! closed is CoreBank's fault `CB-E9001`, HomeBank's status `900`, the
//! mainframe's `SE`; fail is HTTP 500, or on the mainframe a dropped
//! connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::corebank::{self, Credentials, Nonces, RequestError};
use super::{Outcome, RefSys, admin_router, fail_mode_response, homebank, mainframe};
use cardhub_core::soap_writer::FaultCode;

/// Which interface a reference account system speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vendor {
    /// `wsdl/account-system.wsdl`, SOAP 1.1 and 1.2 (`adapters/canonical.toml`).
    Canonical,
    /// CoreBank CardAuth 2009, SOAP 1.2 + WS-Security (`adapters/legacy-soap12.toml`).
    #[value(name = "legacy-soap12")]
    LegacySoap12,
    /// HomeBank XML v3 over HTTP (`adapters/homebank-xml.toml`).
    HomebankXml,
    /// CARDAUTH fixed-width records over TCP (`adapters/mainframe-fixed.toml`).
    MainframeFixed,
}

impl Vendor {
    /// Where the vendor's adapter file expects it (the canonical one's
    /// default differs from its adapter's so both can run side by side).
    pub fn default_listen(self) -> SocketAddr {
        let port = match self {
            Vendor::Canonical => 8090,
            Vendor::LegacySoap12 => 8081,
            Vendor::HomebankXml => 8082,
            Vendor::MainframeFixed => 7001,
        };
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The demo user of the vendor's adapter file (HTTP vendors).
    pub fn default_username(self) -> &'static str {
        match self {
            Vendor::HomebankXml => "cardhub",
            _ => "CARDHUB01",
        }
    }
}

/// The demo password of the shipped adapter files (public; for demos only).
pub const DEMO_PASSWORD: &str = "demo-only-not-a-secret";

/// Connections the mainframe server serves at once; one more waits in the
/// kernel's backlog until one closes.
pub const MAX_CONNECTIONS: usize = 64;
/// Requests in flight on one mainframe connection; reading pauses beyond.
pub const MAX_IN_FLIGHT: usize = 256;
/// The largest frame the mainframe server reads (a request is 134 bytes).
const MAX_FRAME: usize = 1024;

/// Binds `addr` and serves `vendor`'s interface over `state` in a task;
/// returns the bound address. `credentials` are the HTTP vendors' (the
/// canonical and mainframe interfaces have none). Cancel `shutdown` to stop.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn spawn(
    vendor: Vendor,
    addr: SocketAddr,
    state: Arc<RefSys>,
    credentials: Credentials,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(vendor, listener, state, credentials, shutdown).await {
            tracing::error!(error = %e, ?vendor, "reference account system stopped");
        }
    });
    Ok(bound)
}

/// Serves `vendor`'s interface on `listener` until `shutdown` is cancelled.
///
/// # Errors
///
/// The listener failed.
pub async fn serve(
    vendor: Vendor,
    listener: TcpListener,
    state: Arc<RefSys>,
    credentials: Credentials,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let routes = match vendor {
        Vendor::Canonical => super::router(state),
        Vendor::LegacySoap12 => corebank_router(state, credentials),
        Vendor::HomebankXml => homebank_router(state, credentials),
        Vendor::MainframeFixed => {
            return MainframeListener::new(listener, state, shutdown)
                .run()
                .await;
        }
    };
    super::serve_router(listener, routes, shutdown).await
}

// ------------------------------------------------------------ HTTP vendors

/// An HTTP vendor's state: the account system and who may call it.
struct HttpVendor {
    refsys: Arc<RefSys>,
    credentials: Credentials,
    /// CoreBank: nonces of the tokens accepted lately (one lock per request).
    nonces: Mutex<Nonces>,
}

fn with_state(
    refsys: Arc<RefSys>,
    credentials: Credentials,
    path: &str,
    handler: axum::routing::MethodRouter<Arc<HttpVendor>>,
    limit: usize,
) -> Router {
    let vendor = Arc::new(HttpVendor {
        refsys: refsys.clone(),
        credentials,
        nonces: Mutex::new(Nonces::default()),
    });
    Router::new()
        .route(path, handler)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(vendor)
        .merge(admin_router(refsys))
}

/// CoreBank's routes: `POST /services/CardAuth2009` and the admin ones.
pub fn corebank_router(state: Arc<RefSys>, credentials: Credentials) -> Router {
    let handler = post(corebank_call);
    with_state(
        state,
        credentials,
        corebank::PATH,
        handler,
        corebank::MAX_REQUEST_BYTES,
    )
}

/// HomeBank's routes: `POST /hbx/v3` and the admin ones.
pub fn homebank_router(state: Arc<RefSys>, credentials: Credentials) -> Router {
    let handler = post(homebank_call);
    with_state(
        state,
        credentials,
        homebank::PATH,
        handler,
        homebank::MAX_REQUEST_BYTES,
    )
}

fn soap12(reply: corebank::Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = "application/soap+xml; charset=utf-8";
    (status, [(header::CONTENT_TYPE, content_type)], reply.xml).into_response()
}

async fn corebank_call(
    State(vendor): State<Arc<HttpVendor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = {
        let mut nonces = vendor.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        let now = jiff::Timestamp::now();
        corebank::parse_request(&body, content_type, &vendor.credentials, &mut nonces, now)
    };
    let request = match parsed {
        Ok(call) => call.request,
        Err(RequestError::Authentication(why)) => {
            tracing::warn!(why, "CoreBank: security token refused");
            vendor.refsys.unreadable();
            return soap12(corebank::authentication_fault());
        }
        Err(e) => {
            vendor.refsys.unreadable();
            let text = e.to_string();
            let reply = corebank::fault(
                FaultCode::Sender,
                corebank::UNREADABLE,
                "Request not readable",
                &text,
                None,
            );
            return soap12(reply);
        }
    };
    let reply = match vendor.refsys.process(request.clone()).await {
        Outcome::Answered { answer, repeat } => corebank::answer(&request, &answer, repeat),
        Outcome::Closed => corebank::fault(
            FaultCode::Receiver,
            corebank::LEDGER_UNAVAILABLE,
            "Core ledger unavailable",
            "Ledger locked by end-of-day batch",
            Some(&request.transaction_id),
        ),
        Outcome::Failed => return fail_mode_response(),
        Outcome::Broken(_) => corebank::system_error(&request, "Posting engine error"),
    };
    soap12(reply)
}

/// Whether `headers` carry HTTP basic authentication with `credentials`.
fn basic_auth(headers: &HeaderMap, credentials: &Credentials) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| BASE64.decode(b.trim()).ok());
    let expected = format!("{}:{}", credentials.username, credentials.password);
    sent.is_some_and(|s| super::same_secret(&s, expected.as_bytes()))
}

async fn homebank_call(
    State(vendor): State<Arc<HttpVendor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let xml = |bytes: Vec<u8>| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, homebank::CONTENT_TYPE)],
            bytes,
        )
            .into_response()
    };
    if !basic_auth(&headers, &vendor.credentials) {
        vendor.refsys.unreadable();
        let challenge = [(header::WWW_AUTHENTICATE, "Basic realm=\"HomeBank\"")];
        return (StatusCode::UNAUTHORIZED, challenge, "").into_response();
    }
    let call = match homebank::parse_request(&body) {
        Ok(call) => call,
        Err((echo, e)) => {
            vendor.refsys.unreadable();
            return xml(homebank::status(&echo, "-1", &format!("SYNTAX ERROR: {e}")));
        }
    };
    let (echo, op) = (call.echo, call.request.operation);
    match vendor.refsys.process(call.request).await {
        Outcome::Answered { answer, .. } => xml(homebank::answer(&echo, op, &answer)),
        Outcome::Closed => xml(homebank::status(&echo, "900", "HOST NOT AVAILABLE")),
        Outcome::Failed => fail_mode_response(),
        Outcome::Broken(_) => xml(homebank::status(&echo, "900", "HOST ERROR")),
    }
}

// ---------------------------------------------------------------- mainframe

/// Accepts mainframe connections, at most [`MAX_CONNECTIONS`] at once.
struct MainframeListener {
    listener: TcpListener,
    /// Shared with every connection's requests.
    state: Arc<RefSys>,
    /// A permit per open connection, taken before `accept`.
    connections: Arc<Semaphore>,
    /// Stops the listener and, through child tokens, every connection.
    shutdown: CancellationToken,
}

impl MainframeListener {
    fn new(listener: TcpListener, state: Arc<RefSys>, shutdown: CancellationToken) -> Self {
        MainframeListener {
            listener,
            state,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            shutdown,
        }
    }

    async fn run(self) -> std::io::Result<()> {
        loop {
            let permit = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                permit = self.connections.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else { return Ok(()) };
            let (socket, peer) = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                accepted = self.listener.accept() => accepted?,
            };
            let connection = MainframeConnection {
                state: self.state.clone(),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                close: self.shutdown.child_token(),
            };
            tokio::spawn(async move {
                connection.run(socket).await;
                tracing::debug!(%peer, "mainframe connection closed");
                drop(permit);
            });
        }
    }
}

/// One persistent connection: requests read in order, each handled in its
/// own task, answers written as they are ready (in any order).
struct MainframeConnection {
    state: Arc<RefSys>,
    /// A permit per request in flight on this connection.
    in_flight: Arc<Semaphore>,
    /// Closes this connection (server shutdown, or fail mode).
    close: CancellationToken,
}

impl MainframeConnection {
    async fn run(self, socket: TcpStream) {
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(2)
            .max_frame_length(MAX_FRAME)
            .new_codec();
        let (read, write) = socket.into_split();
        let mut frames = FramedRead::new(read, codec.clone());
        let mut sink = FramedWrite::new(write, codec);
        let (answers, mut outbox) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT);
        let close = self.close.clone();
        let writer = tokio::spawn(async move {
            loop {
                let answer = tokio::select! {
                    () = close.cancelled() => return,
                    answer = outbox.recv() => answer,
                };
                let Some(answer) = answer else { return };
                if let Err(e) = sink.send(Bytes::from(answer)).await {
                    tracing::debug!(error = %e, "mainframe: answer not sent");
                    close.cancel();
                    return;
                }
            }
        });
        loop {
            let frame = tokio::select! {
                () = self.close.cancelled() => break,
                frame = frames.next() => frame,
            };
            let record = match frame {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "mainframe: bad frame; closing the connection");
                    break;
                }
                None => break,
            };
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                break;
            };
            let (state, answers, close) = (self.state.clone(), answers.clone(), self.close.clone());
            tokio::spawn(async move {
                match handle(&state, &record).await {
                    Some(answer) => {
                        let _ = answers.send(answer).await;
                    }
                    None => close.cancel(),
                }
                drop(permit);
            });
        }
        drop(answers);
        let _ = writer.await;
    }
}

/// The answer to one record; `None` in fail mode (the connection drops).
async fn handle(state: &RefSys, record: &[u8]) -> Option<Vec<u8>> {
    let read = match mainframe::read(record) {
        Ok(read) => read,
        Err((echo, e)) => {
            tracing::debug!(error = %e, "mainframe: record refused");
            state.unreadable();
            return Some(mainframe::refusal(&echo, &e));
        }
    };
    let (echo, op) = (read.echo, read.request.operation);
    Some(match state.process(read.request).await {
        Outcome::Answered { answer, .. } => mainframe::answer(&echo, op, &answer),
        Outcome::Closed => mainframe::system_error(&echo, "CLOSED FOR END OF DAY"),
        Outcome::Failed => return None,
        Outcome::Broken(_) => mainframe::system_error(&echo, "LEDGER ERROR"),
    })
}
