//! Dead letters put back in the store-and-forward queue by a person (the
//! API's `POST /api/saf/{seq}/requeue`, the web's SAF page): re-queued
//! and audited (`saf.requeue`) in one store job, then the replay woken.

use crate::store::sql;
use crate::store::sql::Connection;
use serde_json::json;

use crate::access::Actor;
use crate::access::audit::{self, Action, NewEntry};
use crate::hub::pipeline::Hub;
use crate::standin::saf;
use crate::store::StoreError;

/// Puts dead letter `seq` back in the queue, pending, if `actor` sees its
/// institution; the caller checks that the actor's role may change it.
/// Returns whether it did (`false`: no such dead letter, or one of an
/// institution the actor does not see).
///
/// # Errors
/// The store's.
pub async fn requeue(hub: &Hub, actor: &Actor, seq: i64) -> Result<bool, StoreError> {
    let actor = actor.clone();
    let requeued = hub
        .store()
        .write(move |c| requeue_in(c, &actor, seq))
        .await?;
    if requeued {
        for inst in hub.institutions().iter() {
            inst.saf_wake.notify_one();
        }
    }
    Ok(requeued)
}

fn requeue_in(c: &Connection, actor: &Actor, seq: i64) -> sql::Result<bool> {
    let institution = saf::institution_of(c, seq)?;
    if !institution.is_some_and(|i| actor.sees_institution(&i)) || !saf::requeue(c, seq)? {
        return Ok(false);
    }
    let entry = NewEntry::new(actor, Action::SafRequeue, "saf-item", seq.to_string())
        .after(&json!({ "state": saf::ItemState::Pending.as_str() }));
    audit::record(c, &entry).map(|_| true)
}
