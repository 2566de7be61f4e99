//! The web application: server-rendered pages for operators, served by
//! `cardhub serve` on the API's address (mounted at `/` next to the JSON
//! API, outside its OpenAPI document). Pages call the same service layer
//! as the JSON API and the CLI (`backoffice`, `standin`, the hub's
//! institutions and metrics); templates (`crates/core/templates/`) are
//! compiled and checked at build time by askama, which escapes every value.
//!
//! - `GET /` — the dashboard; `GET /live` — its live part, re-fetched every
//!   2 s by `/static/live.js` ([`dashboard`])
//! - `GET /transactions`, `POST /transactions` — search (the card in the
//!   form body, never in a URL); `GET /transactions/{id}` — a story
//!   ([`transactions`])
//! - `GET /institutions` — states, breaker, balance files ([`institutions`])
//! - `GET /saf` — the store-and-forward queue and its dead letters ([`saf`])
//! - `GET /static/...` — CSS and JS, from the binary ([`assets`])
//!
//! Card numbers appear masked only (first 6 + last 4), as the journal
//! stores them. No asset comes from anywhere but this server.

mod assets;
mod dashboard;
mod institutions;
mod saf;
mod transactions;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tracing::warn;

use crate::hub::pipeline::Hub;
use crate::standin::config::InstitutionConfig;
use crate::store::StoreError;

/// What every page handler shares.
#[derive(Clone)]
pub struct Web {
    hub: Arc<Hub>,
    /// The configured institutions (their names).
    institutions: Arc<[InstitutionConfig]>,
}

/// The pages and their assets, ready to merge into the API's router.
pub fn router(hub: Arc<Hub>, institutions: Arc<[InstitutionConfig]>) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/live", get(dashboard::live))
        .route(
            "/transactions",
            get(transactions::form).post(transactions::search),
        )
        .route("/transactions/{id}", get(transactions::story))
        .route("/institutions", get(institutions::page))
        .route("/saf", get(saf::page))
        .route("/static/{file}", get(assets::file))
        .with_state(Web { hub, institutions })
}

/// The sections of the navigation, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Transactions,
    Institutions,
    Saf,
}

/// Why a page cannot be shown; each renders as an error page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the store does not answer: {0}")]
    Store(#[from] StoreError),
    #[error("a page task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("a page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Task(_) | WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    section: Option<Section>,
    title: &'a str,
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            warn!(error = %self, "web page failed");
        }
        let page = ErrorPage {
            section: None,
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
        };
        match page.render() {
            Ok(body) => (status, Html(body)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// A rendered page (or fragment) as `text/html`, never cached: every page
/// shows the hub now.
fn html(page: &impl Template) -> Result<Response, WebError> {
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(page.render()?)).into_response())
}

/// Runs a store read off the async runtime.
async fn read<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    Ok(tokio::task::spawn_blocking(read).await??)
}

/// Minor units as a decimal amount with its currency ("12.50 USD"), or the
/// bare minor units with the numeric code when the currency is unknown.
fn amount(minor: i64, currency: u16) -> String {
    match (
        u64::try_from(minor),
        crate::money::Currency::from_numeric(currency),
    ) {
        (Ok(minor), Ok(c)) => crate::money::Money::new(minor, c).to_string(),
        _ => format!("{minor} (minor units, currency {currency})"),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS.mmm` UTC (as given when it
/// is not one).
fn moment(rfc3339: &str) -> String {
    rfc3339.parse::<jiff::Timestamp>().map_or_else(
        |_| rfc3339.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
    )
}

/// A time in microseconds as `YYYY-MM-DD HH:MM:SS` UTC.
fn time_us(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us).map_or_else(
        |_| us.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
