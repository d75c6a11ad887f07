//! `/readyz` (PostgreSQL answers), beside the shared `/healthz` and `/metrics`.

use actix_web::{HttpResponse, http::Method, web};
use http_kit::{Problem, operations, resource_for};

use crate::AppState;

/// Dependencies are reachable
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "PostgreSQL answers", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "PostgreSQL does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|error| Problem::unavailable("PostgreSQL does not answer").with_cause(error))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/healthz", Method::GET, operations::healthz))
        .service(resource_for("/readyz", Method::GET, readyz))
        .service(resource_for("/metrics", Method::GET, operations::metrics));
}
