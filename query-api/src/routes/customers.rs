//! `GET /customers/{id}` (Redis).

use actix_web::{HttpResponse, http::Method, web};
use domain::StreamType;
use http_kit::{Problem, resource_for};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PointInTime, lookup};
use crate::{AppState, error::ApiError};

/// A customer and their credit (the `lookups` document, answered as stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CustomerView)]
pub struct CustomerResponse {
    pub id: Uuid,
    pub name: String,
    pub credit_limit_cents: i64,
    /// Held by approved and shipped orders.
    pub credit_reserved_cents: i64,
    pub credit_available_cents: i64,
    pub version: i64,
}

/// A customer and their credit
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id"), PointInTime),
    responses(
        (status = 200, description = "The customer", body = CustomerResponse,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No customer has this id (yet: see min_position), or it did not exist yet at as_of", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn get_customer(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<PointInTime>,
) -> Result<HttpResponse, ApiError> {
    lookup(&state, StreamType::Customer, id.into_inner(), &query).await
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/customers/{id}", Method::GET, get_customer));
}
