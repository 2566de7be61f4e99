//! The users page: the users the signed-in admin manages, with their
//! roles, tenants and states; adding one (its initial password typed
//! twice), disabling and enabling, another role and tenant. Bank admins
//! and orderer admins only (403 for the others). Every rule and every
//! audit row is [`crate::access::users`]'s: the page turns the form into a
//! role and tenant with [`users::role_and_tenant`], as the CLI does, and
//! shows a refusal with its reason (403 for what the admin may not do,
//! 422 for the rest).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::{AnyRole, Signed};
use super::{Chrome, Section, Web, WebError, html, time_us};
use crate::access::users::{self, NewUser, User};
use crate::access::{AccessError, Role, Tenant};

/// A user as the page lists it.
struct Row {
    name: String,
    role: &'static str,
    tenant: String,
    disabled: bool,
    created: String,
}

impl Row {
    fn of(user: &User) -> Row {
        Row {
            name: user.name.clone(),
            role: user.role.as_str(),
            tenant: tenant_text(&user.tenant),
            disabled: user.disabled,
            created: time_us(user.created_at_us),
        }
    }
}

fn tenant_text(tenant: &Tenant) -> String {
    match tenant {
        Tenant::Bank => "bank".into(),
        Tenant::Institutions(ids) => format!("institutions {}", ids.join(", ")),
        Tenant::Orderer(id) => format!("orderer {id}"),
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct Page {
    chrome: Chrome,
    csrf: String,
    rows: Vec<Row>,
    /// The roles the admin may give.
    roles: Vec<&'static str>,
    /// The orderer admin's own orderer (the form's default).
    orderer: String,
    /// The configured institutions, as a hint.
    institutions: String,
    /// Why a change was refused.
    problem: Option<String>,
}

/// Admits bank admins and orderer admins.
fn admin(AnyRole(signed): AnyRole) -> Result<Signed, WebError> {
    let role = signed.actor().role;
    if matches!(role, Role::BankAdmin | Role::OrdererAdmin) {
        Ok(signed)
    } else {
        Err(WebError::Forbidden(format!(
            "{} ({}) may not manage users",
            signed.actor().user,
            role.as_str()
        )))
    }
}

fn page(web: &Web, signed: &Signed, problem: Option<String>) -> Result<Page, WebError> {
    let actor = signed.actor();
    let rows = web.access.users(actor)?.iter().map(Row::of).collect();
    let roles = Role::ALL
        .into_iter()
        .filter(|r| actor.role == Role::BankAdmin || r.is_orderer())
        .map(Role::as_str)
        .collect();
    let institutions = web
        .institutions
        .iter()
        .map(|i| i.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Page {
        chrome: Chrome::new(Section::Users, signed),
        csrf: signed.csrf().to_string(),
        rows,
        roles,
        orderer: actor.orderer().unwrap_or_default().to_string(),
        institutions,
        problem,
    })
}

pub(super) async fn list(State(web): State<Web>, signed: AnyRole) -> Result<Response, WebError> {
    let signed = admin(signed)?;
    html(&page(&web, &signed, None)?)
}

/// A role and its tenant as the forms post them.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RoleFields {
    role: String,
    /// A bank operator's institutions, separated by commas or spaces.
    institutions: String,
    /// An orderer role's orderer.
    orderer: String,
}

impl RoleFields {
    fn resolve(self, web: &Web) -> Result<(Role, Tenant), AccessError> {
        let institutions = self
            .institutions
            .split([',', ' '])
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect();
        let orderer = Some(self.orderer.trim().to_string()).filter(|o| !o.is_empty());
        let known = |id: &str| web.institutions.iter().any(|i| i.id == id);
        users::role_and_tenant(self.role.trim(), institutions, orderer, known)
    }
}

/// The add form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AddForm {
    name: String,
    #[serde(flatten)]
    role: RoleFields,
    password: String,
    repeat: String,
    csrf: String,
}

/// The page after a change: back to the list (303), or the list with the
/// refusal's reason.
fn outcome(
    web: &Web,
    signed: &Signed,
    done: Result<User, AccessError>,
) -> Result<Response, WebError> {
    let e = match done {
        Ok(_) => return Ok(Redirect::to("/users").into_response()),
        Err(e) => e,
    };
    let status = match e {
        AccessError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AccessError::InvalidName { .. }
        | AccessError::PasswordLength
        | AccessError::UnknownUser { .. }
        | AccessError::UserExists { .. }
        | AccessError::TenantMismatch { .. }
        | AccessError::UnknownRole { .. }
        | AccessError::UnknownInstitution { .. }
        | AccessError::UnknownOrderer { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        e => return Err(e.into()),
    };
    let page = page(web, signed, Some(e.to_string()))?;
    Ok((status, html(&page)?).into_response())
}

/// Adds a user (after the CSRF check and the two passwords' comparison).
pub(super) async fn add(
    State(web): State<Web>,
    signed: AnyRole,
    Form(form): Form<AddForm>,
) -> Result<Response, WebError> {
    let signed = admin(signed)?;
    signed.check(&form.csrf)?;
    if form.password != form.repeat {
        let problem = "the password and its repetition differ".to_string();
        let page = page(&web, &signed, Some(problem))?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)?).into_response());
    }
    let done = match form.role.resolve(&web) {
        Ok((role, tenant)) => {
            let user = NewUser {
                name: form.name.trim().to_string(),
                role,
                tenant,
            };
            web.access
                .add_user(signed.actor(), user, &form.password)
                .await
        }
        Err(e) => Err(e),
    };
    outcome(&web, &signed, done)
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TokenForm {
    csrf: String,
}

pub(super) async fn disable(
    State(web): State<Web>,
    signed: AnyRole,
    Path(name): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    set_disabled(web, signed, name, form, true).await
}

pub(super) async fn enable(
    State(web): State<Web>,
    signed: AnyRole,
    Path(name): Path<String>,
    Form(form): Form<TokenForm>,
) -> Result<Response, WebError> {
    set_disabled(web, signed, name, form, false).await
}

async fn set_disabled(
    web: Web,
    signed: AnyRole,
    name: String,
    form: TokenForm,
    disabled: bool,
) -> Result<Response, WebError> {
    let signed = admin(signed)?;
    signed.check(&form.csrf)?;
    let done = web
        .access
        .set_disabled(signed.actor(), &name, disabled)
        .await;
    outcome(&web, &signed, done)
}

/// The set-role form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RoleForm {
    #[serde(flatten)]
    role: RoleFields,
    csrf: String,
}

/// Gives a user another role and tenant.
pub(super) async fn set_role(
    State(web): State<Web>,
    signed: AnyRole,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, WebError> {
    let signed = admin(signed)?;
    signed.check(&form.csrf)?;
    let done = match form.role.resolve(&web) {
        Ok((role, tenant)) => {
            web.access
                .set_role(signed.actor(), &name, role, tenant)
                .await
        }
        Err(e) => Err(e),
    };
    outcome(&web, &signed, done)
}
