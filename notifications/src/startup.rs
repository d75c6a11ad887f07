//! Builds the service from its settings: its own database (schema `notifications`, migrated from
//! `notifications/migrations/`), the NATS connection, the HTTP server and the consumer. `main` and
//! the tests both go through `Application::build`.

use std::{net::SocketAddr, time::Duration};

use actix_web::{dev::ServerHandle, web};
use anyhow::{Context, bail};
use database::redact_url;
use http_kit::{ApiServer, ServerConfig, telemetry::LogArgs};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::sync::watch;
use utoipa::OpenApi;

use crate::{
    AppState,
    consumer::{self, Consumer, ConsumerArgs},
    openapi::ApiDoc,
    routes,
};

/// The PostgreSQL schema that holds everything of this service, its migrations table included.
pub const SCHEMA: &str = "notifications";

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "notifications",
    version,
    about = "Consumes the shop's integration events and records what customers are told about their orders"
)]
pub struct Settings {
    /// PostgreSQL URL of the service's own database, e.g.
    /// postgres://postgres@127.0.0.1:5432/shop_notifications (its tables live in the schema
    /// `notifications`; never point it at the shop's read models).
    #[arg(long, env = "NOTIFICATIONS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "NOTIFICATIONS_ADDR", default_value = "127.0.0.1:8083")]
    pub addr: String,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The running service: its HTTP server and its consumer.
pub struct Application {
    server: ApiServer,
    consumer: Consumer,
    pool: PgPool,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let url = match settings.database_url.as_deref() {
            Some(url) if !url.trim().is_empty() => url,
            _ => bail!(
                "NOTIFICATIONS_DATABASE_URL is not set: export the URL of the service's own database \
                 (e.g. postgres://postgres@127.0.0.1:5432/shop_notifications) or start everything with ./scripts/run"
            ),
        };
        let pool = connect(url).await?;
        migrate(&pool).await?;
        let nats = connect_nats(&settings.consumer.nats_url).await?;
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            nats: nats.clone(),
        });
        let config = ServerConfig::new(settings.addr, "NOTIFICATIONS_ADDR")
            .openapi(ApiDoc::openapi())
            .without_signal_handling(); // `run_until_stopped` owns shutdown
        let server = ApiServer::start(config, move |cfg| {
            cfg.app_data(state.clone()).configure(routes::router);
        })?;
        consumer::describe_metrics();
        let consumer = Consumer::new(pool.clone(), nats, settings.consumer);
        Ok(Self {
            server,
            consumer,
            pool,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// Stops the HTTP server from outside (tests that kill the service).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs until SIGTERM or SIGINT: the batch in hand is finished and acknowledged.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (shutdown, signals) = http_kit::shutdown::on_signal("finishing the batch in hand");
        self.run_until(shutdown).await;
        signals.abort();
        Ok(())
    }

    /// Runs until `shutdown` becomes true.
    pub async fn run_until(self, shutdown: watch::Receiver<bool>) {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server.run_until_stopped());
        self.consumer.run(shutdown).await;
        handle.stop(true).await;
        let _ = server.await;
        self.pool.close().await;
    }
}

/// A pool whose sessions see the service's schema first, so that its migrations table (and any
/// unqualified name) lives there, whichever database it is given.
async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let options =
        database::parse_url(url, "NOTIFICATIONS_DATABASE_URL")?.options([("search_path", SCHEMA)]);
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}: is it running and does the database exist? (./scripts/run starts one)",
                redact_url(url)
            )
        })
}

/// Creates the schema and applies `notifications/migrations/` (sqlx's advisory lock keeps
/// several instances from applying one twice).
async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        .execute(pool)
        .await;
    if let Err(error) = created {
        // Two instances starting at once may race to create it; the loser finds it there.
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)")
                .bind(SCHEMA)
                .fetch_one(pool)
                .await
                .unwrap_or(false);
        if !exists {
            return Err(error).context("cannot create the schema notifications");
        }
    }
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("cannot apply the notifications migrations")?;
    Ok(())
}

/// Connects to NATS in the background: the service starts (and serves what it has) whether the
/// broker is up or not; `/readyz` says which.
async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name("cqrs-shop notifications")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => {
                    tracing::warn!("lost the NATS connection; reconnecting")
                }
                other => tracing::debug!(event = %other, "NATS connection event"),
            }
        })
        .connect(url)
        .await
        .context("NATS_URL is not a usable NATS URL")
}
