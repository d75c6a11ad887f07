//! Builds the command-api: configuration, connections, routes and middleware. Tests call
//! `build_with_pool` to run the real app on port 0 against their own database.

use std::{sync::Arc, time::Duration};

use actix_web::web;
use anyhow::bail;
use shared::{
    config::{DatabaseArgs, connect_postgres, migrate},
    event_store::ensure_positions_move_forward,
    http::ApiServer,
    telemetry::LogArgs,
};
use sqlx::PgPool;
use utoipa::OpenApi;

use crate::{auth::CommandToken, openapi::ApiDoc, routes};

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
    /// The bearer token every command must carry.
    #[arg(long, env = "COMMAND_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept commands without a token. For local experiments only.
    #[arg(long = "insecure-no-auth", env = "COMMAND_API_INSECURE", value_parser = clap::builder::FalseyValueParser::new())]
    pub insecure_no_auth: bool,
    /// Snapshot an aggregate every N events (0 disables snapshots).
    #[arg(long, env = "SNAPSHOT_EVERY", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..))]
    pub snapshot_every: i64,
    /// How long an Idempotency-Key's first response is kept (then the key is new again).
    #[arg(long, env = "IDEMPOTENCY_KEY_TTL_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_key_ttl_hours: u64,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub snapshot_every: i64,
    pub idempotency_retention: Duration,
}

/// How long Idempotency-Key records are kept unless configured otherwise.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);

pub async fn build(settings: Settings) -> anyhow::Result<ApiServer> {
    let token = command_token(&settings)?;
    let pool = connect_postgres(settings.database.require()?, 16).await?;
    migrate(&pool).await?;
    ensure_positions_move_forward(&pool).await?;
    let retention = Duration::from_secs(settings.idempotency_key_ttl_hours * 3600);
    tokio::spawn(purge_idempotency_keys_periodically(pool.clone(), retention));
    build_with(
        pool,
        &settings.addr,
        token,
        settings.snapshot_every,
        retention,
    )
}

/// The app with the default Idempotency-Key retention (tests use this).
pub fn build_with_pool(
    pool: PgPool,
    addr: &str,
    token: Option<String>,
    snapshot_every: i64,
) -> anyhow::Result<ApiServer> {
    build_with(
        pool,
        addr,
        token,
        snapshot_every,
        DEFAULT_IDEMPOTENCY_RETENTION,
    )
}

fn build_with(
    pool: PgPool,
    addr: &str,
    token: Option<String>,
    snapshot_every: i64,
    idempotency_retention: Duration,
) -> anyhow::Result<ApiServer> {
    let state = web::Data::new(AppState {
        pool,
        snapshot_every,
        idempotency_retention,
    });
    let token = web::Data::new(CommandToken(token.map(Arc::from)));
    ApiServer::start(addr, "COMMAND_API_ADDR", ApiDoc::openapi(), move |cfg| {
        cfg.app_data(state.clone())
            .app_data(token.clone())
            .configure(routes::health::configure)
            .configure(routes::customers::configure)
            .configure(routes::products::configure)
            .configure(routes::orders::configure);
    })
}

/// Deletes expired Idempotency-Key records every ten minutes (lookups already ignore them).
async fn purge_idempotency_keys_periodically(pool: PgPool, retention: Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match shared::event_store::purge_idempotency_keys(&pool, retention).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired Idempotency-Key records deleted"),
            Err(error) => tracing::warn!(%error, "cannot delete expired Idempotency-Key records"),
        }
    }
}

fn command_token(settings: &Settings) -> anyhow::Result<Option<String>> {
    match settings.token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => Ok(Some(token.to_owned())),
        _ if settings.insecure_no_auth => {
            tracing::warn!(
                "INSECURE: command-api accepts commands WITHOUT authentication (--insecure-no-auth / \
                 COMMAND_API_INSECURE); anyone who can reach it can change data"
            );
            Ok(None)
        }
        _ => bail!(
            "COMMAND_API_TOKEN is not set: export a secret token (./scripts/run makes one), or pass \
             --insecure-no-auth for a local experiment"
        ),
    }
}
