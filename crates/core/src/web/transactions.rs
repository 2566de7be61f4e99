//! Transaction search (the criteria of `POST /api/transactions/search`;
//! the form is posted, so a card number travels in the body and never sits
//! in a URL, a history or an access log) and a transaction's story.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, amount, html, moment, read};
use crate::backoffice::search::{Criteria, Page};
use crate::backoffice::{JournalRow, Story};
use crate::journal::txn_id::TxnId;

/// The search form as posted: every criterion of [`Criteria`] but the page
/// size; empty fields are no criterion.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchForm {
    #[serde(default)]
    card: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    institution: String,
    #[serde(default)]
    terminal: String,
    #[serde(default)]
    rrn: String,
    #[serde(default)]
    stan: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    response_code: String,
    #[serde(default)]
    decided_by: String,
    #[serde(default)]
    before: String,
    /// The session's CSRF token.
    #[serde(default)]
    csrf: String,
}

impl SearchForm {
    fn criteria(&self) -> Criteria {
        let given = |v: &String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
        Criteria {
            card: given(&self.card),
            account: given(&self.account),
            institution: given(&self.institution),
            terminal: given(&self.terminal),
            rrn: given(&self.rrn),
            stan: given(&self.stan),
            from: given(&self.from),
            to: given(&self.to),
            response_code: given(&self.response_code),
            decided_by: given(&self.decided_by),
            before: given(&self.before),
            limit: None,
        }
    }

    /// The criteria a next page keeps, as hidden fields (never the card).
    fn kept(&self) -> [(&'static str, &str); 9] {
        [
            ("account", &self.account),
            ("institution", &self.institution),
            ("terminal", &self.terminal),
            ("rrn", &self.rrn),
            ("stan", &self.stan),
            ("from", &self.from),
            ("to", &self.to),
            ("response_code", &self.response_code),
            ("decided_by", &self.decided_by),
        ]
    }

    fn decides(&self, decided_by: &str) -> bool {
        self.decided_by == decided_by
    }
}

/// A row as the results table shows it.
struct Hit {
    row: JournalRow,
    received: String,
    amount: String,
}

#[derive(Template)]
#[template(path = "transactions.html")]
struct Search {
    chrome: Chrome,
    csrf: String,
    /// The criteria echoed back, the card number left out.
    form: SearchForm,
    /// Whether a card number was a criterion (it is not echoed).
    by_card: bool,
    /// The criterion at fault and why.
    problem: Option<(&'static str, String)>,
    /// `None` before the first search.
    hits: Option<Vec<Hit>>,
    next_before: Option<String>,
}

pub(super) async fn form(signed: Signed) -> Result<Response, WebError> {
    html(&Search {
        chrome: Chrome::new(Section::Transactions, &signed),
        csrf: signed.csrf().to_string(),
        form: SearchForm::default(),
        by_card: false,
        problem: None,
        hits: None,
        next_before: None,
    })
}

pub(super) async fn search(
    State(web): State<Web>,
    signed: Signed,
    Form(mut form): Form<SearchForm>,
) -> Result<Response, WebError> {
    signed.check(&form.csrf)?;
    let actor = signed.actor().clone();
    let mut criteria = form.criteria();
    criteria.institution = actor.scoped_institution(criteria.institution)?;
    let by_card = criteria.card.is_some();
    form.card.clear();
    let cards = web.hub.cards().clone();
    let query = match criteria.compile(|pan| cards.hash(pan)) {
        Ok(query) => query,
        Err(e) => {
            return html(&Search {
                chrome: Chrome::new(Section::Transactions, &signed),
                csrf: signed.csrf().to_string(),
                form,
                by_card,
                problem: Some((e.field, e.reason.to_string())),
                hits: Some(Vec::new()),
                next_before: None,
            });
        }
    };
    let store = web.hub.store().clone();
    let Page {
        transactions,
        next_before,
    } = read(move || query.run(&store)).await?;
    let hits = transactions
        .into_iter()
        .filter(|row| actor.sees_transaction(row.institution.as_deref()))
        .map(|row| Hit {
            received: moment(&row.received_at),
            amount: amount(row.amount_minor, row.currency),
            row,
        })
        .collect();
    html(&Search {
        chrome: Chrome::new(Section::Transactions, &signed),
        csrf: signed.csrf().to_string(),
        form,
        by_card,
        problem: None,
        hits: Some(hits),
        next_before,
    })
}

#[derive(Template)]
#[template(path = "story.html")]
struct StoryPage {
    chrome: Chrome,
    story: Story,
    amount: String,
    movement: Option<String>,
}

pub(super) async fn story(
    State(web): State<Web>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let txn_id: TxnId = id.parse().map_err(|_| {
        WebError::BadRequest(format!("{id:?} is not a transaction id (16 hex digits)"))
    })?;
    let store = web.hub.store().clone();
    let story = read(move || crate::backoffice::story(&store, txn_id))
        .await?
        .filter(|s| {
            signed
                .actor()
                .sees_transaction(s.transaction.institution.as_deref())
        })
        .ok_or_else(|| WebError::NotFound(format!("no transaction {id}")))?;
    let currency = story.transaction.currency;
    html(&StoryPage {
        chrome: Chrome::new(Section::Transactions, &signed),
        amount: amount(story.transaction.amount_minor, currency),
        movement: story.movement.as_ref().map(|m| {
            format!(
                "{} of {} ({} remaining), approved by {}, {}",
                m.kind,
                amount(m.amount_minor, currency),
                amount(m.remaining_minor, currency),
                m.approved_by,
                m.state
            )
        }),
        story,
    })
}
