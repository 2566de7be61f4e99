//! The store-and-forward queue: items in queue order with why each waits
//! (its last error, or the earlier item of its account it waits behind),
//! filtered by institution and state — `state=dead` lists the dead letters.
//! Bank admins and the institution's bank operators put a dead letter back
//! in the queue (what `POST /api/saf/{seq}/requeue` does, audited the same
//! way).

use askama::Template;
use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, read, time_us};
use crate::access::Role;
use crate::backoffice;
use crate::standin::saf::{self, Filter, Item, ItemState};

/// A listed item.
struct Row {
    item: Item,
    /// Whether the user may put it back in the queue here (a dead letter
    /// of an institution it may change).
    requeueable: bool,
    waits_behind: Option<i64>,
    enqueued: String,
    next_attempt: String,
}

#[derive(Template)]
#[template(path = "saf.html")]
struct Page {
    chrome: Chrome,
    csrf: String,
    institution: String,
    state: String,
    institutions: Vec<String>,
    rows: Vec<Row>,
    next_after: Option<i64>,
}

impl Page {
    fn is_state(&self, state: &str) -> bool {
        self.state == state
    }

    fn is_institution(&self, id: &str) -> bool {
        self.institution == id
    }
}

pub(super) async fn page(
    State(web): State<Web>,
    signed: Signed,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(filter) = filter.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let actor = signed.actor();
    let filter = Filter {
        institution: actor.scoped_institution(filter.institution.filter(|i| !i.is_empty()))?,
        state: filter.state.filter(|s| !s.is_empty()),
        ..filter
    };
    let store = web.hub.store().clone();
    let listed = filter.clone();
    let items = read(move || saf::list(&store, &listed)).await?;
    let next_after = items.last().map(|(i, _)| i.seq);
    html(&Page {
        chrome: Chrome::new(Section::Saf, &signed),
        csrf: signed.csrf().to_string(),
        institution: filter.institution.unwrap_or_default(),
        state: filter.state.unwrap_or_default(),
        institutions: web
            .hub
            .institutions()
            .iter()
            .map(|i| i.id.clone())
            .collect(),
        rows: items
            .into_iter()
            .map(|(item, waits_behind)| Row {
                requeueable: item.state == ItemState::Dead.as_str()
                    && signed.may_change(&item.institution),
                enqueued: time_us(item.enqueued_us),
                next_attempt: time_us(item.next_attempt_us),
                item,
                waits_behind,
            })
            .collect(),
        next_after,
    })
}

/// The re-queue form as posted.
#[derive(Deserialize)]
pub(super) struct RequeueForm {
    #[serde(default)]
    csrf: String,
}

/// Puts a dead letter back in the queue; then its institution's pending
/// items, where it is now.
pub(super) async fn requeue(
    State(web): State<Web>,
    signed: Signed,
    Path(seq): Path<i64>,
    Form(form): Form<RequeueForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let actor = signed.actor();
    if !matches!(actor.role, Role::BankAdmin | Role::BankOperator) {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not re-queue items",
            actor.user,
            actor.role.as_str()
        )));
    }
    if !backoffice::saf::requeue(&web.hub, actor, seq).await? {
        return Err(WebError::NotFound(format!("no dead letter {seq}")));
    }
    Ok(Redirect::to(&format!("/saf?state=pending#item-{seq}")).into_response())
}
