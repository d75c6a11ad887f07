//! The operational endpoints every service has alike: liveness and Prometheus metrics.
//! (Readiness differs per service: each checks its own dependencies.)

use actix_web::{HttpRequest, HttpResponse, web};

use crate::server::ScrapeSamplers;

/// The process is up
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(req: HttpRequest) -> HttpResponse {
    if let Some(samplers) = req.app_data::<web::Data<ScrapeSamplers>>() {
        for sample in &samplers.0 {
            sample();
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::metrics_handle().render())
}
