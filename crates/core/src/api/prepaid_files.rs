//! The prepaid file and attestation routes under `/api/prepaid/`: load
//! files (all or nothing, every bad line listed), the daily accounting
//! export per orderer, and the attestation of small-purchase purchases.
//! Thin calls of [`crate::prepaid::Ledger`] (`load_file`, `export`,
//! `attestation`), which the CLI calls too.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, Body, ErrorBody};
use super::server::Api;
use crate::access::Actor;
use crate::access::audit::{Action, NewEntry};
use crate::prepaid::attestation::{AttestationEvent, UnattestedPurchase};
use crate::prepaid::export::ExportFormat;
use crate::prepaid::load_file::{LoadReport, MAX_LOAD_FILE_BYTES};

/// A load file booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadFileBooked {
    /// Load lines in the file.
    pub lines: u64,
    /// Loads booked now.
    pub booked: u64,
    /// Lines an earlier import of the same references booked: skipped.
    pub repeats: u64,
    /// Sums booked now per currency, e.g. `1250.00 EUR`.
    pub totals: Vec<String>,
    /// The cards their first load activated (masked).
    pub activated: Vec<String>,
}

impl From<LoadReport> for LoadFileBooked {
    fn from(r: LoadReport) -> Self {
        LoadFileBooked {
            lines: r.lines,
            booked: r.booked,
            repeats: r.repeats,
            totals: r.totals.iter().map(ToString::to_string).collect(),
            activated: r.activated,
        }
    }
}

/// Which day's export, in which format.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The UTC day, `YYYY-MM-DD`.
    day: String,
    /// `csv` (default) or `fixed`.
    format: Option<String>,
    /// RFC 3339: export as the ledger stood then (default: now); the same
    /// `as_of` gives the same bytes.
    as_of: Option<String>,
}

/// An attestation or a dispute of a purchase.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationIn {
    /// `attested` or `disputed`.
    #[schema(pattern = "^(attested|disputed)$")]
    verdict: String,
    /// Who attests or disputes. Recorded as given for the `[api]` machine
    /// token; a user token records its own user instead.
    #[schema(min_length = 1, max_length = 64)]
    user: String,
    /// Attestation: the purpose or cost centre; dispute: the reason.
    #[schema(min_length = 1, max_length = 200)]
    comment: String,
}

/// An attestation or dispute recorded (append-only).
#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationOut {
    pub entry: i64,
    pub reference: String,
    /// `attested` or `disputed`.
    pub state: &'static str,
    pub user: String,
    pub comment: String,
    pub recorded_at_us: i64,
}

impl From<AttestationEvent> for AttestationOut {
    fn from(e: AttestationEvent) -> Self {
        AttestationOut {
            entry: e.entry,
            reference: e.reference,
            state: e.state.as_str(),
            user: e.user,
            comment: e.comment,
            recorded_at_us: e.recorded_at_us,
        }
    }
}

/// A purchase not attested (open or disputed).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnattestedOut {
    pub entry: i64,
    pub reference: String,
    pub card_account: String,
    pub booked_at_us: i64,
    /// Minor units taken from the card.
    pub amount_minor: u64,
    /// ISO 4217 numeric.
    pub currency: u16,
    /// The card acceptor (DE 42), when the authorization carried one.
    pub merchant: Option<String>,
    /// The card acceptor's name and location (DE 43), when known.
    pub merchant_name: Option<String>,
    /// `open` or `disputed`.
    pub state: &'static str,
    /// The dispute's reason.
    pub comment: Option<String>,
}

impl From<UnattestedPurchase> for UnattestedOut {
    fn from(p: UnattestedPurchase) -> Self {
        UnattestedOut {
            entry: p.entry,
            reference: p.reference,
            card_account: p.card_account,
            booked_at_us: p.booked_at_us,
            amount_minor: p.amount.minor,
            currency: p.amount.currency.numeric,
            merchant: p.merchant,
            merchant_name: p.merchant_name,
            state: p.state.as_str(),
            comment: p.comment,
        }
    }
}

/// How old an unattested purchase must be to be listed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnattestedQuery {
    /// Days since the purchase was booked (default 0: all).
    older_than_days: Option<u32>,
}

/// Import a load file (CSV): every line checked, then all booked in one
/// transaction, or none.
#[utoipa::path(post, path = "/api/prepaid/load-files",
    request_body(description = "the load file (docs/prepaid.md, Load file)", content(("text/csv"))),
    responses(
        (status = OK, body = LoadFileBooked),
        (status = BAD_REQUEST, description = "the body cannot be read", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "larger than 256 MiB", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "refused, every problem listed by line and column; nothing booked", body = Body),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer; nothing booked (sending the file again is safe)", body = ErrorBody),
    ),
)]
pub(super) async fn load_file(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    body: axum::body::Body,
) -> Result<Json<LoadFileBooked>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("reading the load file: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > MAX_LOAD_FILE_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the load file is larger than 256 MiB; nothing booked",
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let report = api.ledger.import_load_file(api.hub.cards(), &bytes).await;
    let entry = NewEntry::new(&actor, Action::PrepaidLoadFile, "load-file", "upload");
    let entry = match &report {
        Ok(_) => entry,
        Err(e) => entry
            .after(&serde_json::json!({ "refused": e.to_string() }))
            .outcome(crate::access::audit::Outcome::Failed),
    };
    api.record(entry).await?;
    let report = report?;
    Ok(Json(report.into()))
}

/// An orderer's accounting export of one UTC day (CSV or fixed width).
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}/export",
    params(("id" = String, Path, description = "the orderer"), ExportQuery),
    responses(
        (status = OK, description = "the file", content(("text/csv"), ("text/plain"))),
        (status = BAD_REQUEST, description = "`day` is missing (plain text)"),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "a malformed day, format or as_of; field names it", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn export(
    State(api): State<Api>,
    Path(orderer): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let bad = |field: &'static str, reason: &str| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field} {reason}"),
            field,
        )
    };
    let day: jiff::civil::Date = q.day.parse().map_err(|_| bad("day", "is not YYYY-MM-DD"))?;
    let (format, content_type) = match q.format.as_deref() {
        None | Some("csv") => (ExportFormat::Csv, "text/csv; charset=utf-8"),
        Some("fixed") => (ExportFormat::FixedWidth, "text/plain; charset=us-ascii"),
        Some(_) => return Err(bad("format", "is neither csv nor fixed")),
    };
    let as_of = match q.as_of.as_deref() {
        None => jiff::Timestamp::now(),
        Some(t) => t
            .parse()
            .map_err(|_| bad("as_of", "is not an RFC 3339 time"))?,
    };
    let file = api
        .read_ledger(move |l| l.export_day(&orderer, day, format, as_of.as_microsecond()))
        .await?;
    Ok(([(header::CONTENT_TYPE, content_type)], file).into_response())
}

/// Attest a small-purchase purchase (its purpose or cost centre) or
/// dispute it (with a reason); recorded append-only, the latest verdict
/// counts.
#[utoipa::path(post, path = "/api/prepaid/orderers/{id}/purchases/{reference}/attestation",
    params(("id" = String, Path, description = "the orderer"),
        ("reference" = String, Path, description = "the purchase's reference (its capture's transaction id)")),
    request_body = AttestationIn,
    responses(
        (status = OK, body = AttestationOut),
        (status = BAD_REQUEST, description = "not JSON (plain text)"),
        (status = NOT_FOUND, description = "no such orderer or purchase of it", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
        (status = UNPROCESSABLE_ENTITY, description = "not a purchase on a small-purchase card, or a malformed field (plain text when the body is not this object)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn attestation(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path((orderer, reference)): Path<(String, String)>,
    Json(a): Json<AttestationIn>,
) -> Result<Json<AttestationOut>, ApiError> {
    let event = api
        .teller(&actor)
        .attestation(&orderer, &reference, &a.verdict, &a.comment, &a.user)
        .await?;
    Ok(Json(event.into()))
}

/// An orderer's purchases not attested (open or disputed), oldest first.
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}/unattested",
    params(("id" = String, Path, description = "the orderer"), UnattestedQuery),
    responses(
        (status = OK, body = Vec<UnattestedOut>),
        (status = BAD_REQUEST, description = "older_than_days is not a number (plain text)"),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn unattested(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(orderer): Path<String>,
    Query(q): Query<UnattestedQuery>,
) -> Result<Json<Vec<UnattestedOut>>, ApiError> {
    api.ledger.scope_orderer(&actor, &orderer)?;
    let now = jiff::Timestamp::now().as_microsecond();
    let days = q.older_than_days.unwrap_or(0);
    let list = api
        .read_ledger(move |l| l.unattested(&orderer, days, now))
        .await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}
