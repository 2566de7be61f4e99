//! The JSON API and the SOAP service for institutions, on their own
//! address (`[api]`; HTTPS with `[api.tls]`, see [`super::tls`]). Every
//! route but `/healthz`, `/readyz`, `/metrics` and `/openapi.json` requires
//! the configured bearer token.
//!
//! - `GET  /healthz` — the process answers; `GET /readyz` — the store reads and writes
//! - `GET  /metrics` — Prometheus text exposition (no card data in it)
//! - `GET  /openapi.json` — the OpenAPI document of all of these
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
//! - `POST /soap/hub` — StatusNotify and SubmitBalances (`wsdl/hub.wsdl`)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::balances::{self, BalancesError};
use super::config::ApiSettings;
use super::hub_soap::{self, HubCall, HubFaultCode, LineErrorOut, SoapVersion};
use super::tls::TlsListener;
use crate::backoffice::search::{Criteria, Page};
use crate::hub::pipeline::Hub;
use crate::link::LinkStats;
use crate::metrics::InstitutionSnapshot;
use crate::standin::balance_file::BalanceFileError;
use crate::standin::balances::{BalanceError, current_files};
use crate::standin::config::InstitutionConfig;
use crate::standin::saf;
use crate::standin::state::{InstitutionState, Source, StateError};

/// What every handler shares.
#[derive(Clone)]
struct Api {
    hub: Arc<Hub>,
    /// The configured institutions (their balance-file formats).
    institutions: Arc<[InstitutionConfig]>,
    token: Arc<str>,
    /// Largest SOAP request read (`[api] soap_max_bytes`).
    soap_max_bytes: usize,
    /// The switch link's connection counters, read at each `/metrics` scrape.
    link: LinkStats,
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
/// When the address cannot be bound.
pub async fn start(
    settings: &ApiSettings,
    hub: Arc<Hub>,
    institutions: Arc<[InstitutionConfig]>,
    link: LinkStats,
    shutdown: CancellationToken,
) -> std::io::Result<RunningApi> {
    let listener = tokio::net::TcpListener::bind(&settings.listen).await?;
    let addr = listener.local_addr()?;
    let api = Api {
        hub,
        institutions,
        token: settings.token.clone().into(),
        soap_max_bytes: settings.soap_max_bytes,
        link,
    };
    let app = router(api);
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

/// The server role: serves `app` on `listener` until `shutdown`, then drains.
async fn serve<L>(listener: L, app: Router, shutdown: CancellationToken)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        warn!(error = %e, "API server stopped");
    }
}

fn router(api: Api) -> Router {
    let protected = Router::new()
        .route("/api/institutions", get(institutions))
        .route("/api/institutions/{id}/state", post(set_state))
        .route("/api/institutions/{id}/saf/pause", post(pause))
        .route("/api/institutions/{id}/saf/resume", post(resume))
        .route("/api/institutions/{id}/balances", post(upload_balances))
        .route("/api/saf", get(saf_list))
        .route("/api/transactions/search", post(search))
        .route("/api/transactions/{id}", get(transaction))
        .route("/api/saf/{seq}/requeue", post(requeue))
        .route("/soap/hub", post(soap_hub))
        .route_layer(middleware::from_fn_with_state(api.clone(), bearer));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(protected)
        .with_state(api)
}

/// The OpenAPI 3 document of these routes.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Ready when the store answers a read and takes a write.
async fn ready(State(api): State<Api>) -> Response {
    let store = api.hub.store().clone();
    let read = store.read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)));
    let write =
        tokio::time::timeout(std::time::Duration::from_secs(2), store.write(|_| Ok(()))).await;
    match (read, write) {
        (Ok(_), Ok(Ok(()))) => (StatusCode::OK, "ready\n").into_response(),
        (Err(e), _) | (_, Ok(Err(e))) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response()
        }
        (_, Err(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store: writer does not answer\n",
        )
            .into_response(),
    }
}

/// The Prometheus text exposition.
async fn metrics(State(api): State<Api>) -> Result<Response, ApiError> {
    let text = api.hub.metrics().render(
        &snapshots(&api).await?,
        api.hub.store().wal_bytes(),
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

/// An error answer: a status and `{"error": ...}`.
struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        ApiError(status, json!({ "error": message.to_string() }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        let status = match e {
            StateError::UnknownInstitution(_) => StatusCode::NOT_FOUND,
            StateError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            StateError::UnknownState(_)
            | StateError::NotSignallable(_)
            | StateError::OfflineOnly(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let code = HubFaultCode::of_state_error(&e);
        ApiError(
            status,
            json!({ "error": e.to_string(), "code": code.as_str() }),
        )
    }
}

impl From<BalancesError> for ApiError {
    fn from(e: BalancesError) -> ApiError {
        let (status, code) = (e.http_status(), e.hub_code().as_str());
        match e {
            BalancesError::Balance(BalanceError::File(BalanceFileError::Invalid {
                problems,
                more,
            })) => ApiError(
                status,
                json!({
                    "error": "balance file rejected; the previous balances stay in use",
                    "code": code,
                    "problems": problems
                        .iter()
                        .map(|p| json!({"line": p.line, "column": p.column, "reason": p.reason}))
                        .collect::<Vec<_>>(),
                    "more": more,
                }),
            ),
            e => ApiError(status, json!({ "error": e.to_string(), "code": code })),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)
    }
}

async fn bearer(State(api): State<Api>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if bool::from(token.as_bytes().ct_eq(api.token.as_bytes())) => {
            next.run(request).await
        }
        _ => {
            ApiError::new(StatusCode::UNAUTHORIZED, "bearer token missing or wrong").into_response()
        }
    }
}

async fn institutions(State(api): State<Api>) -> Result<Json<Value>, ApiError> {
    let list = snapshots(&api).await?;
    Ok(Json(json!({ "institutions": list })))
}

/// Every institution now: state, SAF depth, current balance file.
async fn snapshots(api: &Api) -> Result<Vec<InstitutionSnapshot>, ApiError> {
    let store = api.hub.store().clone();
    let (depths, files) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((saf::depths(&store)?, current_files(&store)?))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    let now = jiff::Timestamp::now().as_microsecond();
    Ok(api
        .hub
        .institutions()
        .statuses()
        .into_iter()
        .map(|s| {
            let depth = depths.iter().find(|d| d.0 == s.id);
            let file = files.iter().find(|f| f.institution == s.id);
            InstitutionSnapshot {
                saf_pending: depth.map_or(0, |d| d.1),
                saf_dead: depth.map_or(0, |d| d.2),
                balances_as_of: file
                    .and_then(|f| jiff::Timestamp::from_microsecond(f.as_of_us).ok())
                    .map(|t| t.to_string()),
                balances_rows: file.map(|f| f.rows),
                balance_age_secs: file.map(|f| (now - f.as_of_us) / 1_000_000),
                state: s.state,
                saf_paused: s.saf_paused,
                transitions: s.transitions,
                id: s.id,
            }
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateChange {
    state: String,
    reason: Option<String>,
}

async fn set_state(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(change): Json<StateChange>,
) -> Result<Json<Value>, ApiError> {
    let to: InstitutionState = change.state.parse()?;
    let reason = change
        .reason
        .unwrap_or_else(|| "set through the API".into());
    let previous = api
        .hub
        .institutions()
        .set_state(&id, to, Source::Api, &reason)
        .await?;
    Ok(Json(
        json!({ "institution": id, "previous": previous.as_str(), "state": to.as_str() }),
    ))
}

async fn pause(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    api.hub
        .institutions()
        .set_paused(&id, true, Source::Api)
        .await?;
    Ok(Json(json!({ "institution": id, "saf_paused": true })))
}

async fn resume(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    api.hub
        .institutions()
        .set_paused(&id, false, Source::Api)
        .await?;
    Ok(Json(json!({ "institution": id, "saf_paused": false })))
}

async fn upload_balances(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Value>, ApiError> {
    let as_of = match headers.get("x-as-of").map(|v| v.to_str().map(str::parse)) {
        None => None,
        Some(Ok(Ok(t))) => Some(t),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "X-As-Of is not an RFC 3339 time (e.g. 2026-11-21T22:00:00Z)",
            ));
        }
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let applied = balances::apply(
        &api.hub,
        &api.institutions,
        &id,
        None,
        reader,
        as_of,
        "upload",
    )
    .await?;
    Ok(Json(serde_json::to_value(applied).unwrap_or_default()))
}

async fn search(
    State(api): State<Api>,
    criteria: Result<Json<Criteria>, JsonRejection>,
) -> Result<Json<Page>, ApiError> {
    let Json(criteria) = criteria.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let cards = api.hub.cards().clone();
    let query = criteria.compile(|pan| cards.hash(pan)).map_err(|e| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "error": e.to_string(), "field": e.field }),
        )
    })?;
    let store = api.hub.store().clone();
    let page = tokio::task::spawn_blocking(move || query.run(&store))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    Ok(Json(page))
}

async fn transaction(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Ok(txn_id) = id.parse::<crate::journal::txn_id::TxnId>() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a transaction id (16 hex digits)"),
        ));
    };
    let store = api.hub.store().clone();
    let story = tokio::task::spawn_blocking(move || crate::backoffice::story(&store, txn_id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    match story {
        Some(story) => Ok(Json(serde_json::to_value(story).unwrap_or_default())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no transaction {id}"),
        )),
    }
}

async fn saf_list(
    State(api): State<Api>,
    Query(filter): Query<saf::Filter>,
) -> Result<Json<Value>, ApiError> {
    let store = api.hub.store().clone();
    let items = tokio::task::spawn_blocking(move || saf::list(&store, &filter))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    let next_after = items.last().map(|(i, _)| i.seq);
    let items: Vec<Value> = items
        .into_iter()
        .map(|(item, behind)| {
            let mut v = serde_json::to_value(&item).unwrap_or_default();
            v["waits_behind"] = json!(behind);
            v
        })
        .collect();
    Ok(Json(json!({ "items": items, "next_after": next_after })))
}

async fn requeue(State(api): State<Api>, Path(seq): Path<i64>) -> Result<Json<Value>, ApiError> {
    let requeued = api.hub.store().write(move |c| saf::requeue(c, seq)).await?;
    if !requeued {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dead letter {seq}"),
        ));
    }
    for inst in api.hub.institutions().iter() {
        inst.saf_wake.notify_one();
    }
    Ok(Json(json!({ "seq": seq, "state": "pending" })))
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
