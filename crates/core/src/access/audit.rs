//! The audit log: who changed what, from where, before and after, and with
//! what outcome. Append-only (the store's triggers refuse UPDATE and
//! DELETE). A card is named only by its masked PAN or its account, never a
//! full PAN; no secret (password, token, session id) is ever written here.
//!
//! A change and its audit row go in one store job: callers that write run
//! [`record`] on the job's connection. [`Access::audit`] is the convenience
//! for callers that have no job of their own.

use crate::store::sql;
use std::net::IpAddr;

use crate::store::sql::{Connection, params};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Access, Actor, Role, now_us};
use crate::store::StoreError;

/// What was done. A closed list: the API and the CLI search by these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Logout,
    UserAdd,
    UserDisable,
    UserEnable,
    UserSetRole,
    UserSetPassword,
    TokenIssue,
    TokenRevoke,
    InstitutionState,
    SafPause,
    SafResume,
    SafRequeue,
    BalanceUpload,
    CardStatus,
    CardProfile,
    PrepaidOrderer,
    PrepaidProgramme,
    PrepaidOpenCard,
    PrepaidLoad,
    PrepaidMove,
    PrepaidReplace,
    PrepaidCardRange,
    PrepaidOrder,
    PrepaidDelivered,
    PrepaidPinReorder,
    PrepaidAttestation,
    PrepaidLoadFile,
}

impl Action {
    /// Every action, in the order the docs list them.
    pub const ALL: [Action; 28] = [
        Action::Login,
        Action::Logout,
        Action::UserAdd,
        Action::UserDisable,
        Action::UserEnable,
        Action::UserSetRole,
        Action::UserSetPassword,
        Action::TokenIssue,
        Action::TokenRevoke,
        Action::InstitutionState,
        Action::SafPause,
        Action::SafResume,
        Action::SafRequeue,
        Action::BalanceUpload,
        Action::CardStatus,
        Action::CardProfile,
        Action::PrepaidOrderer,
        Action::PrepaidProgramme,
        Action::PrepaidOpenCard,
        Action::PrepaidLoad,
        Action::PrepaidMove,
        Action::PrepaidReplace,
        Action::PrepaidCardRange,
        Action::PrepaidOrder,
        Action::PrepaidDelivered,
        Action::PrepaidPinReorder,
        Action::PrepaidAttestation,
        Action::PrepaidLoadFile,
    ];

    /// The name in the store, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::UserAdd => "user.add",
            Action::UserDisable => "user.disable",
            Action::UserEnable => "user.enable",
            Action::UserSetRole => "user.set-role",
            Action::UserSetPassword => "user.set-password",
            Action::TokenIssue => "token.issue",
            Action::TokenRevoke => "token.revoke",
            Action::InstitutionState => "institution.state",
            Action::SafPause => "saf.pause",
            Action::SafResume => "saf.resume",
            Action::SafRequeue => "saf.requeue",
            Action::BalanceUpload => "balances.upload",
            Action::CardStatus => "card.status",
            Action::CardProfile => "card.profile",
            Action::PrepaidOrderer => "prepaid.orderer",
            Action::PrepaidProgramme => "prepaid.programme",
            Action::PrepaidOpenCard => "prepaid.open-card",
            Action::PrepaidLoad => "prepaid.load",
            Action::PrepaidMove => "prepaid.move",
            Action::PrepaidReplace => "prepaid.replace",
            Action::PrepaidCardRange => "prepaid.card-range",
            Action::PrepaidOrder => "prepaid.order",
            Action::PrepaidDelivered => "prepaid.delivered",
            Action::PrepaidPinReorder => "prepaid.pin-reorder",
            Action::PrepaidAttestation => "prepaid.attestation",
            Action::PrepaidLoadFile => "prepaid.load-file",
        }
    }

    /// The action named `name` (as [`Action::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done as asked.
    Done,
    /// Refused before trying (a role that may not, a login rate limit, a
    /// disabled user).
    Refused,
    /// Tried and failed (a wrong password, a refused file).
    Failed,
}

impl Outcome {
    /// The name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// One row to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The user name, `api-token`, `cli`, or for a failed login the name tried.
    pub actor: String,
    /// The actor's role, when known.
    pub role: Option<Role>,
    pub source: Option<IpAddr>,
    pub action: Action,
    /// The kind of object: `user`, `token`, `institution`, `saf-item`,
    /// `orderer`, `programme`, `card` (account or masked PAN), `order`, ...
    pub object_kind: &'static str,
    pub object_id: String,
    /// The object's state before, as JSON text.
    pub before: Option<String>,
    /// The object's state after, as JSON text.
    pub after: Option<String>,
    pub outcome: Outcome,
}

impl NewEntry {
    /// A successful `action` on `kind` `id` by `actor`, no before or after.
    pub fn new(actor: &Actor, action: Action, kind: &'static str, id: impl Into<String>) -> Self {
        NewEntry {
            actor: actor.user.clone(),
            role: Some(actor.role),
            source: actor.from,
            action,
            object_kind: kind,
            object_id: id.into(),
            before: None,
            after: None,
            outcome: Outcome::Done,
        }
    }

    /// With the object's state before, as JSON.
    #[must_use]
    pub fn before(mut self, value: &serde_json::Value) -> Self {
        self.before = Some(value.to_string());
        self
    }

    /// With the object's state after, as JSON.
    #[must_use]
    pub fn after(mut self, value: &serde_json::Value) -> Self {
        self.after = Some(value.to_string());
        self
    }

    /// With another outcome than [`Outcome::Done`].
    #[must_use]
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// A row of the log, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    /// Increasing; the cursor of the next page.
    pub id: i64,
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub actor: String,
    pub role: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    /// JSON text.
    pub before: Option<String>,
    /// JSON text.
    pub after: Option<String>,
    /// `done`, `refused` or `failed`.
    pub outcome: String,
}

/// Criteria of a search; `None` matches anything. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub actor: Option<String>,
    pub action: Option<Action>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    /// From this time on (µs, inclusive).
    pub from_us: Option<i64>,
    /// Before this time (µs, exclusive).
    pub to_us: Option<i64>,
    /// Only rows older than this id (the last id of the previous page).
    pub before_id: Option<i64>,
    /// At most this many rows ([`DEFAULT_LIMIT`] when `None`; capped at [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

/// Rows per page by default.
pub const DEFAULT_LIMIT: usize = 100;

/// The most rows one search returns.
pub const MAX_LIMIT: usize = 1000;

/// Appends `entry` on `conn` (a store job's connection, so it commits with
/// the change it records) and returns its id.
///
/// # Errors
/// SQLite's, which fail the whole job.
pub fn record(conn: &Connection, entry: &NewEntry) -> sql::Result<i64> {
    conn.prepare_insert(
        "INSERT INTO audit_log (at_us, actor, role, source, action, object_kind, object_id, \
         before, after, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .insert(params![
        now_us(),
        entry.actor,
        entry.role.map(Role::as_str),
        entry.source.map(|s| s.to_string()),
        entry.action.as_str(),
        entry.object_kind,
        entry.object_id,
        entry.before,
        entry.after,
        entry.outcome.as_str(),
    ])
}

/// The rows matching `query`, newest first.
///
/// # Errors
/// SQLite's.
pub fn search(conn: &Connection, query: &Query) -> sql::Result<Vec<Entry>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut statement = conn.prepare_cached(
        "SELECT id, at_us, actor, role, source, action, object_kind, object_id, before, after, \
         outcome FROM audit_log \
         WHERE (CAST(?1 AS TEXT) IS NULL OR actor = ?1) \
           AND (CAST(?2 AS TEXT) IS NULL OR action = ?2) \
           AND (CAST(?3 AS TEXT) IS NULL OR object_kind = ?3) \
           AND (CAST(?4 AS TEXT) IS NULL OR object_id = ?4) \
           AND (CAST(?5 AS BIGINT) IS NULL OR at_us >= ?5) \
           AND (CAST(?6 AS BIGINT) IS NULL OR at_us < ?6) \
           AND (CAST(?7 AS BIGINT) IS NULL OR id < ?7) \
         ORDER BY id DESC LIMIT ?8",
    )?;
    let rows = statement.query_map(
        params![
            query.actor,
            query.action.map(Action::as_str),
            query.object_kind,
            query.object_id,
            query.from_us,
            query.to_us,
            query.before_id,
            i64::try_from(limit).unwrap_or(i64::MAX),
        ],
        |r| {
            Ok(Entry {
                id: r.get(0)?,
                at_us: r.get(1)?,
                actor: r.get(2)?,
                role: r.get(3)?,
                source: r.get(4)?,
                action: r.get(5)?,
                object_kind: r.get(6)?,
                object_id: r.get(7)?,
                before: r.get(8)?,
                after: r.get(9)?,
                outcome: r.get(10)?,
            })
        },
    )?;
    rows.collect()
}

impl Access {
    /// Appends `entry` in a store job of its own, for callers whose change
    /// is not a store job (an institution state held in memory first).
    ///
    /// # Errors
    /// As [`crate::store::Store::write`].
    pub async fn audit(&self, entry: NewEntry) -> Result<i64, StoreError> {
        self.store.write(move |c| record(c, &entry)).await
    }

    /// The audit rows matching `query`, newest first. Only bank admins and
    /// auditors read the audit log.
    ///
    /// # Errors
    /// [`super::AccessError::Forbidden`] for other roles; the store's.
    pub fn search_audit(
        &self,
        by: &Actor,
        query: &Query,
    ) -> Result<Vec<Entry>, super::AccessError> {
        super::require(
            by,
            matches!(by.role, Role::BankAdmin | Role::Auditor),
            "read the audit log",
        )?;
        Ok(self.store.read(|c| search(c, query))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a fresh file, every migration applied.
    fn log() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("hub.db")).unwrap();
        (dir, store)
    }

    fn append(store: &crate::store::Store, entry: NewEntry) -> i64 {
        store.write_blocking(move |c| record(c, &entry)).unwrap()
    }

    #[test]
    fn every_action_parses_back_from_its_name() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("delete"), None);
    }

    #[test]
    fn rows_cannot_be_changed_or_deleted() {
        let (_dir, store) = log();
        let id = append(
            &store,
            NewEntry::new(&Actor::cli(), Action::UserAdd, "user", "alice"),
        );
        let update = store.write_blocking(move |c| {
            c.execute("UPDATE audit_log SET actor = 'x' WHERE id = ?1", [id])
        });
        assert!(format!("{:?}", update.unwrap_err()).contains("append-only"));
        let delete = store.write_blocking(|c| c.execute("DELETE FROM audit_log", []));
        assert!(format!("{:?}", delete.unwrap_err()).contains("append-only"));
        let rows = store.read(|c| search(c, &Query::default())).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].actor, "cli");
    }

    #[test]
    fn search_filters_and_pages_newest_first() {
        let (_dir, store) = log();
        for i in 0..5 {
            let action = if i % 2 == 0 {
                Action::Login
            } else {
                Action::Logout
            };
            let entry = NewEntry::new(&Actor::cli(), action, "session", format!("s{i}"))
                .after(&serde_json::json!({ "i": i }));
            append(&store, entry);
        }
        let logins = Query {
            action: Some(Action::Login),
            limit: Some(2),
            ..Query::default()
        };
        let first = store.read(|c| search(c, &logins)).unwrap();
        let ids: Vec<&str> = first.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(ids, ["s4", "s2"]);
        let next = Query {
            before_id: first.last().map(|e| e.id),
            ..logins
        };
        let second = store.read(|c| search(c, &next)).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].object_id, "s0");
        assert_eq!(second[0].after.as_deref(), Some(r#"{"i":0}"#));
        assert_eq!(second[0].role.as_deref(), Some("bank-admin"));
    }
}
