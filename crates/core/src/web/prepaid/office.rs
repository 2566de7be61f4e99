//! The orderer's office pages beside its cards: card orders and PIN
//! reorders (forms on the orderer's home), the attestation queue of its
//! small purchases, and the accounting export download (bank admins and
//! auditors). Each change goes through [`crate::prepaid::Teller`] as its JSON API route
//! does; tenants, CSRF and refusals as in [`super`].

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{Done, card_number, may_change, read_ledger, teller};
use crate::prepaid::Orderer;
use crate::prepaid::attestation::UnattestedPurchase;
use crate::prepaid::export::ExportFormat;
use crate::prepaid::orders::NewOrder;
use crate::web::session::PrepaidSigned;
use crate::web::{Chrome, SECURITY_HEADERS, Section, Web, WebError, html, time_us};

/// The office routes.
pub(super) fn routes() -> Router<Web> {
    Router::new()
        .route("/prepaid/orders", post(order_cards))
        .route("/prepaid/pin-reorders", post(reorder_pin))
        .route("/prepaid/orderers/{id}/export", get(export))
        .route("/prepaid/orderers/{id}/attestation", get(attestation_queue))
        .route(
            "/prepaid/orderers/{id}/purchases/{reference}/attestation",
            post(attest),
        )
}

/// The card order form as posted (cards without holders' names).
#[derive(Deserialize)]
pub(super) struct OrderForm {
    #[serde(default)]
    orderer: String,
    #[serde(default)]
    programme: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    csrf: String,
}

async fn order_cards(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Form(form): Form<OrderForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let count = form.count.trim().parse().map_err(|_| {
        WebError::Unprocessable(format!("{:?} is not a number of cards", form.count))
    })?;
    let orderer = form.orderer;
    let order = NewOrder {
        orderer: orderer.clone(),
        programme: form.programme,
        count,
        holders: None,
        reference: form.reference.trim().to_string(),
    };
    teller(&web, &signed).order_cards(order).await?;
    Ok(Redirect::to(&format!("/prepaid/orderers/{orderer}?done=ordered#orders")).into_response())
}

/// The PIN reorder form as posted: the card number in the body.
#[derive(Deserialize)]
pub(super) struct PinForm {
    #[serde(default)]
    pan: String,
    #[serde(default)]
    orderer: String,
    #[serde(default)]
    csrf: String,
}

async fn reorder_pin(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Form(form): Form<PinForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let pan = card_number("card", &form.pan)?;
    // The page to go back to.
    web.ledger.scope_orderer(signed.actor(), &form.orderer)?;
    teller(&web, &signed).reorder_pin(&pan).await?;
    let orderer = form.orderer;
    Ok(Redirect::to(&format!("/prepaid/orderers/{orderer}?done=pin")).into_response())
}

#[derive(Template)]
#[template(path = "prepaid_attestation.html")]
struct AttestationPage {
    chrome: Chrome,
    csrf: String,
    orderer: Orderer,
    /// Each purchase with its booking time and amount.
    purchases: Vec<(UnattestedPurchase, String, String)>,
    changes: bool,
    done: Option<&'static str>,
}

/// The orderer's purchases on small-purchase cards not attested yet (open
/// or disputed), oldest first, each with the attest-or-dispute form.
async fn attestation_queue(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    web.ledger.scope_orderer(signed.actor(), &id)?;
    let ledger = web.ledger.clone();
    let now = jiff::Timestamp::now().as_microsecond();
    let (orderer, purchases) =
        read_ledger(move || Ok((ledger.orderer(&id)?, ledger.unattested(&id, 0, now)?))).await?;
    html(&AttestationPage {
        chrome: Chrome::new(Section::Prepaid, &signed),
        csrf: signed.csrf().to_string(),
        orderer,
        purchases: purchases
            .into_iter()
            .map(|p| {
                let at = time_us(p.booked_at_us);
                let money = p.amount.to_string();
                (p, at, money)
            })
            .collect(),
        changes: signed.actor().role.changes_prepaid(),
        done: done.message(),
    })
}

/// The attest-or-dispute form as posted.
#[derive(Deserialize)]
pub(super) struct VerdictForm {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    csrf: String,
}

async fn attest(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path((id, reference)): Path<(String, String)>,
    Form(form): Form<VerdictForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let event = teller(&web, &signed)
        .attestation(&id, &reference, &form.verdict, form.comment.trim(), "")
        .await?;
    let done = event.state.as_str();
    Ok(Redirect::to(&format!("/prepaid/orderers/{id}/attestation?done={done}")).into_response())
}

/// `?day=YYYY-MM-DD`: the export's UTC day.
#[derive(Deserialize)]
pub(super) struct DayForm {
    #[serde(default)]
    day: String,
}

/// The accounting export (CSV) of an orderer's card postings of a UTC day,
/// as the ledger stands now, as an attachment: bank admins and auditors.
async fn export(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path(id): Path<String>,
    Query(q): Query<DayForm>,
) -> Result<Response, WebError> {
    if !signed.actor().role.reads_bank_prepaid() {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not download the accounting export",
            signed.actor().user,
            signed.actor().role.as_str()
        )));
    }
    web.ledger.scope_orderer(signed.actor(), &id)?;
    let day: jiff::civil::Date = q
        .day
        .trim()
        .parse()
        .map_err(|_| WebError::Unprocessable(format!("{:?} is not a day YYYY-MM-DD", q.day)))?;
    let (ledger, orderer) = (web.ledger.clone(), id.clone());
    let now = jiff::Timestamp::now().as_microsecond();
    let file =
        read_ledger(move || ledger.export_day(&orderer, day, ExportFormat::Csv, now)).await?;
    // The id is letters, digits, `-` and `_` (the ledger checks it).
    let disposition = format!("attachment; filename=\"{id}-{day}.csv\"");
    Ok((
        SECURITY_HEADERS,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file,
    )
        .into_response())
}
