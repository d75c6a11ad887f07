//! The one place the query-api's errors become problem+json responses. Every failure of a
//! dependency is a 503 with `Retry-After`; only a bug is a 500.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use shared::{event_store::is_transient_database_error, http::Problem};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// `min_position` was not reached in time.
    #[error(
        "the {projection} read model has not reached position {wanted} yet (it is at {reached}); retry shortly"
    )]
    NotYetConsistent {
        projection: &'static str,
        wanted: i64,
        reached: i64,
    },
    #[error("the Redis read models are being rebuilt; retry shortly")]
    Rebuilding,
    #[error("Redis is unavailable")]
    Redis(#[from] redis::RedisError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored read model cannot be decoded: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl ApiError {
    fn problem(&self) -> Problem {
        let unavailable = |detail: &str| {
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail).with_retry_after(1)
        };
        match self {
            Self::NotFound(detail) => Problem::new(StatusCode::NOT_FOUND, detail.clone()),
            Self::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, detail.clone()),
            Self::NotYetConsistent { .. } => {
                unavailable(&self.to_string()).with_type("not-yet-consistent")
            }
            Self::Rebuilding => unavailable(&self.to_string()),
            Self::Redis(_) => unavailable("Redis is unavailable; retry shortly"),
            Self::Database(error) if is_transient_database_error(error) => {
                unavailable("PostgreSQL is unavailable; retry shortly")
            }
            Self::Database(_) | Self::Corrupt(_) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "an internal error occurred; it has been logged",
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.problem().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let problem = self.problem();
        match problem.status {
            500.. if problem.status != 503 => tracing::error!(error = %self, "query failed"),
            503 => tracing::warn!(error = %self, "dependency unavailable"),
            _ => {}
        }
        problem.error_response()
    }
}
