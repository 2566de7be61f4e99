//! The prepaid pages, for an orderer's users (their own orderer only),
//! bank admins (any orderer, chosen from a list) and auditors (reading):
//! an orderer's cards with their balances and the pooled account, a card's
//! statement over a period, and the forms that load a card, move balance
//! between two cards and replace a lost card. Each form does what its JSON
//! API route does, through the same [`Teller`] (tenant check, booking,
//! audit entry); a refusal is shown with the ledger's reason and nothing
//! was booked. Whatever the user's tenant does not hold answers 404, as if
//! it did not exist. Amounts are typed in the currency's units and parsed
//! exactly into minor units; card numbers are posted, never put in a URL
//! and never shown but masked. Card orders, PIN reorders, the attestation
//! queue and the accounting export are in [`office`].

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

mod office;

use super::session::{PrepaidSigned, Signed};
use super::{Chrome, Section, Web, WebError, amount, html, time_us};
use crate::cards::CardError;
use crate::iso8583::fields::{Expiry, Pan};
use crate::money::{Currency, Money};
use crate::prepaid::orders::{OrderError, OrderSummary};
use crate::prepaid::{
    CardAccount, LostCard, Orderer, PrepaidError, StatementLine, Subject, Teller, period,
};

/// The prepaid routes.
pub(super) fn routes() -> Router<Web> {
    Router::new()
        .route("/prepaid", get(orderers))
        .route("/prepaid/orderers/{id}", get(orderer))
        .route("/prepaid/cards/{account}", get(card))
        .route("/prepaid/cards/{account}/load", post(load))
        .route("/prepaid/moves", post(move_balance))
        .route("/prepaid/replacements", post(replace))
        .merge(office::routes())
}

/// A card account as listed: the ledger's row and its card's masked
/// number and registry status.
struct CardRow {
    account: CardAccount,
    pan_masked: String,
    card_status: String,
    available: String,
    ledger: String,
}

#[derive(Template)]
#[template(path = "prepaid_orderers.html")]
struct OrderersPage {
    chrome: Chrome,
    orderers: Vec<(Orderer, String)>,
}

#[derive(Template)]
#[template(path = "prepaid_orderer.html")]
struct OrdererPage {
    chrome: Chrome,
    csrf: String,
    orderer: Orderer,
    pooled: String,
    cards: Vec<CardRow>,
    /// Whether the user may load, move and replace.
    changes: bool,
    /// Whether the user may download the accounting export.
    exports: bool,
    /// Its card orders, each with its order time.
    orders: Vec<(OrderSummary, String)>,
    /// Today (UTC), the export form's default day.
    today: String,
    /// A fresh idempotency reference for each form.
    reference: String,
    done: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "prepaid_card.html")]
struct CardPage {
    chrome: Chrome,
    csrf: String,
    orderer: Orderer,
    card: CardRow,
    from: String,
    to: String,
    lines: Vec<(StatementLine, String, String)>,
    changes: bool,
    reference: String,
    /// The currency and its decimals, for the amount field's hint.
    unit: String,
    done: Option<&'static str>,
}

/// `?done=...`: the change just made, to confirm.
#[derive(Deserialize)]
pub(super) struct Done {
    pub(super) done: Option<String>,
}

impl Done {
    pub(super) fn message(&self) -> Option<&'static str> {
        match self.done.as_deref()? {
            "loaded" => Some("The load is booked."),
            "moved" => Some("The move is booked."),
            "repeated" => {
                Some("This reference was booked already, as posted: nothing was booked again.")
            }
            "replaced" => Some("The lost card is replaced: this is its successor."),
            "attested" => Some("The purchase is attested."),
            "ordered" => Some("The cards are ordered."),
            "pin" => Some("The PIN goes out again with the next PIN mailer file."),
            "disputed" => Some("The purchase is disputed."),
            _ => None,
        }
    }
}

/// The orderers the user sees; an orderer's user goes straight to its own.
async fn orderers(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
) -> Result<Response, WebError> {
    let ledger = web.ledger.clone();
    let mut all = read_ledger(move || ledger.orderers()).await?;
    all.retain(|o| signed.actor().sees_orderer(&o.id));
    if !signed.actor().sees_every_orderer()
        && let [only] = all.as_slice()
    {
        return Ok(Redirect::to(&format!("/prepaid/orderers/{}", only.id)).into_response());
    }
    html(&OrderersPage {
        chrome: Chrome::new(Section::Prepaid, &signed),
        orderers: all
            .into_iter()
            .map(|o| {
                let pooled = pooled(&o);
                (o, pooled)
            })
            .collect(),
    })
}

/// An orderer's home: its cards, the pooled account, the move and
/// replacement forms.
async fn orderer(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    web.ledger.scope_orderer(signed.actor(), &id)?;
    let (ledger, cards) = (web.ledger.clone(), web.hub.cards().clone());
    let (orderer, accounts, masked, orders) = read_orders(move || {
        let orderer = ledger.orderer(&id)?;
        let accounts = ledger.card_accounts(&id)?;
        let names: Vec<String> = accounts.iter().map(|a| a.account.clone()).collect();
        let masked = cards.by_accounts(&names).map_err(PrepaidError::from)?;
        Ok((orderer, accounts, masked, ledger.orders(&id)?))
    })
    .await?;
    html(&OrdererPage {
        chrome: Chrome::new(Section::Prepaid, &signed),
        csrf: signed.csrf().to_string(),
        pooled: pooled(&orderer),
        orderer,
        cards: accounts.into_iter().map(|a| card_row(a, &masked)).collect(),
        changes: signed.actor().role.changes_prepaid(),
        exports: signed.actor().role.reads_bank_prepaid(),
        orders: orders
            .into_iter()
            .map(|o| {
                let at = time_us(o.ordered_at_us);
                (o, at)
            })
            .collect(),
        today: jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string(),
        reference: fresh_reference(),
        done: done.message(),
    })
}

/// `?from=&to=`: a statement's period (days or RFC 3339 times).
#[derive(Deserialize)]
pub(super) struct PeriodForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    done: Option<String>,
}

/// A card: its balances, its statement over the period, the load form.
async fn card(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path(account): Path<String>,
    Query(q): Query<PeriodForm>,
) -> Result<Response, WebError> {
    let (from_us, to_us) = period(non_empty(&q.from), non_empty(&q.to))?;
    let (orderer, card) = visible_card(&web, &signed, &account).await?;
    let (ledger, cards, name) = (web.ledger.clone(), web.hub.cards().clone(), account.clone());
    let (lines, masked) = read_ledger(move || {
        let lines = ledger.statement(&Subject::Card(name.clone()), from_us, to_us)?;
        Ok((lines, cards.by_accounts(std::slice::from_ref(&name))?))
    })
    .await?;
    let lines = lines
        .into_iter()
        .map(|l| {
            let at = time_us(l.booked_at_us);
            // The sign goes before the amount in the page.
            let money = amount(l.amount.saturating_abs(), card.currency);
            (l, at, money)
        })
        .collect();
    let unit = currency(card.currency).map_or_else(
        |e| e.to_string(),
        |c| format!("{}, at most {} decimals", c.code, c.exponent),
    );
    html(&CardPage {
        chrome: Chrome::new(Section::Prepaid, &signed),
        csrf: signed.csrf().to_string(),
        orderer,
        card: card_row(card, &masked),
        from: q.from,
        to: q.to,
        lines,
        changes: signed.actor().role.changes_prepaid(),
        reference: fresh_reference(),
        unit,
        done: Done { done: q.done }.message(),
    })
}

/// The load form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoadForm {
    amount: String,
    reference: String,
    csrf: String,
}

async fn load(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Path(account): Path<String>,
    Form(form): Form<LoadForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let (_, card) = visible_card(&web, &signed, &account).await?;
    let money = parse_amount(&form.amount, card.currency)?;
    let (booked, _) = teller(&web, &signed)
        .load(form.reference.trim(), &account, money)
        .await?;
    let done = if booked.repeat { "repeated" } else { "loaded" };
    Ok(Redirect::to(&format!("/prepaid/cards/{account}?done={done}")).into_response())
}

/// The move form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MoveForm {
    from: String,
    to: String,
    amount: String,
    reference: String,
    csrf: String,
}

async fn move_balance(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let (orderer, card) = visible_card(&web, &signed, &form.from).await?;
    let money = parse_amount(&form.amount, card.currency)?;
    let moved = teller(&web, &signed)
        .move_balance(form.reference.trim(), &form.from, &form.to, money)
        .await?;
    let done = if moved.repeat { "repeated" } else { "moved" };
    Ok(Redirect::to(&format!("/prepaid/orderers/{}?done={done}", orderer.id)).into_response())
}

/// The replacement form as posted: both card numbers in the body.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ReplaceForm {
    lost_pan: String,
    new_pan: String,
    new_expiry: String,
    new_account: String,
    reference: String,
    csrf: String,
}

async fn replace(
    State(web): State<Web>,
    PrepaidSigned(signed): PrepaidSigned,
    Form(form): Form<ReplaceForm>,
) -> Result<Response, WebError> {
    may_change(&signed, &form.csrf)?;
    let lost = card_number("lost card", &form.lost_pan)?;
    let new = card_number("new card", &form.new_pan)?;
    let new_expiry = Expiry::parse(form.new_expiry.trim())
        .map_err(|_| WebError::Unprocessable("the new card's expiry is not YYMM".into()))?;
    let replaced = teller(&web, &signed)
        .replace_lost(LostCard {
            reference: form.reference.trim(),
            lost: &lost,
            new: &new,
            new_expiry,
            new_account: form.new_account.trim(),
        })
        .await?;
    let account = replaced.card.account;
    let done = if replaced.repeat {
        "repeated"
    } else {
        "replaced"
    };
    Ok(Redirect::to(&format!("/prepaid/cards/{account}?done={done}")).into_response())
}

/// A typed card number (never echoed: the error does not repeat it).
pub(super) fn card_number(field: &str, text: &str) -> Result<Pan, WebError> {
    Pan::new(text.trim()).map_err(|_| {
        WebError::Unprocessable(format!(
            "the {field} is not a card number of 12 to 19 digits"
        ))
    })
}

/// Refuses a form with a wrong CSRF token, or from a role that reads only.
pub(super) fn may_change(signed: &Signed, csrf: &str) -> Result<(), WebError> {
    signed.check(csrf)?;
    if signed.actor().role.changes_prepaid() {
        Ok(())
    } else {
        Err(WebError::Forbidden(format!(
            "{} ({}) may not change prepaid cards",
            signed.actor().user,
            signed.actor().role.as_str()
        )))
    }
}

pub(super) fn teller<'a>(web: &'a Web, signed: &'a Signed) -> Teller<'a> {
    Teller {
        ledger: &web.ledger,
        cards: web.hub.cards(),
        access: &web.access,
        actor: signed.actor(),
    }
}

/// Card account `account` and its orderer, when the user's tenant holds it
/// (else 404, as for an unknown one).
async fn visible_card(
    web: &Web,
    signed: &Signed,
    account: &str,
) -> Result<(Orderer, CardAccount), WebError> {
    web.ledger.scope_card(signed.actor(), account)?;
    let (ledger, account) = (web.ledger.clone(), account.to_string());
    read_ledger(move || {
        let card = ledger.card_account(&account)?;
        let orderer = ledger
            .orderers()?
            .into_iter()
            .find(|o| o.programmes.iter().any(|p| p.id == card.programme))
            .ok_or(PrepaidError::UnknownProgramme {
                programme: card.programme.clone(),
            })?;
        Ok((orderer, card))
    })
    .await
}

fn card_row(account: CardAccount, cards: &HashMap<String, crate::cards::Card>) -> CardRow {
    let card = cards.get(&account.account);
    CardRow {
        pan_masked: card.map_or_else(|| "–".into(), |c| c.pan_masked.clone()),
        card_status: card.map_or("–", |c| c.status.as_str()).to_string(),
        available: amount(account.available, account.currency),
        ledger: amount(account.balance, account.currency),
        account,
    }
}

/// The pooled account's balance, in the currency of the orderer's
/// programmes (one currency per orderer in practice).
fn pooled(orderer: &Orderer) -> String {
    match orderer.programmes.first() {
        Some(p) => amount(orderer.pooled_liability, p.currency),
        None => format!("{} (minor units)", orderer.pooled_liability),
    }
}

fn currency(numeric: u16) -> Result<Currency, WebError> {
    Currency::from_numeric(numeric).map_err(|e| WebError::Unprocessable(e.to_string()))
}

/// An amount typed in the card currency's units, parsed exactly.
fn parse_amount(text: &str, numeric: u16) -> Result<Money, WebError> {
    let c = currency(numeric)?;
    Money::parse_decimal(text.trim(), c).map_err(|_| {
        WebError::Unprocessable(format!(
            "{:?} is not an amount in {} with at most {} decimals",
            text.trim(),
            c.code,
            c.exponent
        ))
    })
}

fn non_empty(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// A new idempotency reference for a form: posting the same form twice
/// books once.
pub(super) fn fresh_reference() -> String {
    format!("web-{}", hex::encode(rand::random::<[u8; 8]>()))
}

pub(super) async fn read_ledger<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PrepaidError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await?
        .map_err(WebError::from)
}

impl From<PrepaidError> for WebError {
    fn from(e: PrepaidError) -> WebError {
        use PrepaidError as P;
        match e {
            P::UnknownCard { .. }
            | P::UnknownOrderer { .. }
            | P::UnknownProgramme { .. }
            | P::UnknownOriginal { .. }
            | P::UnknownPurchase { .. } => WebError::NotFound(e.to_string()),
            P::ReferenceConflict { .. } => WebError::Conflict(e.to_string()),
            P::Store(e) => WebError::Store(e),
            P::Cards(e) => e.into(),
            _ => WebError::Unprocessable(e.to_string()),
        }
    }
}

/// [`read_ledger`] for reads that also list card orders.
async fn read_orders<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OrderError> + Send + 'static,
) -> Result<T, WebError> {
    tokio::task::spawn_blocking(f)
        .await?
        .map_err(WebError::from)
}

impl From<OrderError> for WebError {
    fn from(e: OrderError) -> WebError {
        match e {
            OrderError::Ledger(e) => e.into(),
            OrderError::Cards(e) => e.into(),
            OrderError::Store(e) => WebError::Store(e),
            OrderError::UnknownOrder { .. } | OrderError::UnknownMailer { .. } => {
                WebError::NotFound(e.to_string())
            }
            _ => WebError::Unprocessable(e.to_string()),
        }
    }
}

impl From<CardError> for WebError {
    fn from(e: CardError) -> WebError {
        match e {
            CardError::UnknownCard { .. } => WebError::NotFound(e.to_string()),
            CardError::Store(e) => WebError::Store(e),
            _ => WebError::Unprocessable(e.to_string()),
        }
    }
}
