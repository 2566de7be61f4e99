//! Applying a balance file that came over the API (an upload or a SOAP
//! `SubmitBalances`), and the one typed error both answer from: the JSON
//! API with a status and a body, the SOAP service with a `rejected` answer
//! or a fault whose code is [`BalancesError::hub_code`].

use std::io::Read;

use axum::http::StatusCode;
use jiff::Timestamp;
use tracing::info;

use super::hub_soap::HubFaultCode;
use crate::hub::pipeline::Hub;
use crate::standin::balance_file::{BalanceFileError, BalanceFormat};
use crate::standin::balances::{self, Applied, BalanceError};
use crate::standin::config::InstitutionConfig;

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

impl BalancesError {
    /// The code in a SOAP fault's `HubFault` and the JSON answer.
    /// [`HubFaultCode::BalancesRejected`] (line errors) is answered
    /// `rejected` over SOAP, never as a fault.
    pub fn hub_code(&self) -> HubFaultCode {
        match self {
            BalancesError::UnknownInstitution(_) => HubFaultCode::UnknownInstitution,
            BalancesError::NotConfigured(_) => HubFaultCode::BalancesNotConfigured,
            BalancesError::UnknownFormat { .. } => HubFaultCode::UnknownFormat,
            BalancesError::Balance(e) => match e {
                BalanceError::File(BalanceFileError::Invalid { .. }) => {
                    HubFaultCode::BalancesRejected
                }
                BalanceError::File(BalanceFileError::Io(_)) => HubFaultCode::BalanceFileUnreadable,
                BalanceError::File(BalanceFileError::Sink(_)) | BalanceError::Store(_) => {
                    HubFaultCode::BalancesNotStored
                }
                BalanceError::File(BalanceFileError::Format(_)) => {
                    HubFaultCode::BalanceFormatBroken
                }
                BalanceError::Older { .. } => HubFaultCode::OlderThanCurrent,
            },
            BalancesError::Task(_) => HubFaultCode::InternalError,
        }
    }

    /// The JSON API's status for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            BalancesError::UnknownInstitution(_) => StatusCode::NOT_FOUND,
            BalancesError::NotConfigured(_) | BalancesError::UnknownFormat { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            BalancesError::Balance(e) => match e {
                BalanceError::File(BalanceFileError::Invalid { .. }) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                BalanceError::File(BalanceFileError::Io(_)) => StatusCode::BAD_REQUEST,
                BalanceError::File(BalanceFileError::Sink(_)) | BalanceError::Store(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                BalanceError::File(BalanceFileError::Format(_)) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                BalanceError::Older { .. } => StatusCode::CONFLICT,
            },
            BalancesError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
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
