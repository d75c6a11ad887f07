//! The service's HTTP errors, and the one place they become problem+json responses.

use actix_web::http::StatusCode;
use http_kit::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("NATS is not connected")]
    BrokerDown,
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

http_kit::answer_with_problem!(ApiError);

impl From<&ApiError> for Problem {
    fn from(error: &ApiError) -> Self {
        match error {
            ApiError::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, detail.clone()),
            ApiError::BrokerDown => Problem::unavailable("NATS is not connected; retry shortly"),
            ApiError::Database(cause) if database::is_transient(cause) => {
                Problem::unavailable("PostgreSQL is unavailable; retry shortly").with_cause(cause)
            }
            ApiError::Database(_) => Problem::internal(error),
        }
    }
}
