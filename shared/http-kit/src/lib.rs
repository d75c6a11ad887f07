//! What every service process shares: the HTTP server with its conventions (problem+json for
//! every error, request ids, request metrics, body and parameter limits, API docs, health and
//! metrics endpoints), telemetry (logs and the Prometheus recorder), and the reconnecting
//! listener that turns a notification stream into a wake-up signal. Nothing here knows the
//! domain, PostgreSQL or Redis.

pub mod bearer;
pub mod deadlines;
mod docs;
pub mod json_integer;
mod middleware;
pub mod operations;
mod problem;
pub mod security;
mod server;
pub mod shutdown;
pub mod telemetry;
pub mod wakeup;

pub use docs::configure_api_docs;
pub use middleware::{REQUEST_ID_HEADER, RequestId, observe_requests};
pub use problem::{
    PROBLEM_CONTENT_TYPE, Problem, ProblemField, json_config, path_config, payload_config,
    query_config, resource_for, route_not_found,
};
pub use security::HttpArgs;
pub use server::{ApiServer, Sampler, ServerConfig};

/// Re-exported for `answer_with_problem!`.
#[doc(hidden)]
pub use actix_web as __actix_web;

/// Makes an error type answer HTTP requests as the `Problem` that `From<&E> for Problem` maps
/// it to: each API's error type keeps its mapping in one `From` impl, and this is the one
/// `ResponseError` implementation they all share. The problem keeps the error's own message as
/// its `cause`, so a server error is logged with what really went wrong.
#[macro_export]
macro_rules! answer_with_problem {
    ($error:ty) => {
        impl $crate::__actix_web::ResponseError for $error {
            fn status_code(&self) -> $crate::__actix_web::http::StatusCode {
                $crate::Problem::from(self).status_code()
            }
            fn error_response(&self) -> $crate::__actix_web::HttpResponse {
                let problem = $crate::Problem::from(self);
                let problem = if problem.status >= 500 && problem.cause.is_none() {
                    problem.with_cause(self)
                } else {
                    problem
                };
                $crate::__actix_web::ResponseError::error_response(&problem)
            }
        }
    };
}

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
