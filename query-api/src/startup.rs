//! Builds the query-api from its settings. Its database sessions run as `cqrs_query_reader`, a
//! role with SELECT on the `read_model` schema and nothing else, whatever URL it is given.
//! `main` and the tests both go through `Application::build`; tests override only the
//! address, the database and the Redis prefix.

use std::{net::SocketAddr, time::Duration};

use actix_web::web;
use anyhow::Context;
use database::{DatabaseArgs, redact_url};
use http_kit::{ApiServer, HttpArgs, ServerConfig, telemetry::LogArgs};
use read_models::{RedisArgs, RedisKeys};
use sqlx::{
    Executor, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use utoipa::OpenApi;

use crate::{
    AppState,
    consistency::{Consistency, listen_for_progress},
    feed::Feeds,
    lookups::Lookups,
    openapi::ApiDoc,
    routes::{self, dashboard::DashboardPage},
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
    /// The projector's URL as the dashboard's browser reaches it (its retry button calls
    /// `POST <url>/dead-letters/retry`); default: http://<PROJECTOR_ADDR>.
    #[arg(long, env = "PROJECTOR_URL")]
    pub projector_url: Option<String>,
    /// Where the projector listens; gives the default PROJECTOR_URL.
    #[arg(long, env = "PROJECTOR_ADDR", default_value = "127.0.0.1:8082")]
    pub projector_addr: String,
    /// How many requests may wait for `min_position` at once; beyond that a request that would
    /// wait is answered 503 with Retry-After at once.
    #[arg(long, env = "MAX_CONSISTENCY_WAITS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..100_000))]
    pub max_consistency_waits: u64,
    /// How many live feeds (`/feed`, `/orders/{id}/feed`) may be open at once; beyond that a new
    /// one is answered 503 with Retry-After.
    #[arg(long, env = "FEED_MAX_CONNECTIONS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..100_000))]
    pub feed_max_connections: u64,
    /// How often an idle live feed sends a heartbeat comment.
    /// The command-api's admission bound (`MAX_SAGA_LAG_EVENTS`, the same variable): the
    /// query-api only reports it, so the dashboard can say when new orders are being refused.
    #[arg(long, env = "MAX_SAGA_LAG_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_saga_lag_events: Option<u64>,
    #[arg(long, env = "FEED_HEARTBEAT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(100..=300_000))]
    pub feed_heartbeat_ms: u64,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Settings {
    /// `PROJECTOR_URL`, or the URL of `PROJECTOR_ADDR` (a wildcard address is reached over
    /// loopback).
    pub fn projector_url(&self) -> String {
        if let Some(url) = self.projector_url.as_deref().map(str::trim)
            && !url.is_empty()
        {
            return url.trim_end_matches('/').to_owned();
        }
        let addr = self.projector_addr.trim();
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "8082"));
        let host = match host {
            "0.0.0.0" | "" => "127.0.0.1",
            "[::]" => "[::1]",
            host => host,
        };
        format!("http://{host}:{port}")
    }
}

/// The running query-api.
pub struct Application {
    server: ApiServer,
    pool: PgPool,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = match (
            &settings.query_database_url,
            &settings.database.database_url,
        ) {
            (Some(url), _) | (None, Some(url)) if !url.trim().is_empty() => url.clone(),
            _ => settings.database.require()?.to_owned(),
        };
        // Migrations need the login role's rights; queries then run as the reader role.
        let migrator =
            database::connect(settings.database.database_url.as_deref().unwrap_or(&url), 1).await?;
        database::migrate(&migrator).await?;
        migrator.close().await;
        let pool = connect_reader(&url, settings.database.database_pool_size).await?;
        let redis = read_models::connect(&settings.redis.redis_url).await?;
        let keys = RedisKeys::new(settings.redis.redis_key_prefix.clone());
        let progress = listen_for_progress(settings.redis.redis_url.clone(), &keys);
        let dashboard = web::Data::new(DashboardPage::new(&settings.projector_url())?);
        let timeout = Duration::from_millis(settings.consistency_timeout_ms);
        let consistency = Consistency::new(
            pool.clone(),
            redis.clone(),
            keys.clone(),
            progress,
            timeout,
            usize::try_from(settings.max_consistency_waits).unwrap_or(256),
        );
        let feeds = Feeds::new(
            pool.clone(),
            consistency.clone(),
            usize::try_from(settings.feed_max_connections).unwrap_or(100),
            Duration::from_millis(settings.feed_heartbeat_ms),
        );
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            lookups: Lookups::new(redis, keys),
            consistency,
            feeds,
            max_saga_lag_events: settings.max_saga_lag_events,
        });
        let sampled = pool.clone();
        let config = ServerConfig::new(settings.addr, "QUERY_API_ADDR")
            .openapi(ApiDoc::openapi())
            .cors(settings.http.cors_allowed_origins)
            .sample_before_scrape(move || database::record_pool_use(&sampled, "query-api"));
        let server = ApiServer::start(config, move |cfg| {
            cfg.app_data(state.clone())
                .configure(routes::health::router)
                .configure(routes::orders::router)
                .configure(routes::products::router)
                .configure(routes::customers::router)
                .configure(routes::feed::router)
                .configure(routes::projections::router);
            routes::dashboard::router(cfg, dashboard.clone());
        })?;
        crate::consistency::describe_metrics(); // the server installed the recorder
        Ok(Self { server, pool })
    }

    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// Stops the server from outside (tests ending a system).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight and closes its
    /// database sessions.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.run_until_stopped().await;
        self.pool.close().await;
        served
    }
}

/// A pool whose every session is read-only and runs as the reader role, so the query-api
/// cannot read the event table or write anything, even with a superuser URL.
pub async fn connect_reader(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = database::parse_url(url, "QUERY_DATABASE_URL")?;
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
