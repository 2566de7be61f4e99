//! The JSON API's error answers: a status and an [`ErrorBody`] (or, for a
//! balance file refused line by line, a [`Rejected`]). The types here are
//! what the handlers send and what `/openapi.json` documents.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::balances::BalancesError;
use super::hub_soap::{HubFaultCode, LineErrorOut};
use crate::standin::balance_file::BalanceFileError;
use crate::standin::balances::BalanceError;
use crate::standin::state::StateError;

/// Every error answer of the JSON API but a refused balance file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The request field at fault, where one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// For state changes and balance files: the code the SOAP service's
    /// HubFault carries for the same error (docs/vendor-guide.md, Faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

/// A balance file refused, every problem listed (up to a cap), the
/// previous balances staying in use; or a prepaid load file refused the
/// same way, nothing booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Rejected {
    pub error: String,
    /// `BALANCES_REJECTED` (a balance file), `LOAD_FILE_REJECTED` (a
    /// prepaid load file).
    pub code: &'static str,
    pub problems: Vec<LineErrorOut>,
    /// Problems not listed.
    pub more: usize,
}

/// The body of an error answer: an [`ErrorBody`], or a [`Rejected`] for a
/// balance file refused line by line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ErrorOrRejected)]
pub enum Body {
    Error(ErrorBody),
    Rejected(Rejected),
}

/// An error answer: a status and its JSON body.
#[derive(Debug)]
pub struct ApiError(StatusCode, Body);

impl ApiError {
    /// `{"error": message}` with `status`.
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        ApiError::with(status, message, None, None)
    }

    /// A criterion or field of the request is wrong: `{"error", "field"}`.
    pub fn field(status: StatusCode, message: impl std::fmt::Display, field: &'static str) -> Self {
        ApiError::with(status, message, Some(field), None)
    }

    /// `{"error", "code"}` with `status`.
    pub(super) fn with_code(
        status: StatusCode,
        message: impl std::fmt::Display,
        code: &'static str,
    ) -> ApiError {
        ApiError::with(status, message, None, Some(code))
    }

    fn coded(status: StatusCode, message: impl std::fmt::Display, code: HubFaultCode) -> Self {
        ApiError::with(status, message, None, Some(code.as_str()))
    }

    fn with(
        status: StatusCode,
        message: impl std::fmt::Display,
        field: Option<&'static str>,
        code: Option<&'static str>,
    ) -> ApiError {
        let body = ErrorBody {
            error: message.to_string(),
            field,
            code,
        };
        ApiError(status, Body::Error(body))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        let status = match e {
            StateError::UnknownInstitution(_) => StatusCode::NOT_FOUND,
            StateError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            StateError::UnknownState(_)
            | StateError::NotSignallable(_)
            | StateError::OfflineOnly(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::coded(status, &e, HubFaultCode::of_state_error(&e))
    }
}

impl From<BalancesError> for ApiError {
    fn from(e: BalancesError) -> ApiError {
        let (status, code) = (e.http_status(), e.hub_code());
        match e {
            BalancesError::Balance(BalanceError::File(BalanceFileError::Invalid {
                problems,
                more,
            })) => ApiError(
                status,
                Body::Rejected(Rejected {
                    error: "balance file rejected; the previous balances stay in use".into(),
                    code: code.as_str(),
                    problems: problems.into_iter().map(LineErrorOut::from).collect(),
                    more,
                }),
            ),
            e => ApiError::coded(status, &e, code),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e)
    }
}

impl From<crate::prepaid::PrepaidError> for ApiError {
    fn from(e: crate::prepaid::PrepaidError) -> ApiError {
        use crate::prepaid::PrepaidError as P;
        let status = match &e {
            P::UnknownCard { .. }
            | P::UnknownOrderer { .. }
            | P::UnknownProgramme { .. }
            | P::UnknownOriginal { .. }
            | P::UnknownPurchase { .. } => StatusCode::NOT_FOUND,
            P::Exists { .. } | P::ReferenceConflict { .. } => StatusCode::CONFLICT,
            P::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            P::Export(_) => StatusCode::INTERNAL_SERVER_ERROR,
            P::Cards(c) => card_status(c),
            P::InvalidText { field, .. } => {
                let field = *field;
                return ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e, field);
            }
            P::BadPeriod { field, .. } => {
                let field = *field;
                return ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e, field);
            }
            P::CardReplaced { .. }
            | P::CurrencyMismatch { .. }
            | P::InvalidAmount { .. }
            | P::OverMax { .. }
            | P::InsufficientFunds { .. }
            | P::NothingToReverse { .. }
            | P::HoldNotOpen { .. }
            | P::CaptureExceedsHold { .. }
            | P::NotMovable { .. }
            | P::DailyLimit { .. }
            | P::NotAttestable { .. }
            | P::InvalidDay { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e)
    }
}

impl From<crate::prepaid::orders::OrderError> for ApiError {
    fn from(e: crate::prepaid::orders::OrderError) -> ApiError {
        use crate::prepaid::orders::OrderError as O;
        let status = match e {
            O::Ledger(e) => return e.into(),
            O::Cards(ref c) => card_status(c),
            O::UnknownOrder { .. } | O::UnknownMailer { .. } => StatusCode::NOT_FOUND,
            O::ReferenceConflict { .. } | O::Contended { .. } | O::IllegalTransition { .. } => {
                StatusCode::CONFLICT
            }
            O::File { .. } | O::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            O::InvalidOrder { field, .. } | O::InvalidRange { field, .. } => {
                return ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e, field);
            }
            O::Name(_)
            | O::NoCardRange { .. }
            | O::NotOrderersProgramme { .. }
            | O::RangeExhausted { .. }
            | O::PinReorderRefused { .. }
            | O::Field { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e)
    }
}

/// The status of a card registry error met by a prepaid operation.
fn card_status(e: &crate::cards::CardError) -> StatusCode {
    use crate::cards::CardError as C;
    match e {
        C::UnknownCard { .. } => StatusCode::NOT_FOUND,
        C::CardExists { .. } => StatusCode::CONFLICT,
        C::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        C::UnknownInstitution { .. } | C::UnknownProfile { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<crate::prepaid::load_file::LoadFileError> for ApiError {
    fn from(e: crate::prepaid::load_file::LoadFileError) -> ApiError {
        use crate::prepaid::load_file::LoadFileError as L;
        match e {
            L::Refused { problems, more } => ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                Body::Rejected(Rejected {
                    error: "load file rejected; nothing booked".into(),
                    code: "LOAD_FILE_REJECTED",
                    problems: problems.into_iter().map(LineErrorOut::from).collect(),
                    more,
                }),
            ),
            L::Cards(ref c) => ApiError::new(card_status(c), e),
            L::Store(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }
}
