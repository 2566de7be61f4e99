//! The API's answers to a balance file not applied ([`BalancesError`],
//! applied by [`crate::backoffice::balances`]): the JSON API with a status
//! and a body, the SOAP service with a `rejected` answer or a fault whose
//! code is [`BalancesError::hub_code`].

use axum::http::StatusCode;

use super::hub_soap::HubFaultCode;
pub use crate::backoffice::balances::{BalancesError, apply, format_name};
use crate::standin::balance_file::BalanceFileError;
use crate::standin::balances::BalanceError;

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
