//! Builds the query-api. Its database sessions run as `cqrs_query_reader`, a role with SELECT
//! on the `read_model` schema and nothing else, whatever URL it is given; tests call
//! `build_with` to run the real app on port 0.

use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use redis::aio::ConnectionManager;
use shared::{
    config::{DatabaseArgs, RedisArgs, connect_postgres, connect_redis, migrate, redact_url},
    http::ApiServer,
    read_model::RedisKeys,
    telemetry::LogArgs,
};
use sqlx::{
    Executor, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use utoipa::OpenApi;

use crate::{
    consistency::{Consistency, listen_for_progress},
    lookups::Lookups,
    openapi::ApiDoc,
    routes,
};

pub const READER_ROLE: &str = "cqrs_query_reader";

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "query-api",
    version,
    about = "The read side: serves the read models only"
)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The database the query-api reads; falls back to DATABASE_URL.
    #[arg(long, env = "QUERY_DATABASE_URL", hide_env_values = true)]
    pub query_database_url: Option<String>,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[arg(long, env = "QUERY_API_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: String,
    /// How long a request waits for `min_position` before answering 503.
    #[arg(long, env = "CONSISTENCY_TIMEOUT_MS", default_value_t = 5_000)]
    pub consistency_timeout_ms: u64,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub lookups: Lookups,
    pub consistency: Consistency,
}

pub async fn build(settings: Settings) -> anyhow::Result<ApiServer> {
    let url = match (
        &settings.query_database_url,
        &settings.database.database_url,
    ) {
        (Some(url), _) | (None, Some(url)) if !url.trim().is_empty() => url.clone(),
        _ => settings.database.require()?.to_owned(),
    };
    // Migrations need the login role's rights; queries then run as the reader role.
    let migrator =
        connect_postgres(settings.database.database_url.as_deref().unwrap_or(&url), 1).await?;
    migrate(&migrator).await?;
    migrator.close().await;
    let pool = connect_reader(&url, 16).await?;
    let redis = connect_redis(&settings.redis.redis_url).await?;
    let keys = RedisKeys::new(settings.redis.redis_key_prefix.clone());
    let progress = listen_for_progress(settings.redis.redis_url.clone(), keys.clone());
    let timeout = Duration::from_millis(settings.consistency_timeout_ms);
    build_with(pool, redis, keys, progress, timeout, &settings.addr)
}

pub fn build_with(
    pool: PgPool,
    redis: ConnectionManager,
    keys: RedisKeys,
    progress: tokio::sync::watch::Receiver<u64>,
    consistency_timeout: Duration,
    addr: &str,
) -> anyhow::Result<ApiServer> {
    let state = web::Data::new(AppState {
        pool: pool.clone(),
        lookups: Lookups::new(redis.clone(), keys.clone()),
        consistency: Consistency::new(pool, redis, keys, progress, consistency_timeout),
    });
    ApiServer::start(addr, "QUERY_API_ADDR", ApiDoc::openapi(), move |cfg| {
        cfg.app_data(state.clone())
            .configure(routes::health::configure)
            .configure(routes::orders::configure)
            .configure(routes::products::configure)
            .configure(routes::customers::configure)
            .configure(routes::projections::configure);
    })
}

/// A pool whose every session is read-only and runs as the reader role, so the query-api
/// cannot read the event table or write anything, even with a superuser URL.
pub async fn connect_reader(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .context("QUERY_DATABASE_URL is not a valid URL")?;
    connect_reader_with(options, max_connections).await.with_context(|| {
        format!(
            "cannot open a {READER_ROLE} session on {}: is PostgreSQL running, and may this login SET ROLE \
             {READER_ROLE}? (GRANT {READER_ROLE} TO <login>)",
            redact_url(url)
        )
    })
}

pub async fn connect_reader_with(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "SET ROLE cqrs_query_reader; SET search_path = read_model; SET default_transaction_read_only = on",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await
}
