//! Applying a balance file that came from a person or a peer (an upload
//! through the API or the web application, a SOAP `SubmitBalances`): the
//! institution's configured format, applied whole or refused whole, and
//! the upload's audit row. The API answers its errors with a status and a
//! body (`api::balances`), the SOAP service with `rejected` or a fault.

use std::io::Read;

use jiff::Timestamp;
use serde_json::json;
use tracing::info;

use crate::access::audit::{Action, NewEntry, Outcome};
use crate::access::{Access, Actor};
use crate::hub::pipeline::Hub;
use crate::standin::balance_file::BalanceFormat;
use crate::standin::balances::{self, Applied, BalanceError};
use crate::standin::config::InstitutionConfig;
use crate::store::StoreError;

/// Why a balance file from the API was not applied. The previous balances
/// stay in use whatever the error.
#[derive(Debug, thiserror::Error)]
pub enum BalancesError {
    /// No institution has this id.
    #[error("unknown institution {0:?}")]
    UnknownInstitution(String),
    /// The institution has no `balances` format configured.
    #[error("institution {0:?} has no balance file format configured")]
    NotConfigured(String),
    /// The request names a format that is not the institution's.
    #[error(
        "format {asked:?} is not configured for institution {institution:?}: its balance files are {configured:?}"
    )]
    UnknownFormat {
        institution: String,
        asked: String,
        configured: &'static str,
    },
    /// The file, its as-of, or storing it failed (see [`BalanceError`]).
    #[error(transparent)]
    Balance(#[from] BalanceError),
    /// The blocking task applying the file failed (panicked or was cancelled).
    #[error("applying the balance file failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The name a `SubmitBalances` gives a format: the `format` key of the
/// institution's `[institution.balances]` section.
pub fn format_name(format: &BalanceFormat) -> &'static str {
    match format {
        BalanceFormat::Csv(_) => "csv",
        BalanceFormat::Fixed(_) => "fixed",
        BalanceFormat::Xml(_) => "xml",
    }
}

/// Applies a balance file on a blocking thread, in the institution's
/// configured format; when `named` is given it must be that format's name.
/// `as_of` is the sender's as-of (it makes the file's own optional).
///
/// # Errors
/// A [`BalancesError`]; nothing changed then.
pub async fn apply(
    hub: &std::sync::Arc<Hub>,
    institutions: &[InstitutionConfig],
    id: &str,
    named: Option<&str>,
    input: impl Read + Send + 'static,
    as_of: Option<Timestamp>,
    source: &'static str,
) -> Result<Applied, BalancesError> {
    let Some(institution) = institutions.iter().find(|i| i.id == id) else {
        return Err(BalancesError::UnknownInstitution(id.to_string()));
    };
    let Some(format) = institution.balances.clone() else {
        return Err(BalancesError::NotConfigured(id.to_string()));
    };
    let configured = format_name(&format);
    if let Some(asked) = named.filter(|asked| *asked != configured) {
        return Err(BalancesError::UnknownFormat {
            institution: id.to_string(),
            asked: asked.to_string(),
            configured,
        });
    }
    let (hub, id_) = (hub.clone(), id.to_string());
    let applied = tokio::task::spawn_blocking(move || {
        balances::apply(hub.store(), hub.book(), &id_, &format, input, as_of, source)
    })
    .await??;
    info!(
        institution = id,
        rows = applied.rows,
        unchanged = applied.unchanged,
        source,
        "balance file applied"
    );
    Ok(applied)
}

/// An upload of institution `id`'s balance file by `actor` (API or web):
/// [`apply`]'d as `upload`, then audited as `balances.upload` — what was
/// applied, or the refusal (outcome `failed`). The caller checks that the
/// actor may change the institution.
///
/// # Errors
/// The outer error when the audit row cannot be written (the file's
/// outcome stands); the inner [`BalancesError`] when the file was not
/// applied (nothing changed then).
pub async fn upload(
    hub: &std::sync::Arc<Hub>,
    institutions: &[InstitutionConfig],
    access: &Access,
    actor: &Actor,
    id: &str,
    input: impl Read + Send + 'static,
    as_of: Option<Timestamp>,
) -> Result<Result<Applied, BalancesError>, StoreError> {
    let applied = apply(hub, institutions, id, None, input, as_of, "upload").await;
    let entry = NewEntry::new(actor, Action::BalanceUpload, "institution", id);
    let entry = match &applied {
        Ok(applied) => entry.after(&serde_json::to_value(applied).unwrap_or_default()),
        Err(e) => entry
            .after(&json!({ "refused": e.to_string() }))
            .outcome(Outcome::Failed),
    };
    access.audit(entry).await?;
    Ok(applied)
}
