//! Who calls the API, and what each route lets them do.
//!
//! The bearer check ([`bearer`]) accepts the `[api]` machine token (actor
//! `api-token`, bank admin, the whole bank) or a user's API token
//! (`cardhub users token issue`: its user's role and tenant; revoked tokens
//! and disabled users refused), and puts the [`Actor`], with the peer
//! address, in the request's extensions. Each group of routes then states
//! the roles it admits ([`Need`], checked by [`guard`]: 403 `FORBIDDEN`
//! otherwise); which tenant's data a role sees is the service layer's
//! business, in the handlers.
//!
//! Also `GET /api/audit`: the audit log, for bank admins and auditors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::server::Api;
use super::tls::TlsListener;
use crate::access::audit::{self, Action};
use crate::access::{Access, AccessError, Actor, Role};

/// The peer address of a connection, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// What the bearer check needs: the machine token and the user tokens.
#[derive(Clone)]
pub(super) struct Gate {
    pub(super) token: Arc<str>,
    pub(super) access: Access,
}

/// The bearer check in front of every protected route.
pub(super) async fn bearer(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let from = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(addr))| addr.ip());
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let actor = match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(gate.token.as_bytes())) => {
            Some(Actor::machine(from))
        }
        Some(given) => match gate.access.token_actor(given, from) {
            Ok(actor) => actor,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    match actor {
        Some(actor) => {
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        None => {
            ApiError::new(StatusCode::UNAUTHORIZED, "bearer token missing or wrong").into_response()
        }
    }
}

/// The roles a group of routes admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Monitoring, search, the SAF queue: the bank's roles.
    BankRead,
    /// Institution states, SAF control, balance files: bank admins and
    /// operators (of their institutions).
    BankChange,
    /// Reading prepaid data: bank admins, auditors, orderer users (of
    /// their orderer).
    PrepaidRead,
    /// Loads, moves, replacements, orders, attestation: bank admins and
    /// orderer users (of their orderer).
    PrepaidChange,
    /// The bank's own prepaid reads (the ledger audit, the accounting
    /// export): bank admins and auditors.
    BankPrepaidRead,
    /// Setting up the ledger and the card producer's files, the SOAP
    /// service: bank admins.
    BankAdmin,
    /// The audit log: bank admins and auditors.
    Audit,
}

impl Need {
    /// Whether `role` may use the group's routes.
    pub(super) fn admits(self, role: Role) -> bool {
        use Role::*;
        match self {
            Need::BankRead => matches!(role, BankAdmin | BankOperator | Auditor),
            Need::BankChange => matches!(role, BankAdmin | BankOperator),
            Need::PrepaidRead => role.reads_prepaid(),
            Need::PrepaidChange => role.changes_prepaid(),
            Need::BankPrepaidRead => role.reads_bank_prepaid(),
            Need::Audit => matches!(role, BankAdmin | Auditor),
            Need::BankAdmin => role == BankAdmin,
        }
    }
}

/// The role check of a group of routes (after [`bearer`]).
pub(super) async fn guard(State(need): State<Need>, request: Request, next: Next) -> Response {
    match request.extensions().get::<Actor>() {
        Some(actor) if need.admits(actor.role) => next.run(request).await,
        Some(actor) => forbidden(actor).into_response(),
        None => {
            ApiError::new(StatusCode::UNAUTHORIZED, "bearer token missing or wrong").into_response()
        }
    }
}

/// The 403 answer for `actor`.
pub(super) fn forbidden(actor: &Actor) -> ApiError {
    ApiError::with_code(
        StatusCode::FORBIDDEN,
        format!("{} ({}) may not do this", actor.user, actor.role.as_str()),
        "FORBIDDEN",
    )
}

/// Documents the 403 answer on every operation of `doc`, and adds it to
/// its components.
pub(super) fn document_forbidden(doc: &mut OpenApi) {
    super::server::document_error_answer(
        doc,
        StatusCode::FORBIDDEN,
        (
            "Forbidden",
            "the caller's role may not use this route (code `FORBIDDEN`)",
        ),
        |_| {},
    );
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        let status = match &e {
            AccessError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AccessError::UnknownUser { .. } | AccessError::UnknownToken { .. } => {
                StatusCode::NOT_FOUND
            }
            AccessError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            AccessError::Hash(_) | AccessError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AccessError::BadCredentials | AccessError::NoSession => StatusCode::UNAUTHORIZED,
            AccessError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccessError::UserExists { .. } => StatusCode::CONFLICT,
            AccessError::InvalidName { .. }
            | AccessError::PasswordLength
            | AccessError::InvalidLabel
            | AccessError::TenantMismatch { .. }
            | AccessError::UnknownRole { .. }
            | AccessError::UnknownInstitution { .. }
            | AccessError::UnknownOrderer { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e)
    }
}

/// Criteria of `GET /api/audit`; every one optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// Only this actor (a user name, `api-token`, `cli`).
    actor: Option<String>,
    /// Only this action (`login`, `user.add`, `prepaid.load`, ...).
    action: Option<String>,
    /// Only objects of this kind (`user`, `token`, `card`, `institution`, ...).
    object_kind: Option<String>,
    /// Only this object id.
    object_id: Option<String>,
    /// From this time on (µs since the epoch).
    from_us: Option<i64>,
    /// Before this time (µs since the epoch).
    to_us: Option<i64>,
    /// Only rows older than this id: the previous page's `next_before`.
    before: Option<i64>,
    /// Rows per page (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditPage {
    pub entries: Vec<audit::Entry>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// The audit log, newest first: who changed what, from where, and how it
/// ended. Bank admins and auditors only.
#[utoipa::path(get, path = "/api/audit", params(AuditQuery), responses(
    (status = OK, body = AuditPage),
    (status = BAD_REQUEST, description = "a criterion is not understood (plain text)"),
    (status = UNPROCESSABLE_ENTITY, description = "an unknown action", body = ErrorBody),
    (status = SERVICE_UNAVAILABLE, description = "the store does not answer", body = ErrorBody),
))]
pub(super) async fn audit_log(
    State(api): State<Api>,
    axum::Extension(actor): axum::Extension<Actor>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let action = match q.action.as_deref() {
        Some(name) => Some(Action::parse(name).ok_or_else(|| {
            ApiError::field(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown action {name:?}"),
                "action",
            )
        })?),
        None => None,
    };
    let limit = q
        .limit
        .unwrap_or(audit::DEFAULT_LIMIT)
        .clamp(1, audit::MAX_LIMIT);
    let query = audit::Query {
        actor: q.actor,
        action,
        object_kind: q.object_kind,
        object_id: q.object_id,
        from_us: q.from_us,
        to_us: q.to_us,
        before_id: q.before,
        limit: Some(limit),
    };
    let access = api.access.clone();
    let entries =
        tokio::task::spawn_blocking(move || access.search_audit(&actor, &query)).await??;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_read_and_change_nothing() {
        for need in [Need::BankChange, Need::PrepaidChange, Need::BankAdmin] {
            assert!(!need.admits(Role::Auditor), "{need:?}");
        }
        assert!(Need::Audit.admits(Role::Auditor));
        assert!(!Need::Audit.admits(Role::BankOperator));
        assert!(!Need::BankRead.admits(Role::OrdererAdmin));
        assert!(Need::PrepaidChange.admits(Role::OrdererUser));
        assert!(!Need::PrepaidRead.admits(Role::BankOperator));
    }
}
