//! Institutions: each one's state and since when, its circuit breaker, its
//! store-and-forward queue and the freshness of its balance file; the
//! latest state changes with who made them and why. Bank admins and the
//! institution's bank operators close and open it here, with a reason
//! (what `POST /api/institutions/{id}/state` does, audited the same way).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, moment, read, time_us};
use crate::access::audit::{Action, NewEntry};
use crate::backoffice::institutions::{Event, events, snapshots};
use crate::metrics::InstitutionSnapshot;
use crate::standin::state::{InstitutionState, Source};

/// The longest reason taken, in characters.
const MAX_REASON_CHARS: usize = 500;

/// State changes listed at most.
const EVENTS_SHOWN: u32 = 50;

/// One institution's row.
struct Row {
    snapshot: InstitutionSnapshot,
    name: String,
    mode: &'static str,
    breaker: String,
    /// The balance file's age and whether stand-in holds it stale.
    balances: String,
    stale: bool,
    /// Whether the user may signal its state here.
    changeable: bool,
}

#[derive(Template)]
#[template(path = "institutions.html")]
struct Page {
    chrome: Chrome,
    csrf: String,
    rows: Vec<Row>,
    events: Vec<(Event, String)>,
    /// The change just made, to confirm.
    changed: Option<String>,
}

/// `?changed=ID`: the institution whose state was just signalled.
#[derive(Deserialize)]
pub(super) struct Changed {
    changed: Option<String>,
}

pub(super) async fn page(
    State(web): State<Web>,
    signed: Signed,
    Query(changed): Query<Changed>,
) -> Result<Response, WebError> {
    let hub = web.hub.clone();
    let (snapshots, events) =
        read(move || Ok((snapshots(&hub)?, events(hub.store(), EVENTS_SHOWN)?))).await?;
    let actor = signed.actor();
    let rows: Vec<Row> = snapshots
        .into_iter()
        .filter(|s| actor.sees_institution(&s.id))
        .map(|snapshot| row(&web, &signed, snapshot))
        .collect();
    let changed = changed.changed.and_then(|id| {
        rows.iter()
            .find(|r| r.snapshot.id == id)
            .map(|r| format!("{id} is now {}.", r.snapshot.state))
    });
    html(&Page {
        chrome: Chrome::new(Section::Institutions, &signed),
        csrf: signed.csrf().to_string(),
        rows,
        changed,
        events: events
            .into_iter()
            .filter(|e| actor.sees_institution(&e.institution))
            .map(|e| {
                let at = time_us(e.at_us);
                (e, at)
            })
            .collect(),
    })
}

fn row(web: &Web, signed: &Signed, snapshot: InstitutionSnapshot) -> Row {
    let changeable = signed.may_change(&snapshot.id) && snapshot.state != "offline-only";
    let name = web
        .institutions
        .iter()
        .find(|c| c.id == snapshot.id)
        .map_or_else(String::new, |c| c.name.clone());
    let Some(inst) = web.hub.institutions().get(&snapshot.id) else {
        return Row {
            snapshot,
            name,
            mode: "unknown",
            breaker: "–".into(),
            balances: "–".into(),
            stale: false,
            changeable: false,
        };
    };
    let breaker = format!(
        "{}: trips after {} failures within {} s",
        if inst.breaker_tripped() {
            "tripped"
        } else {
            "closed"
        },
        inst.breaker_config.failures,
        inst.breaker_config.window_secs
    );
    let max_age = i64::from(inst.stand_in.max_balance_age_hours) * 3_600;
    let (balances, stale) = match (&snapshot.balances_as_of, snapshot.balance_age_secs) {
        (Some(as_of), Some(age)) => (
            format!(
                "{} rows as of {} ({} h {} min old)",
                snapshot.balances_rows.unwrap_or(0),
                moment(as_of),
                age / 3_600,
                age % 3_600 / 60
            ),
            age > max_age,
        ),
        _ => ("none".into(), true),
    };
    Row {
        mode: if inst.prepaid {
            "prepaid"
        } else if snapshot.state == "offline-only" {
            "offline-only"
        } else {
            "online"
        },
        breaker,
        balances,
        stale,
        changeable: changeable && !inst.prepaid,
        snapshot,
        name,
    }
}

/// The state form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct StateForm {
    state: String,
    reason: String,
    csrf: String,
}

/// Signals a state (open, closing, closed) with a reason, audited; then
/// back to the list, which confirms it.
pub(super) async fn set_state(
    State(web): State<Web>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<StateForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let actor = signed.actor();
    if !actor.sees_institution(&id) {
        return Err(WebError::NotFound(format!("no institution {id:?}")));
    }
    if !signed.may_change(&id) {
        return Err(WebError::Forbidden(format!(
            "{} ({}) may not change institutions",
            actor.user,
            actor.role.as_str()
        )));
    }
    let to: InstitutionState = form.state.parse()?;
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(WebError::Unprocessable(format!(
            "a reason of 1 to {MAX_REASON_CHARS} characters is needed"
        )));
    }
    let previous = web
        .hub
        .institutions()
        .set_state(&id, to, Source::Web, reason)
        .await?;
    let entry = NewEntry::new(actor, Action::InstitutionState, "institution", &id)
        .before(&json!({ "state": previous.as_str() }))
        .after(&json!({ "state": to.as_str(), "reason": reason }));
    web.access.audit(entry).await?;
    Ok(Redirect::to(&format!("/institutions?changed={id}#{id}")).into_response())
}
