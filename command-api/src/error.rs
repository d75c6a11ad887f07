//! The command-api's errors, and the one place they become problem+json responses.

use actix_web::http::StatusCode;
use domain::{DomainError, FieldError};
use event_store::{CommandError, StoreError};
use http_kit::{Problem, ProblemField};

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
    /// `MAX_SAGA_LAG_EVENTS`: the saga has more events left to handle than the bound.
    #[error(
        "the shop is deciding orders more slowly than they arrive: {backlog} events wait for the saga, \
         more than the {bound} this service admits orders at; retry shortly"
    )]
    Overloaded { backlog: u64, bound: u64 },
}

http_kit::answer_with_problem!(ApiError);

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        Self::Command(CommandError::Rejected(error))
    }
}

impl ApiError {
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        DomainError::Invalid(errors).into()
    }
}

impl From<&ApiError> for Problem {
    fn from(error: &ApiError) -> Self {
        match error {
            ApiError::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, detail.clone()),
            ApiError::UnsupportedMediaType => {
                Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
            }
            ApiError::Command(error) => command_problem(error),
            ApiError::Store(error) => store_problem(error),
            ApiError::Overloaded { .. } => Problem::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                error.to_string(),
            )
            .with_type("overloaded")
            .with_retry_after(2),
        }
    }
}

fn command_problem(error: &CommandError) -> Problem {
    match error {
        CommandError::Rejected(DomainError::Invalid(errors)) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the request is invalid; see `errors`",
        )
        .with_type("validation-failed")
        .with_errors(
            errors
                .iter()
                .map(|error| ProblemField {
                    field: error.field.clone(),
                    message: error.message.clone(),
                })
                .collect(),
        ),
        CommandError::Rejected(DomainError::RuleViolated(rule)) => {
            Problem::new(StatusCode::CONFLICT, rule.clone()).with_type("rule-violated")
        }
        CommandError::Rejected(DomainError::NotFound(kind)) => {
            Problem::new(StatusCode::NOT_FOUND, format!("no {kind} has this id"))
        }
        CommandError::VersionMismatch { .. } => Problem::new(
            StatusCode::PRECONDITION_FAILED,
            format!("{error}; reload it and retry with its version"),
        )
        .with_type("version-mismatch"),
        CommandError::Conflict(detail) => {
            Problem::new(StatusCode::CONFLICT, detail.clone()).with_type("conflict")
        }
        CommandError::OutcomeUnknown => Problem::unavailable(format!(
            "{error}: retry with an Idempotency-Key to apply it exactly once"
        ))
        .with_type("outcome-unknown"),
        CommandError::IdempotencyKeyReused => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string())
                .with_type("idempotency-key-reused")
        }
        CommandError::Store(error) => store_problem(error),
    }
}

fn store_problem(error: &StoreError) -> Problem {
    match error {
        StoreError::Database(db) if database::is_transient(db) => {
            Problem::unavailable("the database is unavailable; retry shortly").with_cause(db)
        }
        StoreError::VersionConflict { .. } | StoreError::IdempotencyKeyTaken => {
            Problem::new(StatusCode::CONFLICT, "a concurrent write won; retry")
                .with_type("conflict")
        }
        // Loading as the wrong kind is turned into "not found" where a command loads; reaching
        // here, like corrupt data or a failing query, is a bug.
        StoreError::OtherStreamType { .. } | StoreError::Corrupt(_) | StoreError::Database(_) => {
            Problem::internal(error)
        }
    }
}
