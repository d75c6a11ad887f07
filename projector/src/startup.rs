//! Builds the projector from its settings: connections, migrations, its HTTP server
//! (`/healthz`, `/readyz`, `/metrics`, through the same `ApiServer` as the APIs, so metrics are
//! recorded from the start) and the subscriptions. `main` and the tests both go through
//! `Application::build`; tests override only the address, the database and the Redis prefix.

use std::{net::SocketAddr, time::Duration};

use actix_web::dev::ServerHandle;
use database::DatabaseArgs;
use http_kit::{ApiServer, ServerConfig, telemetry::LogArgs};
use read_models::{RedisArgs, RedisKeys};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::{
    rebuild::Rebuilder,
    relay::{NatsRelay, RelayArgs},
    routes,
    runner::Runner,
    saga::SagaMode,
};

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[arg(long, env = "PROJECTOR_ADDR", default_value = "127.0.0.1:8082")]
    pub addr: String,
    /// Snapshot aggregates every N events when the saga writes (0 disables snapshots).
    #[arg(long, env = "SNAPSHOT_EVERY", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..))]
    pub snapshot_every: i64,
    /// How the order saga runs: one coordinator, or handlers reacting to each other's events.
    #[arg(long, env = "SAGA_MODE", value_enum, default_value = "orchestration")]
    pub saga_mode: SagaMode,
    /// Events read (and, for read models, applied) per transaction.
    #[arg(long, env = "PROJECTOR_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,
    /// How often an idle subscription looks for work without a wake-up (and checks Redis).
    #[arg(long, env = "PROJECTOR_POLL_INTERVAL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_interval_ms: u64,
    /// Partitions per subscription (the saga and the PostgreSQL read models; lookups always run
    /// as one). Default: half the CPUs of this machine, at least one; with several projector
    /// processes, at least as many as there are processes. Changing it is safe at any time.
    #[arg(long, env = "PROJECTOR_PARTITIONS", value_parser = clap::value_parser!(i32).range(1..=256))]
    pub partitions: Option<i32>,
    /// The bearer token of the operator endpoints (`POST /dead-letters/retry`, which the
    /// dashboard's retry button calls); without one they answer 403.
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<http_kit::bearer::Secret>,
    /// Browser origins allowed to call the operator endpoints (the dashboard's), comma-separated;
    /// default: the query-api's address (QUERY_API_ADDR) as http://127.0.0.1:<port> and
    /// http://localhost:<port>.
    #[arg(long, env = "DASHBOARD_ORIGINS", value_delimiter = ',')]
    pub dashboard_origins: Vec<String>,
    /// Where the query-api listens; gives the default dashboard origin.
    #[arg(long, env = "QUERY_API_ADDR", default_value = "127.0.0.1:8081")]
    pub query_api_addr: String,
    /// The relay of integration events to NATS JetStream (off unless NATS_URL is set).
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Settings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn partitions(&self) -> i32 {
        self.partitions.unwrap_or_else(|| {
            // Each partition is one more reader and one more transaction per batch, and the saga's
            // partitions queue on the same hot products: on a 2-core machine one partition
            // decided orders fastest and soonest (docs/performance.md, "Partitions").
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            i32::try_from(cpus / 2).unwrap_or(1).clamp(1, 256)
        })
    }

    /// The origins the dashboard is served from, as browsers name them.
    pub fn dashboard_origins(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .dashboard_origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        if !configured.is_empty() {
            return configured;
        }
        let (host, port) = self
            .query_api_addr
            .rsplit_once(':')
            .unwrap_or((self.query_api_addr.as_str(), "8081"));
        match host {
            "127.0.0.1" | "localhost" | "0.0.0.0" | "" | "[::]" | "[::1]" => vec![
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
            ],
            host => vec![format!("http://{host}:{port}")],
        }
    }
}

/// The connections every projector command works with.
#[derive(Clone)]
pub struct Projector {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: RedisKeys,
}

impl Projector {
    /// Connects to PostgreSQL and Redis and brings the schema up to date.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let pool = database::connect(
            settings.database.require()?,
            settings.database.database_pool_size,
        )
        .await?;
        database::migrate(&pool).await?;
        event_store::ensure_positions_move_forward(&pool).await?;
        let redis = read_models::connect(&settings.redis.redis_url).await?;
        let keys = RedisKeys::new(settings.redis.redis_key_prefix.clone());
        Ok(Self { pool, redis, keys })
    }

    pub fn rebuilder(&self) -> Rebuilder {
        Rebuilder {
            pool: self.pool.clone(),
            redis: self.redis.clone(),
            keys: self.keys.clone(),
        }
    }
}

/// The running projector: its subscriptions and its operations endpoints.
pub struct Application {
    server: ApiServer,
    runner: Runner,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let projector = Projector::connect(&settings).await?;
        let sampled = projector.pool.clone();
        let config = ServerConfig::new(settings.addr.clone(), "PROJECTOR_ADDR")
            .workers(1)
            .without_signal_handling() // `run_until_stopped` owns shutdown
            .sample_before_scrape(move || database::record_pool_use(&sampled, "projector"));
        let dependencies = actix_web::web::Data::new(projector.clone());
        let operator = actix_web::web::Data::new(routes::Operator::new(&settings));
        let server = ApiServer::start(config, move |cfg| {
            cfg.app_data(dependencies.clone());
            routes::router(cfg, operator.clone());
        })?;
        let relay = NatsRelay::connect(&settings.relay, projector.pool.clone()).await?;
        crate::metrics::describe(); // the server installed the recorder
        let runner = Runner::new(projector, &settings, relay);
        Ok(Self { server, runner })
    }

    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// Stops the HTTP server from outside (tests that kill the projector mid-flight).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Runs every subscription until SIGTERM or SIGINT; each finishes its current batch.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (shutdown, signals) = http_kit::shutdown::on_signal("finishing the batches in flight");
        self.run_until(shutdown).await;
        signals.abort();
        Ok(())
    }

    /// Runs every subscription until `shutdown` becomes true.
    pub async fn run_until(self, shutdown: watch::Receiver<bool>) {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server.run_until_stopped());
        self.runner.run(shutdown).await;
        handle.stop(true).await;
        let _ = server.await;
    }
}
