//! The projector's operations endpoints: `/healthz`, `/readyz` (PostgreSQL and Redis answer)
//! and `/metrics`.

use actix_web::{HttpResponse, http::Method, web};
use http_kit::{Problem, operations, resource_for};

use crate::Projector;

async fn readyz(projector: web::Data<Projector>) -> Result<HttpResponse, Problem> {
    sqlx::query("SELECT 1")
        .execute(&projector.pool)
        .await
        .map_err(|error| Problem::unavailable("PostgreSQL does not answer").with_cause(error))?;
    let mut redis = projector.redis.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .map_err(|error| Problem::unavailable("Redis does not answer").with_cause(error))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/healthz", Method::GET, operations::healthz))
        .service(resource_for("/readyz", Method::GET, readyz))
        .service(resource_for("/metrics", Method::GET, operations::metrics));
}
