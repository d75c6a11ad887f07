//! What both HTTP services share: problem+json errors, request ids, request metrics, and the
//! health and metrics endpoints.

mod docs;
pub mod json_integer;
mod middleware;
pub mod operations;
mod problem;
mod server;

pub use docs::configure_api_docs;
pub use middleware::{REQUEST_ID_HEADER, RequestId, observe_requests};
pub use problem::{
    Problem, json_config, path_config, payload_config, query_config, resource_for, route_not_found,
};
pub use server::ApiServer;

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
