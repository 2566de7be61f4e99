//! Balance files: a form per institution with a configured balance format
//! that the user may change (bank admins; a bank operator's own), uploading
//! a file (multipart, streamed) that is applied whole or refused whole
//! through [`crate::backoffice::balances::upload`] — what
//! `POST /api/institutions/{id}/balances` does, audited the same way. A
//! refused file is shown with every line error (line, field, reason).

use std::io;

use askama::Template;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, moment};
use crate::backoffice::balances::{BalancesError, format_name, upload};
use crate::standin::balance_file::{BalanceFileError, LineError};
use crate::standin::balances::BalanceError;

/// File chunks in flight between the request and the reading thread.
const CHUNKS_IN_FLIGHT: usize = 8;

/// An institution's upload form.
struct Form {
    id: String,
    name: String,
    format: &'static str,
}

/// What the last upload did.
enum Outcome {
    Applied(String),
    /// Refused: why, and the line errors of a file at fault.
    Refused {
        reason: String,
        lines: Vec<LineError>,
        more: usize,
    },
}

#[derive(Template)]
#[template(path = "balances.html")]
struct Page {
    chrome: Chrome,
    csrf: String,
    forms: Vec<Form>,
    /// The institution uploaded to, and what came of it.
    outcome: Option<(String, Outcome)>,
}

pub(super) async fn page(State(web): State<Web>, signed: Signed) -> Result<Response, WebError> {
    html(&page_of(&web, &signed, None))
}

fn page_of(web: &Web, signed: &Signed, outcome: Option<(String, Outcome)>) -> Page {
    Page {
        chrome: Chrome::new(Section::Balances, signed),
        csrf: signed.csrf().to_string(),
        forms: web
            .institutions
            .iter()
            .filter(|i| signed.may_change(&i.id))
            .filter_map(|i| {
                i.balances.as_ref().map(|f| Form {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    format: format_name(f),
                })
            })
            .collect(),
        outcome,
    }
}

/// Takes the form's `csrf` field, then streams its `file` field into the
/// upload; shows what came of it (422 with the line errors when refused).
pub(super) async fn upload_file(
    State(web): State<Web>,
    signed: Signed,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let bad = |e: MultipartError| WebError::BadRequest(e.body_text());
    let csrf = match multipart.next_field().await.map_err(bad)? {
        Some(field) if field.name() == Some("csrf") => field.text().await.map_err(bad)?,
        _ => String::new(),
    };
    signed.check(&csrf)?;
    let actor = signed.actor();
    if !actor.sees_institution(&id) || !web.institutions.iter().any(|i| i.id == id) {
        return Err(WebError::NotFound(format!("no institution {id:?}")));
    }
    if !signed.may_change(&id) {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not upload balance files",
            actor.user,
            actor.role.as_str()
        )));
    }
    let Some(mut field) = multipart.next_field().await.map_err(bad)? else {
        return Err(WebError::BadRequest("the form has no file".into()));
    };
    if field.name() != Some("file") {
        return Err(WebError::BadRequest("the form has no file".into()));
    }
    let (mut tx, rx) = futures::channel::mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let reader = SyncIoBridge::new(StreamReader::new(rx.map_err(io::Error::other)));
    let pump = async move {
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => Ok(chunk),
                Ok(None) => break,
                Err(e) => Err(io::Error::other(e.body_text())),
            };
            let failed = chunk.is_err();
            // The reader stops early when it refuses the file: then stop too.
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let applying = upload(
        &web.hub,
        &web.institutions,
        &web.access,
        actor,
        &id,
        reader,
        None,
    );
    let (applied, ()) = tokio::join!(applying, pump);
    let (status, outcome) = match applied? {
        Ok(a) => (
            StatusCode::OK,
            Outcome::Applied(if a.unchanged {
                "The same file was applied before: nothing changed.".into()
            } else {
                format!(
                    "{} rows applied, as of {}.",
                    a.rows,
                    moment(&a.as_of.to_string())
                )
            }),
        ),
        Err(e) => refused(e)?,
    };
    let page = page_of(&web, &signed, Some((id, outcome)));
    Ok((status, html(&page)?).into_response())
}

/// A refusal as the page shows it, with its status; a failure of ours is
/// the error page.
fn refused(e: BalancesError) -> Result<(StatusCode, Outcome), WebError> {
    let status = match &e {
        BalancesError::Balance(BalanceError::File(BalanceFileError::Invalid { .. }))
        | BalancesError::NotConfigured(_)
        | BalancesError::UnknownFormat { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        BalancesError::Balance(BalanceError::Older { .. }) => StatusCode::CONFLICT,
        BalancesError::Balance(BalanceError::File(BalanceFileError::Io(_))) => {
            StatusCode::BAD_REQUEST
        }
        _ => return Err(WebError::Balances(e)),
    };
    let (lines, more) = match e {
        BalancesError::Balance(BalanceError::File(BalanceFileError::Invalid {
            ref problems,
            more,
        })) => (problems.clone(), more),
        _ => (Vec::new(), 0),
    };
    Ok((
        status,
        Outcome::Refused {
            reason: e.to_string(),
            lines,
            more,
        },
    ))
}
