//! The store-and-forward queue: items in queue order with why each waits
//! (its last error, or the earlier item of its account it waits behind),
//! filtered by institution and state — `state=dead` lists the dead letters.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, read, time_us};
use crate::standin::saf::{self, Filter, Item};

/// A listed item.
struct Row {
    item: Item,
    waits_behind: Option<i64>,
    enqueued: String,
    next_attempt: String,
}

#[derive(Template)]
#[template(path = "saf.html")]
struct Page {
    chrome: Chrome,
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
                enqueued: time_us(item.enqueued_us),
                next_attempt: time_us(item.next_attempt_us),
                item,
                waits_behind,
            })
            .collect(),
        next_after,
    })
}
