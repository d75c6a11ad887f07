//! The projector's own small HTTP server: `/healthz`, `/readyz` (PostgreSQL and Redis answer)
//! and `/metrics`.

use actix_web::{
    App, HttpResponse, HttpServer, dev::Server, http::Method, middleware::from_fn, web,
};
use redis::aio::ConnectionManager;
use shared::http::{self, Problem};
use sqlx::PgPool;

struct Dependencies {
    pool: PgPool,
    redis: ConnectionManager,
}

pub fn serve(
    addr: &str,
    pool: PgPool,
    redis: ConnectionManager,
) -> anyhow::Result<(Server, std::net::SocketAddr)> {
    use anyhow::Context;
    let dependencies = web::Data::new(Dependencies { pool, redis });
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot listen on {addr}: is another process using it? (set PROJECTOR_ADDR)")
    })?;
    let address = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(http::observe_requests))
            .app_data(dependencies.clone())
            .service(http::resource_for(
                "/healthz",
                Method::GET,
                http::operations::healthz,
            ))
            .service(http::resource_for("/readyz", Method::GET, readyz))
            .service(http::resource_for(
                "/metrics",
                Method::GET,
                http::operations::metrics,
            ))
            .default_service(web::to(http::route_not_found))
    })
    .workers(1)
    .disable_signals() // the projector's main loop owns shutdown
    .listen(listener)?
    .run();
    Ok((server, address))
}

async fn readyz(dependencies: web::Data<Dependencies>) -> Result<HttpResponse, Problem> {
    let unavailable = |what: &str| {
        Problem::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} does not answer"),
        )
        .with_retry_after(1)
    };
    sqlx::query("SELECT 1")
        .execute(&dependencies.pool)
        .await
        .map_err(|_| unavailable("PostgreSQL"))?;
    let mut redis = dependencies.redis.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .map_err(|_| unavailable("Redis"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
