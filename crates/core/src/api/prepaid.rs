//! The prepaid routes under `/api/prepaid/`: orderers and their
//! programmes, card accounts, loads, balance moves, lost-card replacement,
//! statements and the ledger's audit. Each handler is a thin call of the
//! ledger's service layer ([`crate::prepaid::Ledger`]), which the CLI calls
//! too; refusals come back as 404/409/422 with the ledger's reason, and
//! nothing was booked.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::forbidden;
use super::error::{ApiError, ErrorBody};
use super::server::Api;
use crate::access::audit::{Action, NewEntry};
use crate::access::{Actor, Role};
use crate::account::Balances;
use crate::iso8583::fields::{Expiry, Pan};
use crate::money::{Currency, Money};
use crate::prepaid::{
    CardAccount, DailyLimits, Ledger, LostCard, NewOrderer, NewProgramme, Orderer, PinDelivery,
    ProgrammeKind, StatementLine, Subject, Teller, period,
};

/// Every orderer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdererList {
    pub orderers: Vec<Orderer>,
}

/// A new orderer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdererIn {
    /// Its id (letters, digits, `-`, `_`).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    id: String,
    /// Printed on every card.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// The bank account it funds its cards from.
    #[schema(min_length = 1, max_length = 64)]
    funding_account: String,
}

/// A new programme.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeIn {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    id: String,
    orderer: String,
    /// `social-client` or `small-purchase`.
    #[schema(value_type = String, pattern = "^(social-client|small-purchase)$")]
    kind: String,
    /// ISO 4217 alphabetic (`EUR`) or numeric (`978`).
    currency: String,
    /// Maximum balance per card, minor units; absent: the configured default.
    #[schema(minimum = 1)]
    max_balance: Option<u64>,
    /// `with-card` (default) or `separately`.
    #[schema(value_type = Option<String>, pattern = "^(with-card|separately)$")]
    pin_delivery: Option<String>,
    /// Per-card daily limit on purchases and cash, minor units; absent: none.
    #[schema(minimum = 1)]
    daily_amount: Option<u64>,
    /// Per-card daily number of purchases and cash; absent: none.
    #[schema(minimum = 1)]
    daily_count: Option<u32>,
}

/// A card account to open for a registered card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardAccountIn {
    /// The card registry's `account` of the card.
    #[schema(min_length = 1, max_length = 64)]
    account: String,
    programme: String,
}

/// An amount of money.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountIn {
    /// The operation's idempotency key: a repeat books nothing twice.
    #[schema(min_length = 1, max_length = 64)]
    reference: String,
    /// Minor units (cents).
    #[schema(minimum = 1)]
    amount_minor: u64,
    /// ISO 4217 alphabetic (`EUR`) or numeric (`978`).
    currency: String,
}

/// A balance move between two cards of one orderer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    #[serde(flatten)]
    amount: AmountIn,
    /// The card account paying.
    from: String,
    /// The card account receiving.
    to: String,
}

/// A lost card to replace. The card numbers travel in the body, never in a
/// URL.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplacementIn {
    #[schema(min_length = 1, max_length = 64)]
    reference: String,
    /// The lost card's number.
    #[schema(pattern = "^[0-9]{12,19}$")]
    lost_pan: String,
    /// The new card's number.
    #[schema(pattern = "^[0-9]{12,19}$")]
    new_pan: String,
    /// The new card's expiry, `YYMM`.
    #[schema(pattern = "^[0-9]{4}$")]
    new_expiry: String,
    /// The new card's card account (opened in the same programme).
    #[schema(min_length = 1, max_length = 64)]
    new_account: String,
}

/// A card's balances.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalancesOut {
    /// Minor units: the balance less open holds.
    pub available: i64,
    /// Minor units: the sum of the card's postings.
    pub ledger: i64,
}

impl From<Balances> for BalancesOut {
    fn from(b: Balances) -> Self {
        BalancesOut {
            available: b.available,
            ledger: b.ledger,
        }
    }
}

/// A load booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Loaded {
    pub entry: i64,
    /// True when the reference was booked before: nothing was booked again.
    pub repeat: bool,
    pub balances: BalancesOut,
    /// Cards this load activated (masked), its first load's.
    pub activated: Vec<String>,
}

/// A move booked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Moved {
    pub from: BalancesOut,
    pub to: BalancesOut,
    /// True when the reference was booked before: nothing was booked again.
    pub repeat: bool,
}

/// A lost card replaced.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replaced {
    /// The new card, masked.
    pub card: String,
    pub account: String,
    /// The new card account's balances now.
    pub balances: BalancesOut,
    /// The replacement order of the new card, when the lost card came from
    /// a card order: its production file and PIN go as any order's.
    pub order: Option<i64>,
    /// True when this replacement was done before under the same
    /// reference: nothing was changed again.
    pub repeat: bool,
}

/// A statement's postings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    /// Unix microseconds, inclusive.
    pub from_us: i64,
    /// Unix microseconds, exclusive.
    pub to_us: i64,
    pub lines: Vec<StatementLine>,
}

/// A statement's period.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// RFC 3339 time or day (`YYYY-MM-DD`, from its start); absent: the beginning.
    from: Option<String>,
    /// RFC 3339 time or day (to its end); absent: now.
    to: Option<String>,
}

/// The ledger's invariants checked against its postings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Audit {
    /// Each breach in words; empty: the ledger is sound.
    pub breaches: Vec<String>,
}

/// Every orderer the caller sees (an orderer's users: their own) with its
/// programmes and pooled liability.
#[utoipa::path(get, path = "/api/prepaid/orderers", responses(
    (status = OK, body = OrdererList),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn orderers(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<OrdererList>, ApiError> {
    let mut orderers = api.read_ledger(Ledger::orderers).await?;
    orderers.retain(|o| actor.sees_orderer(&o.id));
    Ok(Json(OrdererList { orderers }))
}

/// Register an orderer (and its pooled funding account).
#[utoipa::path(post, path = "/api/prepaid/orderers", request_body = OrdererIn, responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = CREATED, body = Orderer),
    (status = CONFLICT, description = "the id is taken", body = ErrorBody),
    (status = UNPROCESSABLE_ENTITY, description = "a field is malformed", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn create_orderer(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(o): Json<OrdererIn>,
) -> Result<(StatusCode, Json<Orderer>), ApiError> {
    // Its path is read by orderers' users too (`Need::PrepaidRead`).
    if actor.role != Role::BankAdmin {
        return Err(forbidden(&actor));
    }
    let id = o.id.clone();
    api.ledger
        .create_orderer(NewOrderer {
            id: o.id,
            name: o.name,
            funding_account: o.funding_account,
        })
        .await?;
    api.record(NewEntry::new(
        &actor,
        Action::PrepaidOrderer,
        "orderer",
        &id,
    ))
    .await?;
    Ok((StatusCode::CREATED, Json(api.ledger.orderer(&id)?)))
}

/// One orderer with its programmes and pooled liability.
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}",
    params(("id" = String, Path, description = "the orderer")),
    responses(
        (status = OK, body = Orderer),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn orderer(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Orderer>, ApiError> {
    api.ledger.scope_orderer(&actor, &id)?;
    Ok(Json(api.read_ledger(move |l| l.orderer(&id)).await?))
}

/// The card accounts of an orderer with their balances.
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}/cards",
    params(("id" = String, Path, description = "the orderer")),
    responses(
        (status = OK, body = Vec<CardAccount>),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn orderer_cards(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Vec<CardAccount>>, ApiError> {
    api.ledger.scope_orderer(&actor, &id)?;
    Ok(Json(api.read_ledger(move |l| l.card_accounts(&id)).await?))
}

/// An orderer's statement: the postings of its cards and pooled account.
#[utoipa::path(get, path = "/api/prepaid/orderers/{id}/statement",
    params(("id" = String, Path, description = "the orderer"), PeriodQuery),
    responses(
        (status = OK, body = Statement),
        (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "a bound is malformed; field names it", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn orderer_statement(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Statement>, ApiError> {
    api.ledger.scope_orderer(&actor, &id)?;
    api.ledger.orderer(&id)?;
    statement(&api, Subject::Orderer(id), &q).await
}

/// Register a programme of an orderer.
#[utoipa::path(post, path = "/api/prepaid/programmes", request_body = ProgrammeIn, responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = CREATED, body = Orderer, description = "the orderer with the new programme"),
    (status = NOT_FOUND, description = "no such orderer", body = ErrorBody),
    (status = CONFLICT, description = "the id is taken", body = ErrorBody),
    (status = UNPROCESSABLE_ENTITY, description = "a field is malformed; field names it", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn create_programme(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(p): Json<ProgrammeIn>,
) -> Result<(StatusCode, Json<Orderer>), ApiError> {
    let kind = ProgrammeKind::parse(&p.kind)?;
    let pin_delivery = PinDelivery::parse(p.pin_delivery.as_deref().unwrap_or("with-card"))?;
    let currency = currency(&p.currency)?;
    let orderer = p.orderer.clone();
    let entry = NewEntry::new(&actor, Action::PrepaidProgramme, "programme", &p.id)
        .after(&serde_json::json!({ "orderer": p.orderer, "kind": p.kind }));
    api.ledger
        .create_programme(NewProgramme {
            id: p.id,
            orderer: p.orderer,
            kind,
            currency,
            max_balance: p.max_balance,
            pin_delivery,
            daily: DailyLimits {
                amount: p.daily_amount,
                count: p.daily_count,
            },
        })
        .await?;
    api.record(entry).await?;
    Ok((StatusCode::CREATED, Json(api.ledger.orderer(&orderer)?)))
}

/// Open the (empty) card account of a registered prepaid card.
#[utoipa::path(post, path = "/api/prepaid/cards", request_body = CardAccountIn, responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = CREATED, body = CardAccount),
    (status = NOT_FOUND, description = "no such programme", body = ErrorBody),
    (status = CONFLICT, description = "the card account exists", body = ErrorBody),
    (status = UNPROCESSABLE_ENTITY, description = "a field is malformed or missing (plain text when the body is not this object)", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn open_card(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(c): Json<CardAccountIn>,
) -> Result<(StatusCode, Json<CardAccount>), ApiError> {
    api.ledger.open_card(&c.account, &c.programme).await?;
    let entry = NewEntry::new(&actor, Action::PrepaidOpenCard, "card", &c.account)
        .after(&serde_json::json!({ "programme": c.programme }));
    api.record(entry).await?;
    Ok((
        StatusCode::CREATED,
        Json(api.ledger.card_account(&c.account)?),
    ))
}

/// A card account and its balances.
#[utoipa::path(get, path = "/api/prepaid/cards/{account}",
    params(("account" = String, Path, description = "the card account")),
    responses(
        (status = OK, body = CardAccount),
        (status = NOT_FOUND, description = "no such card account", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn card(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(account): Path<String>,
) -> Result<Json<CardAccount>, ApiError> {
    api.ledger.scope_card(&actor, &account)?;
    Ok(Json(
        api.read_ledger(move |l| l.card_account(&account)).await?,
    ))
}

/// A card's statement: its postings in the period.
#[utoipa::path(get, path = "/api/prepaid/cards/{account}/statement",
    params(("account" = String, Path, description = "the card account"), PeriodQuery),
    responses(
        (status = OK, body = Statement),
        (status = NOT_FOUND, description = "no such card account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "a bound is malformed; field names it", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn card_statement(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(account): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Statement>, ApiError> {
    api.ledger.scope_card(&actor, &account)?;
    api.ledger.card_account(&account)?;
    statement(&api, Subject::Card(account), &q).await
}

/// Load a card; its first load activates it. Refused past the programme's
/// maximum, nothing booked. The reference is the idempotency key: the same
/// load sent again answers as before (`repeat: true`) and books nothing;
/// the reference with another card account, amount or currency is refused.
#[utoipa::path(post, path = "/api/prepaid/cards/{account}/loads",
    params(("account" = String, Path, description = "the card account")),
    request_body = AmountIn,
    responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
        (status = OK, description = "loaded, or a repeat of the same load (`repeat: true`, nothing booked again)", body = Loaded),
        (status = NOT_FOUND, description = "no such card account", body = ErrorBody),
        (status = CONFLICT, description = "the reference was booked with another card account, amount or currency, or by another operation; nothing booked", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "refused (over the maximum, replaced card, currency, amount); nothing booked", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
    ),
)]
pub(super) async fn load(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Path(account): Path<String>,
    Json(a): Json<AmountIn>,
) -> Result<Json<Loaded>, ApiError> {
    let amount = amount(&a)?;
    let (booked, activated) = api
        .teller(&actor)
        .load(&a.reference, &account, amount)
        .await?;
    Ok(Json(Loaded {
        entry: booked.id,
        repeat: booked.repeat,
        balances: booked.balances.into(),
        activated: activated.into_iter().map(|c| c.pan_masked).collect(),
    }))
}

/// Move balance between two cards of one orderer. The reference is the
/// idempotency key: the same move sent again answers `repeat: true` and
/// books nothing; the reference with other cards, amount or currency is
/// refused.
#[utoipa::path(post, path = "/api/prepaid/moves", request_body = MoveIn, responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = OK, description = "moved, or a repeat of the same move (`repeat: true`, nothing booked again)", body = Moved),
    (status = NOT_FOUND, description = "no such card account", body = ErrorBody),
    (status = CONFLICT, description = "the reference was booked with other cards, amount or currency, or by another operation; nothing booked", body = ErrorBody),
    (status = UNPROCESSABLE_ENTITY, description = "refused (other orderer, funds, maximum); nothing booked", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn move_balance(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(m): Json<MoveIn>,
) -> Result<Json<Moved>, ApiError> {
    let amount = amount(&m.amount)?;
    let moved = api
        .teller(&actor)
        .move_balance(&m.amount.reference, &m.from, &m.to, amount)
        .await?;
    Ok(Json(Moved {
        from: moved.from.into(),
        to: moved.to.into(),
        repeat: moved.repeat,
    }))
}

/// Replace a lost card: the old card becomes `lost`, the new one is
/// registered `active` and takes the balance and holds, in one step. The
/// reference is the idempotency key: the same replacement sent again
/// answers as before (`repeat: true`, the balances now) and changes nothing.
#[utoipa::path(post, path = "/api/prepaid/replacements", request_body = ReplacementIn, responses(
    (status = BAD_REQUEST, description = "not JSON (plain text)"),
    (status = UNSUPPORTED_MEDIA_TYPE, description = "not `Content-Type: application/json` (plain text)"),
    (status = OK, description = "replaced, or a repeat of the same replacement (`repeat: true`, nothing changed)", body = Replaced),
    (status = NOT_FOUND, description = "the lost card or its card account is unknown", body = ErrorBody),
    (status = CONFLICT, description = "the new card or card account exists, or the reference was booked for another operation (another lost card, new card, expiry or card account); nothing changed", body = ErrorBody),
    (status = UNPROCESSABLE_ENTITY, description = "a field is malformed, or the card was replaced already", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn replace(
    State(api): State<Api>,
    Extension(actor): Extension<Actor>,
    Json(r): Json<ReplacementIn>,
) -> Result<Json<Replaced>, ApiError> {
    let pan = |field, text: &str| {
        Pan::new(text).map_err(|_| unprocessable(field, "is not a card number of 12 to 19 digits"))
    };
    let (old, new) = (pan("lost_pan", &r.lost_pan)?, pan("new_pan", &r.new_pan)?);
    let expiry =
        Expiry::parse(&r.new_expiry).map_err(|_| unprocessable("new_expiry", "is not YYMM"))?;
    let replaced = api
        .teller(&actor)
        .replace_lost(LostCard {
            reference: &r.reference,
            lost: &old,
            new: &new,
            new_expiry: expiry,
            new_account: &r.new_account,
        })
        .await?;
    let account = replaced.card.account.clone();
    let order = api
        .read_ledger(move |l| l.order_of_card(&account))
        .await?
        .map(|(order, _)| order);
    Ok(Json(Replaced {
        card: replaced.card.pan_masked,
        account: replaced.card.account,
        balances: replaced.balances.into(),
        order,
        repeat: replaced.repeat,
    }))
}

/// Check every invariant of the ledger against its postings.
#[utoipa::path(get, path = "/api/prepaid/audit", responses(
    (status = OK, body = Audit),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn audit(State(api): State<Api>) -> Result<Json<Audit>, ApiError> {
    let breaches = api.read_ledger(Ledger::audit).await?;
    Ok(Json(Audit { breaches }))
}

async fn statement(
    api: &Api,
    subject: Subject,
    q: &PeriodQuery,
) -> Result<Json<Statement>, ApiError> {
    let (from_us, to_us) = period(q.from.as_deref(), q.to.as_deref())?;
    let lines = api
        .read_ledger(move |l| l.statement(&subject, from_us, to_us))
        .await?;
    Ok(Json(Statement {
        from_us,
        to_us,
        lines,
    }))
}

impl Api {
    /// The prepaid operations of `actor` (tenant-checked and audited).
    pub(super) fn teller<'a>(&'a self, actor: &'a Actor) -> Teller<'a> {
        Teller {
            ledger: &self.ledger,
            cards: self.hub.cards(),
            access: &self.access,
            actor,
        }
    }

    /// Runs a read of the ledger off the async runtime: statements, exports
    /// and lists may read much.
    pub(super) async fn read_ledger<T, E, F>(&self, read: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Ledger) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || read(&ledger))
            .await?
            .map_err(Into::into)
    }
}

fn unprocessable(field: &'static str, reason: &str) -> ApiError {
    ApiError::field(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{field} {reason}"),
        field,
    )
}

fn currency(text: &str) -> Result<Currency, ApiError> {
    Currency::parse(text)
        .map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e, "currency"))
}

fn amount(a: &AmountIn) -> Result<Money, ApiError> {
    Ok(Money::new(a.amount_minor, currency(&a.currency)?))
}
