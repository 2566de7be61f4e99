//! The audit log: who changed what, from where, before and after — searched
//! by actor, action, object and time range, newest first, a page at a time
//! (what `GET /api/audit` answers, through [`crate::access::Access::search_audit`]).
//! Bank admins and auditors only; others get 403. The criteria are in the
//! URL (`GET`): none of them is a card number (cards are in the log masked).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, time_us};
use crate::access::Role;
use crate::access::audit::{self, Action, Entry};
use crate::backoffice::search::instant;

/// Rows per page.
const PAGE: usize = 50;

/// The criteria as given; empty fields are no criterion.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Criteria {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object_kind: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The last id of the previous page.
    #[serde(default)]
    before: Option<i64>,
}

impl Criteria {
    /// The store's query, or the criterion at fault and why.
    fn query(&self) -> Result<audit::Query, (&'static str, String)> {
        let given = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        let action = match given(&self.action) {
            None => None,
            Some(name) => Some(
                Action::parse(&name).ok_or_else(|| ("Action", format!("{name:?} is no action")))?,
            ),
        };
        let at = |field: &'static str, text: &str, end_of_day: bool| {
            given(text)
                .map(|t| {
                    instant(&t, end_of_day)
                        .map(|t| t.as_microsecond())
                        .map_err(|e| (field, e.to_string()))
                })
                .transpose()
        };
        let from_us = at("From", &self.from, false)?;
        let to_us = at("To", &self.to, true)?;
        if let (Some(from), Some(to)) = (from_us, to_us)
            && to <= from
        {
            return Err(("To", "is not after from".into()));
        }
        Ok(audit::Query {
            actor: given(&self.actor),
            action,
            object_kind: given(&self.object_kind),
            object_id: given(&self.object_id),
            from_us,
            to_us,
            before_id: self.before,
            limit: Some(PAGE),
        })
    }

    fn is_action(&self, name: &str) -> bool {
        self.action == name
    }

    /// The criteria the next page keeps, as hidden fields.
    fn kept(&self) -> [(&'static str, &str); 6] {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("object_kind", &self.object_kind),
            ("object_id", &self.object_id),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }
}

/// A row as the table shows it.
struct Row {
    entry: Entry,
    at: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Page {
    chrome: Chrome,
    criteria: Criteria,
    actions: Vec<&'static str>,
    problem: Option<(&'static str, String)>,
    rows: Vec<Row>,
    /// The `before` of the next page, when this one is full.
    next_before: Option<i64>,
}

pub(super) async fn page(
    State(web): State<Web>,
    signed: Signed,
    criteria: Result<Query<Criteria>, QueryRejection>,
) -> Result<Response, WebError> {
    let actor = signed.actor().clone();
    if !matches!(actor.role, Role::BankAdmin | Role::Auditor) {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not read the audit log",
            actor.user,
            actor.role.as_str()
        )));
    }
    let Query(criteria) = criteria.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let mut page = Page {
        chrome: Chrome::new(Section::Audit, &signed),
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        problem: None,
        rows: Vec::new(),
        next_before: None,
        criteria,
    };
    let query = match page.criteria.query() {
        Ok(query) => query,
        Err(problem) => {
            page.problem = Some(problem);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)?).into_response());
        }
    };
    let access = web.access.clone();
    let entries =
        tokio::task::spawn_blocking(move || access.search_audit(&actor, &query)).await??;
    page.next_before = entries
        .last()
        .filter(|_| entries.len() == PAGE)
        .map(|e| e.id);
    page.rows = entries
        .into_iter()
        .map(|entry| Row {
            at: time_us(entry.at_us),
            entry,
        })
        .collect();
    html(&page)
}
