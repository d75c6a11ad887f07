//! `GET /customers/{id}` (Redis).

use actix_web::{HttpResponse, http::Method, web};
use shared::{
    http::{Problem, resource_for},
    read_model::CustomerView,
};
use uuid::Uuid;

use super::{Consistent, lookup};
use crate::{problem::ApiError, startup::AppState};

/// A customer and their credit
#[utoipa::path(get, path = "/customers/{id}", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id"), Consistent),
    responses(
        (status = 200, description = "The customer", body = CustomerView,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No customer has this id (yet: see min_position)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn get_customer(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<Consistent>,
) -> Result<HttpResponse, ApiError> {
    lookup::<CustomerView>(&state, "customer", id.into_inner(), &query).await
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/customers/{id}", Method::GET, get_customer));
}
