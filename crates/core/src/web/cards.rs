//! Cards: search by masked PAN (the first 6 and last 4 digits) or by
//! account; a card's page (masked PAN, status, product, limits profile,
//! institution, account); block and unblock with a reason, and another
//! limits profile — bank admins and the card's institution's bank
//! operators. Every change goes through [`crate::cards::registry`], which
//! writes its audit row (`card.status`, `card.profile`, before and after)
//! in the same store write, as for the CLI's changes.
//!
//! A card is named in URLs by its keyed PAN hash, never by its PAN; a
//! card another institution keeps is "not found" for a bank operator.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html};
use crate::access::{Actor, Tenant};
use crate::cards::{Card, CardQuery, CardRef, CardStatus, ChangedBy, PanHash};

/// Cards listed at most by one search.
const RESULTS: u32 = 50;

/// The longest reason taken, in characters.
const MAX_REASON_CHARS: usize = 500;

/// The longest account taken as a criterion, in characters.
const MAX_ACCOUNT_CHARS: usize = 64;

/// The search form as posted; empty fields are no criterion.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchForm {
    #[serde(default)]
    bin: String,
    #[serde(default)]
    last4: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    csrf: String,
}

impl SearchForm {
    /// The query for `actor` (its own institutions only), or the field at
    /// fault and why.
    fn query(&self, actor: &Actor) -> Result<CardQuery, (&'static str, String)> {
        let digits = |field: &'static str, value: &str, n: usize| {
            let value = value.trim();
            if value.is_empty() {
                Ok(None)
            } else if value.len() == n && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(Some(value.to_string()))
            } else {
                Err((field, format!("{n} digits, or nothing")))
            }
        };
        let bin = digits("First 6 digits", &self.bin, 6)?;
        let last4 = digits("Last 4 digits", &self.last4, 4)?;
        let account = Some(self.account.trim().to_string()).filter(|a| !a.is_empty());
        if account
            .as_ref()
            .is_some_and(|a| a.chars().count() > MAX_ACCOUNT_CHARS)
        {
            return Err(("Account", format!("at most {MAX_ACCOUNT_CHARS} characters")));
        }
        if account.is_none() && (bin.is_none() || last4.is_none()) {
            return Err((
                "Card",
                "give the first 6 and the last 4 digits of the card, or its account".into(),
            ));
        }
        Ok(CardQuery {
            bin,
            last4,
            account,
            institutions: match &actor.tenant {
                Tenant::Bank => None,
                Tenant::Institutions(own) => Some(own.clone()),
                Tenant::Orderer(_) => Some(Vec::new()),
            },
        })
    }
}

/// A found card, with the hex of its hash for its link.
struct Hit {
    card: Card,
    key: String,
}

#[derive(Template)]
#[template(path = "cards.html")]
struct SearchPage {
    chrome: Chrome,
    csrf: String,
    form: SearchForm,
    /// The field at fault and why.
    problem: Option<(&'static str, String)>,
    /// `None` before the first search.
    hits: Option<Vec<Hit>>,
}

pub(super) async fn form(signed: Signed) -> Result<Response, WebError> {
    html(&SearchPage {
        chrome: Chrome::new(Section::Cards, &signed),
        csrf: signed.csrf().to_string(),
        form: SearchForm::default(),
        problem: None,
        hits: None,
    })
}

/// Searches; a criterion at fault is shown with the form (422).
pub(super) async fn search(
    State(web): State<Web>,
    signed: Signed,
    Form(form): Form<SearchForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let query = match form.query(signed.actor()) {
        Ok(query) => query,
        Err(problem) => {
            let page = SearchPage {
                chrome: Chrome::new(Section::Cards, &signed),
                csrf: signed.csrf().to_string(),
                form,
                problem: Some(problem),
                hits: None,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)?).into_response());
        }
    };
    let cards = web.hub.cards().clone();
    let found = tokio::task::spawn_blocking(move || cards.search(&query, RESULTS)).await??;
    html(&SearchPage {
        chrome: Chrome::new(Section::Cards, &signed),
        csrf: signed.csrf().to_string(),
        form,
        problem: None,
        hits: Some(
            found
                .into_iter()
                .map(|card| Hit {
                    key: card.pan_hash.to_string(),
                    card,
                })
                .collect(),
        ),
    })
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    chrome: Chrome,
    csrf: String,
    card: Card,
    key: String,
    /// Whether the user may change it here.
    changeable: bool,
    /// The configured limits profiles.
    profiles: Vec<String>,
    /// The change just made, to confirm.
    changed: bool,
}

impl CardPage {
    fn blocked(&self) -> bool {
        self.card.status == CardStatus::Blocked
    }
}

/// `?changed=1` after a change.
#[derive(Deserialize)]
pub(super) struct Changed {
    #[serde(default)]
    changed: Option<String>,
}

pub(super) async fn page(
    State(web): State<Web>,
    signed: Signed,
    Path(key): Path<String>,
    Query(changed): Query<Changed>,
) -> Result<Response, WebError> {
    let card = visible(&web, &signed, &key).await?;
    html(&CardPage {
        chrome: Chrome::new(Section::Cards, &signed),
        csrf: signed.csrf().to_string(),
        changeable: signed.may_change(&card.institution),
        profiles: web
            .hub
            .cards()
            .catalog()
            .profiles()
            .map(str::to_string)
            .collect(),
        changed: changed.changed.is_some(),
        key: card.pan_hash.to_string(),
        card,
    })
}

/// A change as posted: `change` is `block`, `unblock` or `profile` (with
/// `profile`), always with a reason.
#[derive(Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    change: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    csrf: String,
}

/// Blocks, unblocks or gives another limits profile, audited by the
/// registry; then back to the card's page, which confirms it.
pub(super) async fn change(
    State(web): State<Web>,
    signed: Signed,
    Path(key): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let card = visible(&web, &signed, &key).await?;
    let actor = signed.actor();
    if !signed.may_change(&card.institution) {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not change cards",
            actor.user,
            actor.role.as_str()
        )));
    }
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(WebError::Unprocessable(format!(
            "a reason of 1 to {MAX_REASON_CHARS} characters is needed"
        )));
    }
    let by = ChangedBy {
        actor,
        reason: Some(reason),
    };
    let cards = web.hub.cards();
    let card = CardRef::from(&card);
    match form.change.as_str() {
        "block" => cards.set_status(&card, CardStatus::Blocked, by).await?,
        "unblock" => cards.unblock(&card, by).await?,
        "profile" => cards.set_profile(&card, form.profile.trim(), by).await?,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown change {:?}; expected block, unblock or profile",
                crate::mask::redact_pans(other)
            )));
        }
    };
    Ok(Redirect::to(&format!("/cards/{key}?changed=1")).into_response())
}

/// The card named by `key` (its PAN hash in hex) if the user may see it;
/// "not found" otherwise, as for no such card.
async fn visible(web: &Web, signed: &Signed, key: &str) -> Result<Card, WebError> {
    let not_found = || WebError::NotFound("no such card".into());
    let hash = hex::decode(key)
        .ok()
        .and_then(|bytes| PanHash::try_from(bytes.as_slice()).ok())
        .ok_or_else(not_found)?;
    let cards = web.hub.cards().clone();
    let card = tokio::task::spawn_blocking(move || cards.get_by_hash(&hash)).await??;
    card.filter(|c| signed.actor().sees_institution(&c.institution))
        .ok_or_else(not_found)
}
