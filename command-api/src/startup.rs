//! Builds the command-api from its settings: connections, migrations, background tasks, routes.
//! `main` and the tests both go through `Application::build`, so a test runs what production
//! runs; tests override only the address, the database and the token.

use std::{net::SocketAddr, time::Duration};

use actix_web::web;
use anyhow::bail;
use database::DatabaseArgs;
use http_kit::{ApiServer, HttpArgs, ServerConfig, bearer::Secret, telemetry::LogArgs};
use sqlx::PgPool;
use utoipa::OpenApi;

use crate::{AppState, admission::Admission, auth::CommandTokens, openapi::ApiDoc, routes};

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "command-api",
    version,
    about = "The write side: commands in, events out"
)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long, env = "COMMAND_API_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// The bearer token every command must carry; several, comma-separated, are each accepted
    /// (to rotate a token without downtime).
    #[arg(long, env = "COMMAND_API_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Accept commands without a token. For local experiments only.
    #[arg(long = "insecure-no-auth", env = "COMMAND_API_INSECURE", value_parser = clap::builder::FalseyValueParser::new())]
    pub insecure_no_auth: bool,
    /// Snapshot an aggregate every N events (0 disables snapshots).
    #[arg(long, env = "SNAPSHOT_EVERY", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..))]
    pub snapshot_every: i64,
    /// How long an Idempotency-Key's first response is kept (then the key is new again).
    #[arg(long, env = "IDEMPOTENCY_KEY_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_key_ttl_hours: u64,
    /// Refuse new orders (503 with Retry-After) while the saga has more than this many events
    /// left to handle, so that the wait for a decision stays bounded; unset, every order is
    /// accepted however far behind the saga is.
    #[arg(long, env = "MAX_SAGA_LAG_EVENTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_saga_lag_events: Option<u64>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The running command-api: its HTTP server, the background task that purges expired
/// Idempotency-Key records and, with `MAX_SAGA_LAG_EVENTS`, the one that watches the saga.
pub struct Application {
    server: ApiServer,
    pool: PgPool,
    purge: tokio::task::JoinHandle<()>,
    /// Keeps the saga's backlog up to date for admission (with `MAX_SAGA_LAG_EVENTS`).
    watching: Option<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let tokens = command_tokens(&settings)?;
        let pool = database::connect(
            settings.database.require()?,
            settings.database.database_pool_size,
        )
        .await?;
        database::migrate(&pool).await?;
        event_store::ensure_positions_move_forward(&pool).await?;
        let retention = Duration::from_secs(settings.idempotency_key_ttl_hours * 3600);
        let purge = tokio::spawn(purge_idempotency_keys_periodically(pool.clone(), retention));
        let (admission, watching) = match settings.max_saga_lag_events {
            Some(bound) => {
                tracing::info!(
                    max_saga_lag_events = bound,
                    "new orders are refused while the saga lags more than this"
                );
                let (admission, watching) = Admission::bounded(pool.clone(), bound);
                (admission, Some(watching))
            }
            None => (Admission::open(), None),
        };
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            catalog: Default::default(),
            admission,
            announcer: event_store::Announcer::spawn(pool.clone()),
            snapshot_every: settings.snapshot_every,
            idempotency_retention: retention,
        });
        let tokens = web::Data::new(tokens);
        let sampled = pool.clone();
        let config = ServerConfig::new(settings.addr, "COMMAND_API_ADDR")
            .openapi(ApiDoc::openapi())
            .cors(settings.http.cors_allowed_origins)
            .sample_before_scrape(move || database::record_pool_use(&sampled, "command-api"));
        let server = ApiServer::start(config, move |cfg| {
            cfg.app_data(state.clone())
                .app_data(tokens.clone())
                .configure(routes::health::router)
                .configure(routes::customers::router)
                .configure(routes::products::router)
                .configure(routes::orders::router);
        })?;
        crate::metrics::describe(); // the server installed the recorder
        Ok(Self {
            server,
            pool,
            purge,
            watching,
        })
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
        self.purge.abort();
        if let Some(watching) = &self.watching {
            watching.abort();
        }
        self.pool.close().await;
        served
    }
}

/// Deletes expired Idempotency-Key records every ten minutes (lookups already ignore them).
async fn purge_idempotency_keys_periodically(pool: PgPool, retention: Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match event_store::purge_idempotency_keys(&pool, retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired Idempotency-Key records deleted"),
            Err(error) => tracing::warn!(%error, "cannot delete expired Idempotency-Key records"),
        }
    }
}

fn command_tokens(settings: &Settings) -> anyhow::Result<CommandTokens> {
    match settings.token.as_ref().and_then(CommandTokens::parse) {
        Some(tokens) => Ok(tokens),
        None if settings.insecure_no_auth => {
            tracing::warn!(
                "INSECURE: command-api accepts commands WITHOUT authentication (--insecure-no-auth / \
                 COMMAND_API_INSECURE); anyone who can reach it can change data"
            );
            Ok(CommandTokens(None))
        }
        None => bail!(
            "COMMAND_API_TOKEN is not set: export a secret token (./scripts/run makes one), or pass \
             --insecure-no-auth for a local experiment"
        ),
    }
}
