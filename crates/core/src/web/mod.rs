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
//! - `POST /institutions/{id}/state` — close or open one, with a reason
//! - `GET /saf` — the store-and-forward queue and its dead letters ([`saf`]);
//!   `POST /saf/{seq}/requeue` — a dead letter back in the queue
//! - `GET /cards`, `POST /cards` — search by masked PAN or account;
//!   `GET /cards/{key}` — a card; `POST /cards/{key}` — block, unblock,
//!   another limits profile, with a reason ([`cards`])
//! - `GET /audit` — the audit log, searched and paged ([`audit`])
//! - `GET /password`, `POST /password` — change one's own password ([`password`])
//! - `GET /balances`, `POST /balances/{id}` — upload an institution's
//!   balance file, applied whole or refused with every line error ([`balances`])
//! - `GET /prepaid/...`, `POST /prepaid/...` — an orderer's cards, a card's
//!   statement, loads, moves, lost-card replacements, card orders, PIN
//!   reorders, attestation, the accounting export ([`prepaid`]), for bank
//!   admins, auditors (reading) and the orderer's own users
//! - `GET /users`, `POST /users` — the users an admin manages, adding one;
//!   `POST /users/{name}/disable`, `.../enable`, `.../role` ([`users`]),
//!   for bank admins and orderer admins (their own orderer's users)
//! - `GET /login`, `POST /login`, `POST /logout` — the session ([`session`])
//! - `GET /static/...` — CSS and JS, from the binary ([`assets`])
//!
//! Every page but the login page needs a login session ([`session::Signed`],
//! an extractor: no session, or an expired one, redirects to `/login`);
//! every form carries a CSRF token that every POST checks before anything
//! changes (403 otherwise). The bank's pages refuse orderer roles (403),
//! bank operators see their own institutions only, auditors read and
//! change nothing; the prepaid pages ([`session::PrepaidSigned`]) admit
//! orderers' users (their own orderer only) and refuse bank operators. Card numbers appear masked only (first 6 +
//! last 4), as the journal stores them. No asset comes from anywhere but
//! this server.

mod assets;
mod audit;
mod balances;
mod cards;
mod dashboard;
mod institutions;
mod password;
mod prepaid;
mod saf;
mod session;
mod transactions;
mod users;

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tracing::warn;

use crate::access::{Access, AccessError};
use crate::backoffice::balances::BalancesError;
use crate::hub::pipeline::Hub;
use crate::prepaid::Ledger;
use crate::standin::balance_file::BalanceFileError;
use crate::standin::balances::BalanceError;
use crate::standin::config::InstitutionConfig;
use crate::standin::state::StateError;
use crate::store::StoreError;

/// What every page handler shares.
#[derive(Clone)]
pub struct Web {
    hub: Arc<Hub>,
    /// The configured institutions (their names).
    institutions: Arc<[InstitutionConfig]>,
    /// Login sessions and the audit log, with `[web]`'s timeouts.
    access: Access,
    /// Whether the pages are served over TLS (the cookie is then `Secure`).
    tls: bool,
    /// The prepaid ledger's service layer, on the hub's store.
    ledger: Ledger,
}

/// The peer's address, which the server puts on every request (for the
/// audit log and the login lockout).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<IpAddr>);

/// The pages and their assets, ready to merge into the API's router.
pub fn router(
    hub: Arc<Hub>,
    institutions: Arc<[InstitutionConfig]>,
    access: Access,
    tls: bool,
    ledger: Ledger,
) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/live", get(dashboard::live))
        .route(
            "/transactions",
            get(transactions::form).post(transactions::search),
        )
        .route("/transactions/{id}", get(transactions::story))
        .route("/institutions", get(institutions::page))
        .route("/institutions/{id}/state", post(institutions::set_state))
        .route("/login", get(session::form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/saf", get(saf::page))
        .route("/saf/{seq}/requeue", post(saf::requeue))
        .route("/audit", get(audit::page))
        .route("/password", get(password::form).post(password::change))
        .route("/balances", get(balances::page))
        .route(
            "/balances/{id}",
            // Streamed and capped by the balance file reader, as the API's upload.
            post(balances::upload_file).layer(DefaultBodyLimit::disable()),
        )
        .route("/cards", get(cards::form).post(cards::search))
        .route("/cards/{key}", get(cards::page).post(cards::change))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{name}/disable", post(users::disable))
        .route("/users/{name}/enable", post(users::enable))
        .route("/users/{name}/role", post(users::set_role))
        .route("/static/{file}", get(assets::file))
        .merge(prepaid::routes())
        .with_state(Web {
            hub,
            institutions,
            access,
            tls,
            ledger,
        })
}

/// The sections of the navigation, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Transactions,
    Institutions,
    Saf,
    Cards,
    Audit,
    Balances,
    Password,
    Prepaid,
    Users,
}

/// The signed-in user, as the page header shows them.
pub(crate) struct Me {
    name: String,
    role: &'static str,
    /// Whether the user reads the prepaid pages.
    prepaid: bool,
    /// Whether the user is the bank's (else an orderer's).
    bank: bool,
    /// Whether the user manages users (bank and orderer admins).
    users: bool,
    /// The session's CSRF token, for the header's logout form.
    csrf: String,
}

/// What every page's frame shows: the section and who is signed in.
pub(crate) struct Chrome {
    section: Option<Section>,
    me: Option<Me>,
}

impl Chrome {
    fn new(section: Section, signed: &session::Signed) -> Chrome {
        Chrome {
            section: Some(section),
            me: Some(signed.me()),
        }
    }
}

/// Why a page cannot be shown; each renders as an error page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The user's role or tenant may not do this, or a form's CSRF token
    /// is missing or wrong.
    #[error("{0}")]
    Forbidden(String),
    /// A change that cannot be made (a state that cannot be signalled).
    #[error("{0}")]
    Unprocessable(String),
    /// A form's reference was used already for another change.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Access(AccessError),
    /// A balance file not applied for a reason of ours (the store, the
    /// configured format).
    #[error("{0}")]
    Balances(#[from] BalancesError),
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
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Access(AccessError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Access(AccessError::TooManyFailures { .. }) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Access(AccessError::Forbidden { .. }) => StatusCode::FORBIDDEN,
            WebError::Access(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Balances(BalancesError::UnknownInstitution(_)) => StatusCode::NOT_FOUND,
            WebError::Balances(BalancesError::Balance(
                BalanceError::Store(_) | BalanceError::File(BalanceFileError::Sink(_)),
            )) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Balances(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Task(_) | WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<AccessError> for WebError {
    fn from(e: AccessError) -> WebError {
        WebError::Access(e)
    }
}

impl From<StateError> for WebError {
    fn from(e: StateError) -> WebError {
        match e {
            StateError::UnknownInstitution(_) => WebError::NotFound(e.to_string()),
            StateError::Store(e) => WebError::Store(e),
            StateError::UnknownState(_)
            | StateError::NotSignallable(_)
            | StateError::OfflineOnly(_) => WebError::Unprocessable(e.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
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
            chrome: Chrome {
                section: None,
                me: None,
            },
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.to_string(),
        };
        match page.render() {
            Ok(body) => (status, SECURITY_HEADERS, Html(body)).into_response(),
            Err(_) => (status, self.to_string()).into_response(),
        }
    }
}

/// Sent with every page: nothing but this server's own scripts, styles and
/// forms; never framed (no clickjacking); never cached (every page shows
/// the hub now, and may show account data).
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::CACHE_CONTROL, "no-store"),
];

/// A rendered page (or fragment) as `text/html`, with [`SECURITY_HEADERS`].
fn html(page: &impl Template) -> Result<Response, WebError> {
    Ok((SECURITY_HEADERS, Html(page.render()?)).into_response())
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
