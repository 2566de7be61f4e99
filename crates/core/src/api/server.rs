//! The JSON API and the SOAP service for institutions, on their own
//! address (`[api]`; HTTPS with `[api.tls]`, see [`super::tls`]). Every
//! route but `/healthz`, `/readyz`, `/metrics` and `/openapi.json` requires
//! a bearer token: the configured `[api]` token, or a user's API token, and
//! each group of routes admits only some roles ([`super::access`]).
//!
//! - `GET  /healthz` — the process answers; `GET /readyz` — the store reads
//!   and takes a write, both within [`READY_DEADLINE`]
//! - `GET  /metrics` — Prometheus text exposition (no card data in it)
//! - `GET  /openapi.json` — the OpenAPI document of all of these, generated
//!   from the handlers and their types (one route list, `routes`)
//! - `GET  /api/institutions` — states, SAF depth, current balance file
//! - `POST /api/institutions/{id}/state` — `{"state": "closing", "reason": "..."}`
//! - `POST /api/institutions/{id}/saf/pause`, `.../saf/resume`
//! - `POST /api/institutions/{id}/balances` — a balance file as the body
//!   (streamed, any size; `X-As-Of: <RFC 3339>` when the file has no as-of)
//! - `GET  /api/saf?institution=&state=&after=&limit=` — queue items, with
//!   what each waits behind
//! - `POST /api/saf/{seq}/requeue` — a dead letter back into the queue
//! - `POST /api/transactions/search` — transactions by card (full PAN, in the
//!   body so it never sits in a URL or an access log), account, institution,
//!   terminal, RRN, STAN, time range, response code, decided-by; paginated
//! - `GET  /api/transactions/{id}` — the whole story of one transaction
//! - `/api/prepaid/...` — the prepaid ledger: orderers, programmes, card
//!   accounts, loads, moves, lost-card replacement, statements, audit
//!   ([`super::prepaid`]); card ranges, orders, production and PIN mailer
//!   files, PIN reorders ([`super::prepaid_orders`]); load files, the
//!   accounting export, attestation ([`super::prepaid_files`])
//! - `GET  /api/audit` — the audit log (bank admins and auditors)
//! - `POST /soap/hub` — StatusNotify and SubmitBalances (`wsdl/hub.wsdl`)
//!
//! The web application's pages ([`crate::web`]) are served on the same
//! address, outside the OpenAPI document.

use crate::params;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self as gate, Gate, Need, Peer};
use super::balances::{self, BalancesError};
use super::config::ApiSettings;
use super::error::{ApiError, ErrorBody};
use super::hub_soap::{self, HubCall, HubFaultCode, LineErrorOut, SoapVersion};
use super::operator;
use super::tls::TlsListener;
use super::{prepaid, prepaid_files, prepaid_orders};
use crate::access::Access;
use crate::access::config::WebConfig;
use crate::hub::pipeline::Hub;
use crate::link::LinkStats;
use crate::metrics::InstitutionSnapshot;
use crate::prepaid::Ledger;
use crate::prepaid::config::PrepaidConfig;
use crate::standin::balance_file::BalanceFileError;
use crate::standin::balances::BalanceError;
use crate::standin::config::InstitutionConfig;
use crate::standin::state::Source;

/// What every handler shares.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) hub: Arc<Hub>,
    /// The configured institutions (their balance-file formats).
    pub(super) institutions: Arc<[InstitutionConfig]>,
    /// Largest SOAP request read (`[api] soap_max_bytes`).
    soap_max_bytes: usize,
    /// The switch link's connection counters, read at each `/metrics` scrape.
    link: LinkStats,
    /// `/openapi.json`, rendered once from the routes.
    document: bytes::Bytes,
    /// The prepaid ledger's service layer, on the hub's store.
    pub(super) ledger: Ledger,
    /// `[prepaid] outbox`: where producer files are written.
    pub(super) outbox: Option<std::path::PathBuf>,
    /// Users' tokens and the audit log, on the hub's store.
    pub(super) access: Access,
}

/// A started API server.
pub struct RunningApi {
    pub addr: SocketAddr,
}

/// Binds the API's address and serves until shutdown: HTTPS when
/// `settings.tls` is set (its certificates were loaded with the config),
/// HTTP otherwise. `/metrics` reports `link`'s endpoints (the default: none).
///
/// # Errors
/// When the address cannot be bound (or the OpenAPI document, built from
/// the routes, cannot be rendered as JSON).
pub async fn start(
    settings: &ApiSettings,
    hub: Arc<Hub>,
    institutions: Arc<[InstitutionConfig]>,
    prepaid: &PrepaidConfig,
    link: LinkStats,
    shutdown: CancellationToken,
) -> std::io::Result<RunningApi> {
    let listener = tokio::net::TcpListener::bind(&settings.listen).await?;
    let addr = listener.local_addr()?;
    // The API resolves no login sessions: `[web]`'s timeouts do not apply.
    let access = Access::new(hub.store().clone(), &WebConfig::default());
    let gate = Gate {
        token: settings.token.as_str().into(),
        access: access.clone(),
    };
    let (router, document) = routes(gate);
    let ledger = Ledger::new(hub.store().clone(), prepaid);
    let pages = crate::web::router(
        hub.clone(),
        institutions.clone(),
        Access::new(hub.store().clone(), &settings.web),
        settings.tls.is_some(),
        ledger.clone(),
    )
    .layer(middleware::map_request(peer_for_pages));
    let sampled = hub.clone();
    let sampler_shutdown = shutdown.clone();
    tokio::spawn(async move {
        sampled
            .metrics()
            .live()
            .sample_every_second(sampler_shutdown)
            .await;
    });
    let api = Api {
        access,
        ledger,
        outbox: prepaid.outbox.clone(),
        hub,
        institutions,
        soap_max_bytes: settings.soap_max_bytes,
        link,
        document: document
            .to_pretty_json()
            .map_err(std::io::Error::other)?
            .into(),
    };
    let app = router.with_state(api).merge(pages);
    match &settings.tls {
        Some(tls) => {
            let listener = TlsListener::start(listener, tls.0.clone(), shutdown.clone())?;
            tokio::spawn(serve(listener, app, shutdown.clone()));
            info!(%addr, "API listening (HTTPS)");
        }
        None => {
            tokio::spawn(serve(listener, app, shutdown.clone()));
            info!(%addr, "API listening (HTTP)");
        }
    }
    Ok(RunningApi { addr })
}

/// Tells the web pages the peer's address (for the audit log).
async fn peer_for_pages(mut request: Request) -> Request {
    let from = request
        .extensions()
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip());
    request.extensions_mut().insert(crate::web::PeerAddr(from));
    request
}

/// The server role: serves `app` on `listener` until `shutdown`, then drains.
async fn serve<L>(listener: L, app: Router, shutdown: CancellationToken)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    Peer: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let app = app.into_make_service_with_connect_info::<Peer>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        warn!(error = %e, "API server stopped");
    }
}

/// The document's frame: what no handler says.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "cardhub API",
        version = "1.0.0",
        description = "Operators' JSON API of cardhub: institution states, balance files, the \
            store-and-forward queue, transactions; health and metrics; the SOAP service \
            institutions call. Every /api route and /soap/hub needs `Authorization: Bearer \
            <token>` (the `[api]` token). Card numbers never appear in clear.",
    ),
    components(schemas(ErrorBody))
)]
struct Frame;

/// Every route the API serves, with its documentation: the router and the
/// OpenAPI document come from this one list (`routes!` takes a handler's
/// method and path from its `#[utoipa::path]`), so neither has a route the
/// other lacks. Routes after the bearer check need a token `gate` knows,
/// and each group the roles its [`Need`] admits.
fn routes(gate: Gate) -> (Router<Api>, OpenApi) {
    let groups = [
        (
            Need::BankRead,
            OpenApiRouter::new()
                .routes(routes!(operator::institutions))
                .routes(routes!(operator::saf_list))
                .routes(routes!(operator::search))
                .routes(routes!(operator::transaction)),
        ),
        (
            Need::BankChange,
            OpenApiRouter::new()
                .routes(routes!(operator::set_state))
                .routes(routes!(operator::pause))
                .routes(routes!(operator::resume))
                .routes(routes!(operator::upload_balances))
                .routes(routes!(operator::requeue)),
        ),
        (
            Need::PrepaidRead,
            OpenApiRouter::new()
                .routes(routes!(prepaid::orderers, prepaid::create_orderer))
                .routes(routes!(prepaid::orderer))
                .routes(routes!(prepaid::orderer_cards))
                .routes(routes!(prepaid::orderer_statement))
                .routes(routes!(prepaid::card))
                .routes(routes!(prepaid::card_statement))
                .routes(routes!(prepaid_orders::orders))
                .routes(routes!(prepaid_orders::order))
                .routes(routes!(prepaid_files::unattested)),
        ),
        (
            Need::PrepaidChange,
            OpenApiRouter::new()
                .routes(routes!(prepaid::load))
                .routes(routes!(prepaid::move_balance))
                .routes(routes!(prepaid::replace))
                .routes(routes!(prepaid_orders::order_cards))
                .routes(routes!(prepaid_orders::delivered))
                .routes(routes!(prepaid_orders::reorder_pin))
                .routes(routes!(prepaid_files::attestation)),
        ),
        (
            Need::BankPrepaidRead,
            OpenApiRouter::new()
                .routes(routes!(prepaid::audit))
                .routes(routes!(prepaid_files::export)),
        ),
        (
            Need::BankAdmin,
            OpenApiRouter::new()
                .routes(routes!(prepaid::create_programme))
                .routes(routes!(prepaid::open_card))
                .routes(routes!(prepaid_orders::set_card_range))
                .routes(routes!(prepaid_orders::production_file))
                .routes(routes!(prepaid_orders::pin_mailer))
                // Its rows may name any orderer's cards.
                .routes(routes!(prepaid_files::load_file))
                .routes(routes!(soap_hub)),
        ),
        (
            Need::Audit,
            OpenApiRouter::new().routes(routes!(gate::audit_log)),
        ),
    ];
    let mut protected = OpenApiRouter::new();
    for (need, mut group) in groups {
        gate::document_forbidden(group.get_openapi_mut());
        protected =
            protected.merge(group.route_layer(middleware::from_fn_with_state(need, gate::guard)));
    }
    require_bearer(protected.get_openapi_mut());
    let mut frame = Frame::openapi();
    // Not Cargo.toml's (empty) license: the API states none.
    frame.info.license = None;
    OpenApiRouter::with_openapi(frame)
        .routes(routes!(healthz))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .merge(protected.route_layer(middleware::from_fn_with_state(gate, gate::bearer)))
        .split_for_parts()
}

/// The name of the bearer scheme in the document.
const BEARER: &str = "bearer";

/// Marks every operation of `doc` as needing the bearer token and answering
/// 401 without it, and adds the scheme and that answer to its components.
fn require_bearer(doc: &mut OpenApi) {
    document_error_answer(
        doc,
        StatusCode::UNAUTHORIZED,
        ("Unauthorized", "bearer token missing or wrong"),
        |operation| {
            operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        },
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
}

/// Documents the error answer `status` (named and described by `answer`,
/// an `Error` body) on every operation of `doc`, each also given to
/// `also`, and adds the answer to its components.
pub(super) fn document_error_answer(
    doc: &mut OpenApi,
    status: StatusCode,
    (name, description): (&str, &str),
    mut also: impl FnMut(&mut utoipa::openapi::path::Operation),
) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            also(operation);
            operation
                .responses
                .responses
                .insert(status.as_str().into(), Ref::from_response_name(name).into());
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    let error = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Error")))
        .build();
    components.responses.insert(
        name.into(),
        ResponseBuilder::new()
            .description(description)
            .content("application/json", error)
            .build()
            .into(),
    );
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", responses(
    (status = OK, description = "ok", body = String, content_type = "text/plain"),
))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for the store's read and write together.
pub const READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// The store reads and takes a write (a statement that updates this
/// instance's fleet row to itself: a write on every back end, refused by a
/// read-only database), both within [`READY_DEADLINE`]: a load balancer
/// sends no traffic to an instance whose store is unreachable, read-only
/// or stuck.
#[utoipa::path(get, path = "/readyz", responses(
    (status = OK, description = "ready", body = String, content_type = "text/plain"),
    (status = SERVICE_UNAVAILABLE, description = "the store cannot be read and written in time", body = String, content_type = "text/plain"),
))]
async fn ready(State(api): State<Api>) -> Response {
    let store = api.hub.store().clone();
    let instance = i64::from(api.hub.instance());
    let probe = async move {
        let reader = store.clone();
        tokio::task::spawn_blocking(move || {
            reader.read(|c| c.query_row("SELECT CAST(1 AS BIGINT)", params![], |r| r.get::<i64>(0)))
        })
        .await
        .map_err(|e| format!("read stopped: {e}"))?
        .map_err(|e| format!("read: {e}"))?;
        store
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE fleet_members SET heartbeat_us = heartbeat_us WHERE instance = ?1",
                )?
                .execute(params![instance])
            })
            .await
            .map_err(|e| format!("write: {e}"))
    };
    match tokio::time::timeout(READY_DEADLINE, probe).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("store {e}\n")).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "store: no read and write within {} ms\n",
                READY_DEADLINE.as_millis()
            ),
        )
            .into_response(),
    }
}

/// Prometheus text exposition (no card data in it).
#[utoipa::path(get, path = "/metrics", responses(
    (status = OK, description = "metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
async fn metrics(State(api): State<Api>) -> Result<Response, ApiError> {
    let text = api.hub.metrics().render(
        &api.snapshots().await?,
        // PostgreSQL's WAL is the server's: no file of ours to report.
        api.hub.store().wal_bytes().unwrap_or(0),
        &api.link.all(),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses(
    (status = OK, description = "OpenAPI 3.1, generated from the handlers", body = Object),
))]
async fn openapi(State(api): State<Api>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], api.document).into_response()
}

impl Api {
    /// Appends `entry` to the audit log.
    pub(super) async fn record(
        &self,
        entry: crate::access::audit::NewEntry,
    ) -> Result<(), ApiError> {
        self.access.audit(entry).await?;
        Ok(())
    }

    /// Every institution now: state, SAF depth, current balance file.
    pub(super) async fn snapshots(&self) -> Result<Vec<InstitutionSnapshot>, ApiError> {
        let hub = self.hub.clone();
        Ok(
            tokio::task::spawn_blocking(move || crate::backoffice::institutions::snapshots(&hub))
                .await??,
        )
    }
}

/// The request body, read whole while it fits in `max` bytes; `Ok(Err(n))`
/// as soon as it is known to be `n` > `max` bytes (from Content-Length, or
/// the bytes read so far), without reading the rest.
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
) -> Result<Result<bytes::Bytes, usize>, axum::Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > max) {
        return Ok(Err(size));
    }
    let mut stream = body.into_data_stream();
    let mut read = bytes::BytesMut::new();
    while let Some(chunk) = stream.try_next().await? {
        let size = read.len() + chunk.len();
        if size > max {
            return Ok(Err(size));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Ok(read.freeze()))
}

/// StatusNotify and SubmitBalances over SOAP 1.1 / 1.2 (`wsdl/hub.wsdl`).
#[utoipa::path(post, path = "/soap/hub",
    params(("SOAPAction" = Option<String>, Header, description = "SOAP 1.1: the operation's action")),
    request_body(description = "a SOAP envelope; SOAP 1.2 when `application/soap+xml`",
        content(("text/xml"), ("application/soap+xml"))),
    responses(
        (status = OK, description = "the operation's answer (a refused balance file too)",
            content(("text/xml"), ("application/soap+xml"))),
        (status = BAD_REQUEST, description = "a SOAP 1.2 Sender fault; plain text when the body broke off",
            content(("application/soap+xml"), ("text/plain"))),
        (status = INTERNAL_SERVER_ERROR, description = "a SOAP 1.1 fault, or a SOAP 1.2 Receiver fault",
            content(("text/xml"), ("application/soap+xml"))),
    ),
)]
async fn soap_hub(State(api): State<Api>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let action = headers.get("soapaction").and_then(|v| v.to_str().ok());
    let max = api.soap_max_bytes;
    let parsed = match read_body(&headers, body, max).await {
        Ok(Ok(body)) => hub_soap::parse_request_limited(&body, content_type, action, max),
        Ok(Err(size)) => Err(hub_soap::HubSoapError::TooLarge { size, max }),
        Err(e) => {
            // The client broke off: nobody is left to read a fault.
            warn!(error = %e, "SOAP request body not read");
            return (StatusCode::BAD_REQUEST, "request body not read\n").into_response();
        }
    };
    let (version, call) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let version = hub_soap::fault_version(content_type);
            let status = e.hub_code().http_status(version);
            return soap(version, status, e.to_fault(version));
        }
    };
    let refuse = |code: HubFaultCode, message: &str| {
        let status = code.http_status(version);
        soap(version, status, hub_soap::fault(version, code, message))
    };
    match call {
        HubCall::StatusNotify {
            institution,
            state,
            reason,
            ..
        } => {
            let reason = reason.unwrap_or_else(|| "StatusNotify".into());
            let institutions = api.hub.institutions();
            match institutions
                .set_state(&institution, state.into(), Source::Soap, &reason)
                .await
            {
                Ok(_) => {
                    let held = institutions
                        .get(&institution)
                        .map_or(state.into(), |i| i.state());
                    soap(version, 200, hub_soap::status_response(version, held))
                }
                Err(e) => refuse(HubFaultCode::of_state_error(&e), &e.to_string()),
            }
        }
        HubCall::SubmitBalances {
            institution,
            as_of,
            format,
            content,
            ..
        } => {
            let reader = std::io::Cursor::new(content);
            let applied = balances::apply(
                &api.hub,
                &api.institutions,
                &institution,
                Some(&format),
                reader,
                Some(as_of),
                "soap",
            )
            .await;
            match applied {
                Ok(applied) => soap(
                    version,
                    200,
                    hub_soap::balances_accepted(version, applied.rows),
                ),
                Err(BalancesError::Balance(BalanceError::File(BalanceFileError::Invalid {
                    problems,
                    ..
                }))) => {
                    let errors: Vec<LineErrorOut> = problems
                        .into_iter()
                        .map(|p| LineErrorOut {
                            line: p.line,
                            column: p.column,
                            reason: p.reason,
                        })
                        .collect();
                    soap(version, 200, hub_soap::balances_rejected(version, &errors))
                }
                Err(e) => refuse(e.hub_code(), &e.to_string()),
            }
        }
    }
}

fn soap(version: SoapVersion, status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = crate::adapter::soap::content_type(version, None);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
