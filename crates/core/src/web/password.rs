//! Changing one's own password (every signed-in user, of any role): the current one is
//! checked first, then the new one (twice, to catch a typo) is set through
//! [`crate::access::Access::change_own_password`], which audits it
//! (`user.set-password`; a wrong current password as failed).

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::{AnyRole, Signed};
use super::{Chrome, Section, Web, WebError, html};
use crate::access::AccessError;

#[derive(Template)]
#[template(path = "password.html")]
struct Page {
    chrome: Chrome,
    csrf: String,
    /// Why the change was refused.
    problem: Option<String>,
    changed: bool,
}

pub(super) async fn form(AnyRole(signed): AnyRole) -> Result<Response, WebError> {
    html(&page(&signed, None, false))
}

fn page(signed: &Signed, problem: Option<String>, changed: bool) -> Page {
    Page {
        chrome: Chrome::new(Section::Password, signed),
        csrf: signed.csrf().to_string(),
        problem,
        changed,
    }
}

/// The form as posted.
#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    csrf: String,
}

/// Changes the password; a refusal is shown with the form (422).
pub(super) async fn change(
    State(web): State<Web>,
    AnyRole(signed): AnyRole,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let refused = |problem: String| -> Result<Response, WebError> {
        let page = page(&signed, Some(problem), false);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&page)?).into_response())
    };
    if form.new != form.repeat {
        return refused("the new password and its repetition differ".into());
    }
    match web
        .access
        .change_own_password(signed.actor(), &form.current, &form.new)
        .await
    {
        Ok(_) => html(&page(&signed, None, true)),
        Err(AccessError::BadCredentials) => refused("the current password is wrong".into()),
        Err(e @ AccessError::PasswordLength) => refused(e.to_string()),
        Err(e) => Err(e.into()),
    }
}
