//! The web application's sessions on [`crate::access`]: the login form, the
//! session cookie, logout, and [`Signed`], the extractor that gives every
//! page handler its [`Actor`] (or sends the browser to `/login`).
//!
//! The cookie holds the session id only: `HttpOnly; SameSite=Strict;
//! Path=/`, and `Secure` when the pages are served over TLS. A login always
//! opens a new session and ends the one the browser came with, so no id
//! set before a login is valid after it. Forms carry the session's CSRF
//! token in a hidden field; [`Signed::check`] compares it in constant time
//! before any change. The login form, which has no session yet, carries a
//! token that must equal a short-lived cookie set with the form (a
//! SameSite=Strict cookie another site cannot send).

use askama::Template;
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Chrome, Me, PeerAddr, Section, Web, WebError, html};
use crate::access::sessions::{Session, csrf_matches};
use crate::access::{AccessError, Actor, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cardhub_session";
/// The login form's CSRF cookie's name.
pub const LOGIN_COOKIE: &str = "cardhub_login";

/// A request of a signed-in bank user: the session, resolved from the
/// cookie. Rejection: a redirect to `/login` without a valid session (the
/// stale cookie cleared), 403 for an orderer's role.
pub(super) struct Signed {
    session: Session,
}

impl Signed {
    pub(super) fn actor(&self) -> &Actor {
        &self.session.actor
    }

    pub(super) fn me(&self) -> Me {
        Me {
            name: self.session.actor.user.clone(),
            role: self.session.actor.role.as_str(),
            prepaid: self.session.actor.role.reads_prepaid(),
            bank: !self.session.actor.role.is_orderer(),
            users: matches!(
                self.session.actor.role,
                Role::BankAdmin | Role::OrdererAdmin
            ),
            csrf: self.session.csrf.clone(),
        }
    }

    /// The CSRF token the session's forms carry.
    pub(super) fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// Refuses a form whose CSRF token is not the session's.
    ///
    /// # Errors
    /// [`WebError::Forbidden`] for a missing or wrong token.
    pub(super) fn check(&self, given: &str) -> Result<(), WebError> {
        if csrf_matches(&self.session, given) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "the form's security token is missing or wrong; nothing was changed \
                 (reload the page and try again)"
                    .into(),
            ))
        }
    }

    /// Whether the user may change institution `id` (bank admins, and
    /// bank operators of it; auditors read only).
    pub(super) fn may_change(&self, id: &str) -> bool {
        matches!(self.actor().role, Role::BankAdmin | Role::BankOperator)
            && self.actor().sees_institution(id)
    }
}

impl FromRequestParts<Web> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let session = session(parts, web).await?;
        if session.actor.role.is_orderer() {
            return Err(WebError::Forbidden(format!(
                "{} ({}) may not use the bank's pages",
                session.actor.user,
                session.actor.role.as_str()
            ))
            .into_response());
        }
        Ok(Signed { session })
    }
}

/// A request of a signed-in user whose role reads prepaid data (bank
/// admins, auditors, orderers' users): the prepaid pages' extractor.
/// Rejection: as [`Signed`]'s, 403 for a bank operator.
pub(super) struct PrepaidSigned(pub(super) Signed);

impl FromRequestParts<Web> for PrepaidSigned {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let session = session(parts, web).await?;
        if !session.actor.role.reads_prepaid() {
            return Err(WebError::Forbidden(format!(
                "{} ({}) may not use the prepaid pages",
                session.actor.user,
                session.actor.role.as_str()
            ))
            .into_response());
        }
        Ok(PrepaidSigned(Signed { session }))
    }
}

/// A request of a signed-in user of any role (the logout).
pub(super) struct AnyRole(pub(super) Signed);

impl FromRequestParts<Web> for AnyRole {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        Ok(AnyRole(Signed {
            session: session(parts, web).await?,
        }))
    }
}

/// The request's login session: a redirect to `/login` without a valid
/// one (the stale cookie cleared).
async fn session(parts: &Parts, web: &Web) -> Result<Session, Response> {
    let from = parts.extensions.get::<PeerAddr>().and_then(|p| p.0);
    let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/login").into_response());
    };
    let session = match web.access.resolve(&id, from).await {
        Ok(session) => session,
        Err(AccessError::NoSession) => {
            let clear = removal(SESSION_COOKIE, web.tls);
            return Err(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response());
        }
        Err(e) => return Err(WebError::from(e).into_response()),
    };
    Ok(session)
}

/// The value of cookie `name` in the request, if any.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, `Secure`
/// with TLS; a browser-session cookie (the server times sessions out).
fn set_cookie(name: &'static str, value: String, tls: bool) -> HeaderValue {
    let cookie = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(tls)
        .build();
    // Names are constants and values hex digits: always a valid header.
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Path=/"))
}

/// A `Set-Cookie` value that deletes cookie `name`.
fn removal(name: &'static str, tls: bool) -> HeaderValue {
    let mut cookie = Cookie::build((name, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(tls)
        .build();
    cookie.make_removal();
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Path=/"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    name: String,
    problem: Option<String>,
}

/// The login form, with a fresh token in its field and in a cookie.
pub(super) async fn form(State(web): State<Web>) -> Result<Response, WebError> {
    login_page(&web, String::new(), None)
}

fn login_page(web: &Web, name: String, problem: Option<String>) -> Result<Response, WebError> {
    let csrf = hex::encode(rand::random::<[u8; 32]>());
    let status = match &problem {
        Some(_) => axum::http::StatusCode::UNAUTHORIZED,
        None => axum::http::StatusCode::OK,
    };
    let page = html(&LoginPage {
        chrome: Chrome {
            section: None,
            me: None,
        },
        csrf: csrf.clone(),
        name,
        problem,
    })?;
    Ok((
        status,
        [(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, csrf, web.tls))],
        page,
    )
        .into_response())
}

/// The login form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Credentials {
    name: String,
    password: String,
    csrf: String,
}

/// Checks the form's token against its cookie, then the credentials; on
/// success ends the session the browser came with, sets the new one's
/// cookie and goes to the dashboard (an orderer's user: to the prepaid
/// pages).
pub(super) async fn login(
    State(web): State<Web>,
    peer: Option<axum::Extension<PeerAddr>>,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Result<Response, WebError> {
    let from = peer.and_then(|p| p.0.0);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(credentials.csrf.as_bytes())) {
        return Err(WebError::Forbidden(
            "the login form's security token is missing or wrong (reload the login page)".into(),
        ));
    }
    let login = match web
        .access
        .login(&credentials.name, &credentials.password, from)
        .await
    {
        Ok(login) => login,
        Err(e @ (AccessError::BadCredentials | AccessError::TooManyFailures { .. })) => {
            return login_page(&web, credentials.name, Some(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(before) = cookie(&headers, SESSION_COOKIE) {
        web.access.logout(&before, from).await?;
    }
    // Orderers' users have the prepaid pages only.
    let home = if login.session.actor.role.is_orderer() {
        "/prepaid"
    } else {
        "/"
    };
    let mut response = Redirect::to(home).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, login.id.to_string(), web.tls),
    );
    cookies.append(header::SET_COOKIE, removal(LOGIN_COOKIE, web.tls));
    Ok(response)
}

/// The logout form as posted.
#[derive(Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (after its CSRF check) and clears the cookie.
pub(super) async fn logout(
    State(web): State<Web>,
    AnyRole(signed): AnyRole,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        web.access.logout(&id, signed.actor().from).await?;
    }
    Ok((
        [(header::SET_COOKIE, removal(SESSION_COOKIE, web.tls))],
        Redirect::to("/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_with_tls() {
        let plain = set_cookie(SESSION_COOKIE, "ab12".into(), false);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("cardhub_session=ab12"), "{plain}");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(plain.contains(flag), "{plain}");
        }
        assert!(!plain.contains("Secure"), "{plain}");
        let tls = set_cookie(SESSION_COOKIE, "ab12".into(), true);
        assert!(tls.to_str().unwrap().contains("Secure"));
        let gone = removal(SESSION_COOKIE, false);
        assert!(gone.to_str().unwrap().contains("Max-Age=0"), "{gone:?}");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; cardhub_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }
}
