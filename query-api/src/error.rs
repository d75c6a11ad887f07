//! The query-api's errors, and the one place they become problem+json responses. Every failure
//! of a dependency is a 503 with `Retry-After`; only a bug is a 500.

use actix_web::http::StatusCode;
use http_kit::Problem;

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
    /// As many requests as allowed are already waiting for their `min_position`.
    #[error("too many requests are waiting for their min_position; retry shortly")]
    TooManyWaits,
    /// Every live-feed connection allowed (`FEED_MAX_CONNECTIONS`) is open.
    #[error("too many live feeds are open; retry shortly")]
    TooManyFeeds,
    #[error("the Redis read models are being rebuilt; retry shortly")]
    Rebuilding,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored read model cannot be decoded: {0}")]
    Corrupt(#[from] serde_json::Error),
}

http_kit::answer_with_problem!(ApiError);

impl From<&ApiError> for Problem {
    fn from(error: &ApiError) -> Self {
        match error {
            ApiError::NotFound(detail) => Problem::new(StatusCode::NOT_FOUND, detail.clone()),
            ApiError::BadRequest(detail) => Problem::new(StatusCode::BAD_REQUEST, detail.clone()),
            ApiError::NotYetConsistent { .. } => {
                Problem::unavailable(error.to_string()).with_type("not-yet-consistent")
            }
            ApiError::TooManyWaits => {
                Problem::unavailable(error.to_string()).with_type("too-many-waits")
            }
            ApiError::TooManyFeeds => {
                Problem::unavailable(error.to_string()).with_type("too-many-feeds")
            }
            ApiError::Rebuilding => Problem::unavailable(error.to_string()),
            ApiError::Redis(cause) => {
                Problem::unavailable("Redis is unavailable; retry shortly").with_cause(cause)
            }
            ApiError::Database(cause) if database::is_transient(cause) => {
                Problem::unavailable("PostgreSQL is unavailable; retry shortly").with_cause(cause)
            }
            ApiError::Database(_) | ApiError::Corrupt(_) => Problem::internal(error),
        }
    }
}
