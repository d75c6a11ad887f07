//! The one place the command-api's errors become problem+json responses.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use shared::{
    domain::{DomainError, FieldError},
    event_store::{CommandError, StoreError, is_transient_database_error},
    http::Problem,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A header or body that cannot be understood at all.
    #[error("{0}")]
    BadRequest(String),
    #[error("send the body as Content-Type: application/json")]
    UnsupportedMediaType,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        Self::Command(CommandError::Rejected(error))
    }
}

impl ApiError {
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        DomainError::Invalid(errors).into()
    }

    fn problem(&self) -> Problem {
        match self {
            Self::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, detail.clone()),
            Self::UnsupportedMediaType => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, self.to_string())
            }
            Self::Command(CommandError::Rejected(DomainError::Invalid(errors))) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the request is invalid; see `errors`",
            )
            .with_type("validation-failed")
            .with_errors(errors.clone()),
            Self::Command(CommandError::Rejected(DomainError::RuleViolated(rule))) => {
                Problem::new(StatusCode::CONFLICT, rule.clone()).with_type("rule-violated")
            }
            Self::Command(CommandError::Rejected(DomainError::NotFound(kind))) => {
                Problem::new(StatusCode::NOT_FOUND, format!("no {kind} has this id"))
            }
            Self::Command(error @ CommandError::VersionMismatch { .. }) => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                format!("{error}; reload it and retry with its version"),
            )
            .with_type("version-mismatch"),
            Self::Command(CommandError::Conflict(detail)) => {
                Problem::new(StatusCode::CONFLICT, detail.clone()).with_type("conflict")
            }
            Self::Command(error @ CommandError::OutcomeUnknown) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{error}: retry with an Idempotency-Key to apply it exactly once"),
            )
            .with_type("outcome-unknown")
            .with_retry_after(1),
            Self::Command(error @ CommandError::IdempotencyKeyReused) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
                    .with_type("idempotency-key-reused")
            }
            Self::Command(CommandError::Store(error)) | Self::Store(error) => store_problem(error),
        }
    }
}

fn store_problem(error: &StoreError) -> Problem {
    match error {
        StoreError::Database(db) if is_transient_database_error(db) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable; retry shortly",
        )
        .with_retry_after(1),
        StoreError::VersionConflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "a concurrent write won; retry")
                .with_type("conflict")
        }
        _ => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; it has been logged",
        ),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(error = %self, "command failed");
        }
        problem.error_response()
    }
}
