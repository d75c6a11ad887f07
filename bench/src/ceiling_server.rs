//! `bench ceiling-server`: the lookups' ceiling. The least an HTTP lookup from Redis can do on
//! this machine: actix-web with as many workers as the query-api, one multiplexed Redis
//! connection, and per request one `GET` of a stored document whose bytes go out as they are.
//! The suite stores a copy of each looked-up document under `{prefix}bench_ceiling:{id}`, so the
//! ceiling serves the same ids with documents of the same sizes.

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use redis::{AsyncCommands, aio::ConnectionManager};

#[derive(Debug, Clone, clap::Args)]
pub struct CeilingArgs {
    /// Where to listen (host:port).
    #[arg(long)]
    pub listen: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// The system's Redis key prefix; the copies live under `{prefix}bench_ceiling:`.
    #[arg(long, env = "REDIS_KEY_PREFIX")]
    pub prefix: String,
}

/// The key of the copy of document `id`.
pub fn copy_key(prefix: &str, id: &str) -> String {
    format!("{prefix}bench_ceiling:{id}")
}

struct State {
    redis: ConnectionManager,
    prefix: String,
}

async fn lookup(state: web::Data<State>, id: web::Path<String>) -> HttpResponse {
    let mut redis = state.redis.clone();
    let stored: redis::RedisResult<Option<Vec<u8>>> = redis.get(copy_key(&state.prefix, &id)).await;
    match stored {
        Ok(Some(bytes)) => HttpResponse::Ok()
            .content_type("application/json")
            .body(bytes),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

pub async fn run(args: CeilingArgs) -> anyhow::Result<()> {
    let client = redis::Client::open(args.redis_url.as_str()).context("REDIS_URL")?;
    let redis = ConnectionManager::new(client)
        .await
        .context("connecting to Redis")?;
    let state = web::Data::new(State {
        redis,
        prefix: args.prefix,
    });
    // As many workers as the query-api starts (http-kit: the available parallelism).
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/lookup/{id}", web::get().to(lookup))
    })
    .workers(workers)
    .bind(&args.listen)
    .with_context(|| format!("listening on {}", args.listen))?
    .run()
    .await?;
    Ok(())
}
