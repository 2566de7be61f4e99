//! Institutions: each one's state and since when, its circuit breaker, its
//! store-and-forward queue and the freshness of its balance file; the
//! latest state changes with who made them and why.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{Section, Web, WebError, html, moment, read, time_us};
use crate::backoffice::institutions::{Event, events, snapshots};
use crate::metrics::InstitutionSnapshot;

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
}

#[derive(Template)]
#[template(path = "institutions.html")]
struct Page {
    section: Option<Section>,
    rows: Vec<Row>,
    events: Vec<(Event, String)>,
}

pub(super) async fn page(State(web): State<Web>) -> Result<Response, WebError> {
    let hub = web.hub.clone();
    let (snapshots, events) =
        read(move || Ok((snapshots(&hub)?, events(hub.store(), EVENTS_SHOWN)?))).await?;
    let rows = snapshots
        .into_iter()
        .map(|snapshot| row(&web, snapshot))
        .collect();
    html(&Page {
        section: Some(Section::Institutions),
        rows,
        events: events
            .into_iter()
            .map(|e| {
                let at = time_us(e.at_us);
                (e, at)
            })
            .collect(),
    })
}

fn row(web: &Web, snapshot: InstitutionSnapshot) -> Row {
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
        snapshot,
        name,
    }
}
