//! The prepaid card-order routes under `/api/prepaid/`: a programme's card
//! range, orders of cards and their states, the card production and PIN
//! mailer files, PIN reorders. Thin calls of
//! [`crate::prepaid::Ledger`]'s order service (`prepaid::orders`), which
//! the CLI calls too. The production file carries full PANs for the card
//! producer: the API never sends it over HTTP, it writes it (mode 0600)
//! into `[prepaid] outbox` and answers where.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::server::Api;
use crate::access::Actor;
use crate::access::audit::{Action, NewEntry};
use crate::iso8583::fields::Pan;
use crate::prepaid::orders::{CardRange, NewOrder, Order, OrderSummary, PinRequest, Written};
use crate::standin::config::InstitutionMode;

/// The card range a programme issues its cards from.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardRangeIo {
    /// BIN and issuer digits every PAN starts with.
    #[schema(pattern = "^[0-9]{6,11}$")]
    prefix: String,
    /// Digits of a PAN, check digit included.
    #[schema(minimum = 12, maximum = 19)]
    pan_length: u8,
    /// Months from the order to the card's expiry month.
    #[schema(minimum = 1, maximum = 120)]
    validity_months: u8,
    /// The `[[institution]]` (mode `prepaid`) the cards belong to.
    institution: String,
    /// The cards' `[limits.<profile>]`.
    profile: String,
}

/// An order of cards.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    orderer: String,
    programme: String,
    /// Cards to issue.
    #[schema(minimum = 1, maximum = 10000)]
    count: u32,
    /// Personal cards: one holder name per card. Absent: impersonal cards.
    holders: Option<Vec<String>>,
    /// Idempotency key and stem of the card accounts (`<reference>-NNNNN`).
    #[schema(pattern = "^[A-Za-z0-9._-]{1,35}$")]
    reference: String,
}

/// An order recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderedOut {
    pub id: i64,
    /// The reference was ordered before: nothing was created again.
    pub repeat: bool,
}

/// An order without its cards.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummaryOut {
    pub id: i64,
    pub reference: String,
    pub orderer: String,
    pub programme: String,
    pub personal: bool,
    pub count: u32,
    /// `ordered`, `produced`, `delivered` or `active`.
    #[schema(pattern = "^(ordered|produced|delivered|active)$")]
    pub state: &'static str,
    pub ordered_at_us: i64,
    pub produced_at_us: Option<i64>,
    pub delivered_at_us: Option<i64>,
    /// Cards with a load booked.
    pub loaded: u32,
}

impl From<OrderSummary> for OrderSummaryOut {
    fn from(s: OrderSummary) -> Self {
        OrderSummaryOut {
            id: s.id,
            reference: s.reference,
            orderer: s.orderer,
            programme: s.programme,
            personal: s.personal,
            count: s.count,
            state: s.state.as_str(),
            ordered_at_us: s.ordered_at_us,
            produced_at_us: s.produced_at_us,
            delivered_at_us: s.delivered_at_us,
            loaded: s.loaded,
        }
    }
}

/// One card of an order (masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderCardOut {
    pub sequence: u32,
    /// First 6 + last 4 digits.
    pub pan_masked: String,
    pub account: String,
    /// `YYMM`.
    pub expiry: String,
    pub holder: Option<String>,
    /// Its status in the card registry (null: no longer registered).
    pub status: Option<String>,
    pub loaded: bool,
}

/// An order and its cards.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOut {
    #[serde(flatten)]
    pub summary: OrderSummaryOut,
    pub cards: Vec<OrderCardOut>,
}

impl From<Order> for OrderOut {
    fn from(o: Order) -> Self {
        OrderOut {
            summary: o.summary.into(),
            cards: o
                .cards
                .into_iter()
                .map(|c| OrderCardOut {
                    sequence: c.sequence,
                    pan_masked: c.pan_masked,
                    account: c.account,
                    expiry: c.expiry.to_string(),
                    holder: c.holder,
                    status: c.status.map(|s| s.as_str().to_string()),
                    loaded: c.loaded,
                })
                .collect(),
        }
    }
}

/// A producer's file written into the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrittenOut {
    /// The order's id (production file) or the mailer's (PIN mailer).
    pub id: i64,
    /// Its name in `[prepaid] outbox`.
    pub file: String,
    /// Detail records: one per card.
    pub records: usize,
    pub bytes: usize,
}

/// A card whose PIN is to be sent again (its number in the body, never a URL).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinReorderIn {
    #[schema(pattern = "^[0-9]{12,19}$")]
    pan: String,
}

/// A PIN request for the producer's HSM.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinRequestOut {
    pub id: i64,
    /// `PIN` and 13 digits, as in the PIN mailer file.
    pub reference: String,
    /// A reorder for the card was pending already: it is that one.
    pub repeat: bool,
}

impl From<PinRequest> for PinRequestOut {
    fn from(p: PinRequest) -> Self {
        PinRequestOut {
            id: p.id,
            reference: p.reference,
            repeat: p.repeat,
        }
    }
}

/// Set (or change) the card range a programme issues its cards from.
#[utoipa::path(put, path = "/api/prepaid/programmes/{id}/card-range",
    params(("id" = String, Path, description = "the programme")),
    request_body = CardRangeIo,
    responses(
        (status = OK, body = CardRangeIo),
        (status = BAD_REQUEST, description = "not JSON (plain text)"),
        (status = NOT_FOUND, description = "no such programme", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
        (status = UNPROCESSABLE_ENTITY, description = "a field is malformed, or the institution is not one of mode prepaid (plain text when the body is not this object)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn set_card_range(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(programme): Path<String>,
    Json(r): Json<CardRangeIo>,
) -> Result<Json<CardRangeIo>, ApiError> {
    let prepaid = api
        .institutions
        .iter()
        .any(|i| i.id == r.institution && i.mode == InstitutionMode::Prepaid);
    if !prepaid {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "institution {:?} is not configured with mode \"prepaid\"",
                r.institution
            ),
            "institution",
        ));
    }
    let range = CardRange {
        prefix: r.prefix,
        pan_length: r.pan_length,
        validity_months: r.validity_months,
        institution: r.institution,
        profile: r.profile,
    };
    api.ledger.set_card_range(&programme, range.clone()).await?;
    let entry = NewEntry::new(&actor, Action::PrepaidCardRange, "programme", &programme).after(
        &serde_json::json!({ "prefix": range.prefix, "pan_length": range.pan_length,
            "institution": range.institution }),
    );
    api.record(entry).await?;
    Ok(Json(CardRangeIo {
        prefix: range.prefix,
        pan_length: range.pan_length,
        validity_months: range.validity_months,
        institution: range.institution,
        profile: range.profile,
    }))
}

/// Order cards: registered `inactive` and empty, their card accounts opened.
#[utoipa::path(post, path = "/api/prepaid/orders", request_body = OrderIn, responses(
    (status = CREATED, body = OrderedOut),
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = NOT_FOUND, description = "no such programme", body = ErrorBody),
    (status = CONFLICT, description = "the reference is another order, or the range is busy (retry)", body = ErrorBody),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = UNPROCESSABLE_ENTITY, description = "refused, nothing created: a field, a name that cannot be embossed, no card range, another orderer's programme, range exhausted (plain text when the body is not this object)", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn order_cards(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(o): Json<OrderIn>,
) -> Result<(StatusCode, Json<OrderedOut>), ApiError> {
    let order = NewOrder {
        orderer: o.orderer,
        programme: o.programme,
        count: o.count,
        holders: o.holders,
        reference: o.reference,
    };
    let ordered = api.teller(&actor).order_cards(order).await?;
    let status = if ordered.repeat {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(OrderedOut {
            id: ordered.id,
            repeat: ordered.repeat,
        }),
    ))
}

/// The card orders of an orderer.
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}/orders",
    params(("id" = String, Path, description = "the orderer")),
    responses(
        (status = OK, body = Vec<OrderSummaryOut>),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn orders(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(orderer): Path<String>,
) -> Result<Json<Vec<OrderSummaryOut>>, ApiError> {
    api.ledger.scope_orderer(&actor, &orderer)?;
    let orders = api
        .read_ledger(move |l| {
            l.orderer(&orderer)?;
            l.orders(&orderer)
        })
        .await?;
    Ok(Json(orders.into_iter().map(Into::into).collect()))
}

/// An order, its state and its cards (masked).
#[utoipa::path(get, path = "/api/prepaid/orders/{id}",
    params(("id" = i64, Path, description = "the order")),
    responses(
        (status = BAD_REQUEST, description = "the id is not a number (plain text)"),
        (status = OK, body = OrderOut),
        (status = NOT_FOUND, description = "no such order", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn order(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<OrderOut>, ApiError> {
    api.ledger.scope_order(&actor, id)?;
    let cards = api.hub.cards().clone();
    let order = api.read_ledger(move |l| l.order(&cards, id)).await?;
    Ok(Json(order.into()))
}

/// Write the order's card production file into the outbox (`ordered` →
/// `produced`; again while `produced`: the same bytes, a new file).
#[utoipa::path(post, path = "/api/prepaid/orders/{id}/production-file",
    params(("id" = i64, Path, description = "the order")),
    responses(
        (status = BAD_REQUEST, description = "the id is not a number (plain text)"),
        (status = OK, body = WrittenOut),
        (status = NOT_FOUND, description = "no such order", body = ErrorBody),
        (status = CONFLICT, description = "the order is delivered already", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "no `[prepaid] outbox` is configured", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store or the outbox cannot be written", body = ErrorBody),
    ),
)]
pub(super) async fn production_file(
    State(api): State<Api>,
    Path(id): Path<i64>,
) -> Result<Json<WrittenOut>, ApiError> {
    let (path, file) = api.outbox_file(&format!("production-{id}"))?;
    let written = api
        .ledger
        .write_production_file(api.hub.cards(), id, &path)
        .await?;
    Ok(Json(written_out(written, file)))
}

/// The order reached the orderer (`produced` → `delivered`).
#[utoipa::path(post, path = "/api/prepaid/orders/{id}/delivered",
    params(("id" = i64, Path, description = "the order")),
    responses(
        (status = BAD_REQUEST, description = "the id is not a number (plain text)"),
        (status = OK, body = OrderSummaryOut),
        (status = NOT_FOUND, description = "no such order", body = ErrorBody),
        (status = CONFLICT, description = "the order is not produced", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn delivered(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<OrderSummaryOut>, ApiError> {
    api.ledger.scope_order(&actor, id)?;
    let delivered = api.ledger.mark_delivered(id).await?;
    let entry = NewEntry::new(&actor, Action::PrepaidDelivered, "order", id.to_string());
    api.record(entry).await?;
    Ok(Json(delivered.into()))
}

/// Send a card's PIN again: in the next PIN mailer file.
#[utoipa::path(post, path = "/api/prepaid/pin-reorders", request_body = PinReorderIn, responses(
    (status = OK, body = PinRequestOut),
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = NOT_FOUND, description = "no such card", body = ErrorBody),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = UNPROCESSABLE_ENTITY, description = "refused (lost, stolen, closed, expired, replaced, or not issued by an order), or a malformed number", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn reorder_pin(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(r): Json<PinReorderIn>,
) -> Result<Json<PinRequestOut>, ApiError> {
    let pan = Pan::new(&r.pan).map_err(|_| {
        ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pan is not a card number of 12 to 19 digits",
            "pan",
        )
    })?;
    let request = api.teller(&actor).reorder_pin(&pan).await?;
    Ok(Json(request.into()))
}

/// Write the next PIN mailer file (every pending PIN request) into the outbox.
#[utoipa::path(post, path = "/api/prepaid/pin-mailers", responses(
    (status = OK, body = WrittenOut),
    (status = NO_CONTENT, description = "no PIN request is pending: no file"),
    (status = UNPROCESSABLE_ENTITY, description = "no `[prepaid] outbox` is configured", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store or the outbox cannot be written", body = ErrorBody),
))]
pub(super) async fn pin_mailer(
    State(api): State<Api>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let stamp = jiff::Timestamp::now().as_microsecond();
    let (path, file) = api.outbox_file(&format!("pin-mailer-{stamp}"))?;
    Ok(match api.ledger.write_pin_mailer_file(&path).await? {
        Some(written) => Json(written_out(written, file)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

fn written_out(w: Written, file: String) -> WrittenOut {
    WrittenOut {
        id: w.id,
        file,
        records: w.records,
        bytes: w.bytes,
    }
}

impl Api {
    /// A new file `<stem>-<n>.txt` in `[prepaid] outbox` (created when
    /// missing): its path and name.
    fn outbox_file(&self, stem: &str) -> Result<(std::path::PathBuf, String), ApiError> {
        let Some(outbox) = &self.outbox else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no [prepaid] outbox is configured: the API writes producer files only there",
            ));
        };
        std::fs::create_dir_all(outbox).map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("outbox {}: {e}", outbox.display()),
            )
        })?;
        let taken = |name: &str| outbox.join(name).exists();
        let name = (1..)
            .map(|n| format!("{stem}-{n}.txt"))
            .find(|name| !taken(name))
            .unwrap_or_default();
        Ok((outbox.join(&name), name))
    }
}
