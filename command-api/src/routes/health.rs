//! `/healthz` (the process is up), `/readyz` (PostgreSQL answers), `/metrics` (Prometheus).

use actix_web::{HttpResponse, web};
use shared::http::Problem;

use crate::startup::AppState;

/// The process is up
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Dependencies are reachable
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "PostgreSQL answers", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "PostgreSQL does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    sqlx::query("SELECT 1").execute(&state.pool).await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        Problem::new(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "PostgreSQL does not answer").with_retry_after(1)
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(shared::telemetry::metrics_handle().render())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}
