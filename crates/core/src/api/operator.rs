//! The operators' JSON routes under `/api/`: institution states, SAF
//! control, balance uploads, the SAF queue, transaction search and story.
//! Each handler's `#[utoipa::path]` and the types it answers with are what
//! `/openapi.json` says of it; the bearer token and the caller's role are
//! checked before any of them runs ([`super::access`]). A bank operator
//! sees and changes only its own institutions: others answer as unknown;
//! every change is audited with the caller and its address.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::ToSchema;

use super::access::forbidden;
use super::error::{ApiError, Body, ErrorBody};
use super::server::Api;
use crate::access::Actor;
use crate::access::audit::{Action, NewEntry};
use crate::backoffice::Story;
use crate::backoffice::search::{Criteria, Page};
use crate::journal::txn_id::TxnId;
use crate::metrics::InstitutionSnapshot;
use crate::standin::balances::Applied;
use crate::standin::saf;
use crate::standin::state::{InstitutionState, Source, StateError};

/// Every institution now.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstitutionList {
    pub institutions: Vec<InstitutionSnapshot>,
}

/// A state to signal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// `open`, `closing` or `closed` (`unreachable` and `offline-only` are
    /// detected or configured, never signalled).
    #[schema(value_type = InstitutionState)]
    state: String,
    /// Recorded with the transition; "set through the API" when absent.
    reason: Option<String>,
}

/// A state signalled.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChanged {
    pub institution: String,
    /// The state before.
    #[schema(value_type = InstitutionState)]
    pub previous: &'static str,
    /// The state signalled.
    #[schema(value_type = InstitutionState)]
    pub state: &'static str,
}

/// An institution's SAF replay paused or resumed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafPaused {
    pub institution: String,
    pub saf_paused: bool,
}

/// One store-and-forward item and what it waits behind.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafItem {
    #[serde(flatten)]
    pub item: saf::Item,
    /// The earlier undelivered item of the same account, if any.
    pub waits_behind: Option<i64>,
}

/// A page of store-and-forward items, in queue order.
#[derive(Debug, Serialize, ToSchema)]
pub struct SafList {
    pub items: Vec<SafItem>,
    /// Pass as `after` for the next page; null when the page is empty.
    pub next_after: Option<i64>,
}

/// A dead letter back in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    pub seq: i64,
    /// Always `pending`.
    #[schema(value_type = saf::ItemState)]
    pub state: &'static str,
}

/// Institutions with state, SAF depth and current balance file.
#[utoipa::path(get, path = "/api/institutions", responses(
    (status = OK, body = InstitutionList),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn institutions(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<InstitutionList>, ApiError> {
    let mut institutions = api.snapshots().await?;
    institutions.retain(|i| actor.sees_institution(&i.id));
    Ok(Json(InstitutionList { institutions }))
}

/// Signal a state (open, closing, closed).
#[utoipa::path(post, path = "/api/institutions/{id}/state",
    params(("id" = String, Path, description = "the institution")),
    request_body = StateChange,
    responses(
        (status = OK, description = "the previous and the new state", body = StateChanged),
        (status = BAD_REQUEST, description = "not JSON (plain text)"),
        (status = NOT_FOUND, description = "no such institution", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
        (status = UNPROCESSABLE_ENTITY, description = "a state that cannot be signalled, or an offline-only institution (plain text when the body is not this object)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn set_state(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Json(change): Json<StateChange>,
) -> Result<Json<StateChanged>, ApiError> {
    own_institution(&actor, &id)?;
    let to: InstitutionState = change.state.parse()?;
    let reason = change
        .reason
        .unwrap_or_else(|| "set through the API".into());
    let previous = api
        .hub
        .institutions()
        .set_state(&id, to, Source::Api, &reason)
        .await?;
    let entry = NewEntry::new(&actor, Action::InstitutionState, "institution", &id)
        .before(&json!({ "state": previous.as_str() }))
        .after(&json!({ "state": to.as_str(), "reason": reason }));
    api.access.audit(entry).await?;
    Ok(Json(StateChanged {
        institution: id,
        previous: previous.as_str(),
        state: to.as_str(),
    }))
}

/// Stop the institution's SAF replay.
#[utoipa::path(post, path = "/api/institutions/{id}/saf/pause",
    params(("id" = String, Path, description = "the institution")),
    responses(
        (status = OK, description = "paused", body = SafPaused),
        (status = NOT_FOUND, description = "no such institution", body = ErrorBody),
    ),
)]
pub(super) async fn pause(
    api: State<Api>,
    actor: Extension<Actor>,
    id: Path<String>,
) -> Result<Json<SafPaused>, ApiError> {
    set_paused(api, actor, id, true).await
}

/// Let the institution's SAF replay run.
#[utoipa::path(post, path = "/api/institutions/{id}/saf/resume",
    params(("id" = String, Path, description = "the institution")),
    responses(
        (status = OK, description = "resumed", body = SafPaused),
        (status = NOT_FOUND, description = "no such institution", body = ErrorBody),
    ),
)]
pub(super) async fn resume(
    api: State<Api>,
    actor: Extension<Actor>,
    id: Path<String>,
) -> Result<Json<SafPaused>, ApiError> {
    set_paused(api, actor, id, false).await
}

async fn set_paused(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    saf_paused: bool,
) -> Result<Json<SafPaused>, ApiError> {
    own_institution(&actor, &id)?;
    api.hub
        .institutions()
        .set_paused(&id, saf_paused, Source::Api)
        .await?;
    let action = if saf_paused {
        Action::SafPause
    } else {
        Action::SafResume
    };
    let entry = NewEntry::new(&actor, action, "institution", &id);
    api.access.audit(entry).await?;
    Ok(Json(SafPaused {
        institution: id,
        saf_paused,
    }))
}

/// Upload a balance file (streamed; applied whole or refused whole).
///
/// The body is the file in the institution's configured format, of any size.
#[utoipa::path(post, path = "/api/institutions/{id}/balances",
    params(
        ("id" = String, Path, description = "the institution"),
        ("X-As-Of" = Option<String>, Header, format = DateTime,
            description = "the file's as-of (RFC 3339) when the file carries none"),
    ),
    request_body(description = "the balance file",
        content(("text/csv"), ("application/xml"), ("application/octet-stream"))),
    responses(
        (status = OK, description = "applied", body = Applied),
        (status = BAD_REQUEST, description = "X-As-Of is not a time, or the body cannot be read", body = ErrorBody),
        (status = NOT_FOUND, description = "no such institution", body = ErrorBody),
        (status = CONFLICT, description = "older than the current file", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "rejected, every problem listed (Rejected), or no balance format configured (Error); the previous balances stay in use", body = Body),
        (status = SERVICE_UNAVAILABLE, description = "the balances cannot be stored", body = ErrorBody),
    ),
)]
pub(super) async fn upload_balances(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Applied>, ApiError> {
    own_institution(&actor, &id)?;
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
    let applied = crate::backoffice::balances::upload(
        &api.hub,
        &api.institutions,
        &api.access,
        &actor,
        &id,
        reader,
        as_of,
    )
    .await?;
    Ok(Json(applied?))
}

/// Transactions by card, account, institution, terminal, RRN, STAN, time
/// range, response code and decided-by, newest first, a page at a time.
///
/// The card number travels in the body, never in a URL.
#[utoipa::path(post, path = "/api/transactions/search",
    request_body = Criteria,
    responses(
        (status = OK, description = "one page", body = Page),
        (status = BAD_REQUEST, description = "not JSON", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "a criterion is malformed; field names it", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn search(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    criteria: Result<Json<Criteria>, JsonRejection>,
) -> Result<Json<Page>, ApiError> {
    let Json(mut criteria) = criteria.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    criteria.institution = actor
        .scoped_institution(criteria.institution)
        .map_err(|_| forbidden(&actor))?;
    let cards = api.hub.cards().clone();
    let query = criteria
        .compile(|pan| cards.hash(pan))
        .map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, &e, e.field))?;
    let store = api.hub.store().clone();
    let mut page = tokio::task::spawn_blocking(move || query.run(&store)).await??;
    page.transactions
        .retain(|t| actor.sees_transaction(t.institution.as_deref()));
    Ok(Json(page))
}

/// The whole story of one transaction: its row, reversals, retransmissions
/// and late answers referring to it, its shadow-balance movement, its
/// store-and-forward deliveries (card numbers masked).
#[utoipa::path(get, path = "/api/transactions/{id}",
    params(("id" = TxnId, Path, description = "cardhub's transaction id")),
    responses(
        (status = OK, description = "the story", body = Story),
        (status = BAD_REQUEST, description = "not a transaction id", body = ErrorBody),
        (status = NOT_FOUND, description = "no such transaction", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn transaction(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Story>, ApiError> {
    let Ok(txn_id) = id.parse::<TxnId>() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a transaction id (16 hex digits)"),
        ));
    };
    let store = api.hub.store().clone();
    let story =
        tokio::task::spawn_blocking(move || crate::backoffice::story(&store, txn_id)).await??;
    story
        .filter(|s| actor.sees_transaction(s.transaction.institution.as_deref()))
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no transaction {id}")))
}

/// Store-and-forward items, in queue order, with what each waits behind.
#[utoipa::path(get, path = "/api/saf", params(saf::Filter), responses(
    (status = OK, description = "a page of items", body = SafList),
    (status = BAD_REQUEST, description = "a parameter is malformed (plain text)"),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn saf_list(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Query(mut filter): Query<saf::Filter>,
) -> Result<Json<SafList>, ApiError> {
    filter.institution = actor
        .scoped_institution(filter.institution)
        .map_err(|_| forbidden(&actor))?;
    let store = api.hub.store().clone();
    let items = tokio::task::spawn_blocking(move || saf::list(&store, &filter)).await??;
    let next_after = items.last().map(|(i, _)| i.seq);
    let items = items
        .into_iter()
        .filter(|(item, _)| actor.sees_institution(&item.institution))
        .map(|(item, waits_behind)| SafItem { item, waits_behind })
        .collect();
    Ok(Json(SafList { items, next_after }))
}

/// Put a dead letter back into the queue with fresh attempts.
#[utoipa::path(post, path = "/api/saf/{seq}/requeue",
    params(("seq" = i64, Path, description = "the item's sequence number")),
    responses(
        (status = OK, description = "pending again", body = Requeued),
        (status = NOT_FOUND, description = "no such dead letter", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn requeue(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(seq): Path<i64>,
) -> Result<Json<Requeued>, ApiError> {
    if !crate::backoffice::saf::requeue(&api.hub, &actor, seq).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dead letter {seq}"),
        ));
    }
    Ok(Json(Requeued {
        seq,
        state: saf::ItemState::Pending.as_str(),
    }))
}

/// Refuses, as unknown, an institution the actor may not see.
fn own_institution(actor: &Actor, id: &str) -> Result<(), ApiError> {
    if actor.sees_institution(id) {
        Ok(())
    } else {
        Err(StateError::UnknownInstitution(id.into()).into())
    }
}
