//! `TestSystem`: command-api, projector and query-api running in the test's process against the
//! test's own database (from `#[sqlx::test]`) and its own Redis key prefix, with methods that
//! let tests read as stories. Dropping it deletes the prefix's Redis keys.

mod snapshot;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use shared::read_model::RedisKeys;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

pub use projector::saga::SagaMode;
pub use snapshot::ReadModelSnapshot;

pub const TOKEN: &str = "test-token";

/// A pool on the test's database with the schema applied (for tests that need no services).
pub async fn migrated_pool(
    pool_options: PgPoolOptions,
    connect_options: &PgConnectOptions,
) -> PgPool {
    let pool = pool_options
        .connect_with(connect_options.clone())
        .await
        .expect("test pool");
    shared::config::migrate(&pool).await.expect("migrations");
    pool
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| shared::config::DEFAULT_REDIS_URL.to_owned())
}

/// Waits for `condition` to hold, checking every 20 ms, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct TestSystem {
    connect_options: PgConnectOptions,
    pub saga_mode: SagaMode,
    pub pool: PgPool,
    reader_pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: RedisKeys,
    pub command_base: String,
    pub query_base: String,
    pub client: reqwest::Client,
    projector: std::sync::Mutex<Option<RunningProjector>>,
}

struct RunningProjector {
    task: JoinHandle<()>,
    _stop: watch::Sender<bool>,
    /// The `application_name` of its database sessions.
    application_name: String,
}

impl TestSystem {
    /// Starts all three services; the projector runs with small batches so that tests see
    /// several of them.
    pub async fn start(pool_options: PgPoolOptions, connect_options: PgConnectOptions) -> Self {
        Self::start_in(SagaMode::Orchestration, pool_options, connect_options).await
    }

    /// Starts the system with the order saga in `saga_mode`.
    pub async fn start_in(
        saga_mode: SagaMode,
        pool_options: PgPoolOptions,
        connect_options: PgConnectOptions,
    ) -> Self {
        // A pool of its own rather than one borrowing from sqlx's shared test pool: the system
        // holds its connections for the whole test, and `stop` closes them.
        drop(pool_options);
        let pool = migrated_pool(PgPoolOptions::new().max_connections(12), &connect_options).await;
        let reader = query_api::startup::connect_reader_with(connect_options.clone(), 4)
            .await
            .expect("reader pool");
        let redis = shared::config::connect_redis(&redis_url())
            .await
            .expect("Redis for tests");
        let keys = RedisKeys::new(format!("test:{}:", Uuid::new_v4().simple()));

        let command = command_api::startup::build_with_pool(
            pool.clone(),
            "127.0.0.1:0",
            Some(TOKEN.into()),
            100,
        )
        .expect("command-api");
        let command_base = format!("http://{}", command.address());
        tokio::spawn(command.run_until_stopped());

        let progress = query_api::consistency::listen_for_progress(redis_url(), keys.clone());
        let reader_pool = reader.clone();
        let query = query_api::startup::build_with(
            reader,
            redis.clone(),
            keys.clone(),
            progress,
            Duration::from_secs(5),
            "127.0.0.1:0",
        )
        .expect("query-api");
        let query_base = format!("http://{}", query.address());
        tokio::spawn(query.run_until_stopped());

        let system = Self {
            connect_options: connect_options.clone(),
            saga_mode,
            pool,
            reader_pool,
            redis,
            keys,
            command_base,
            query_base,
            client: reqwest::Client::new(),
            projector: std::sync::Mutex::new(None),
        };
        system.start_projector();
        system
    }

    /// A projector with a pool of its own, whose sessions carry `application_name` so that
    /// `kill_projector` can end them the way a dying process would.
    pub fn projector(&self, saga_mode: SagaMode, application_name: &str) -> projector::Projector {
        let pool = PgPoolOptions::new().max_connections(10).connect_lazy_with(
            self.connect_options
                .clone()
                .application_name(application_name),
        );
        projector::Projector {
            pool,
            redis: self.redis.clone(),
            keys: self.keys.clone(),
            settings: projector::ProjectorSettings {
                batch_size: 50,
                poll_interval: Duration::from_millis(100),
                saga_mode,
                snapshot_every: 100,
            },
        }
    }

    pub fn start_projector(&self) {
        self.start_projector_in(self.saga_mode);
    }

    /// Starts the projector with the saga in `saga_mode` (a mode switch, if it differs).
    pub fn start_projector_in(&self, saga_mode: SagaMode) {
        let mut running = self
            .projector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(running.is_none(), "the projector is already running");
        let (stop, shutdown) = watch::channel(false);
        let name = format!("test-projector-{}", Uuid::new_v4().simple());
        let task = tokio::spawn(self.projector(saga_mode, &name).run(shutdown));
        *running = Some(RunningProjector {
            task,
            _stop: stop,
            application_name: name,
        });
    }

    /// Stops the projector abruptly, wherever it is, as `kill -9` would: its tasks stop and its
    /// database sessions are ended, so its open transactions roll back. (Aborting the tasks
    /// alone could leave a session idle in a transaction, which holds back every reader's safe
    /// horizon until it is noticed.)
    pub async fn kill_projector(&self) {
        let running = self
            .projector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(RunningProjector {
            task,
            application_name,
            ..
        }) = running
        {
            task.abort();
            let _ = task.await;
            let ended = sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(&application_name)
            .execute(&self.pool)
            .await;
            if let Err(error) = ended {
                eprintln!("cannot end the killed projector's sessions: {error}");
            }
        }
    }

    pub fn rebuilder(&self) -> projector::rebuild::Rebuilder {
        projector::rebuild::Rebuilder {
            pool: self.pool.clone(),
            redis: self.redis.clone(),
            keys: self.keys.clone(),
        }
    }

    /// A command, with the bearer token.
    pub fn command(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.command_base))
            .bearer_auth(TOKEN)
    }

    pub fn query(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.query_base))
    }

    /// Sends a command and returns (id, position); panics unless it succeeded.
    pub async fn send(&self, path: &str, body: Value) -> (Uuid, i64) {
        let response = self
            .command(path)
            .json(&body)
            .send()
            .await
            .expect("command sent");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON answer");
        assert!(status.is_success(), "{path} answered {status}: {body}");
        let id = body["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("id");
        (id, body["position"].as_i64().expect("position"))
    }

    pub async fn register_customer(&self, credit_limit_cents: i64) -> (Uuid, i64) {
        self.send(
            "/customers",
            json!({ "name": "Ada", "credit_limit_cents": credit_limit_cents }),
        )
        .await
    }

    pub async fn add_product(
        &self,
        sku: &str,
        name: &str,
        price_cents: i64,
        stock: i64,
    ) -> (Uuid, i64) {
        self.send(
            "/products",
            json!({ "sku": sku, "name": name, "price_cents": price_cents, "stock": stock }),
        )
        .await
    }

    pub async fn place_order(&self, customer_id: Uuid, lines: &[(Uuid, i64)]) -> (Uuid, i64) {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(product_id, quantity)| json!({ "product_id": product_id, "quantity": quantity }))
            .collect();
        self.send(
            "/orders",
            json!({ "customer_id": customer_id, "lines": lines }),
        )
        .await
    }

    pub async fn cancel(&self, order_id: Uuid) -> reqwest::Response {
        self.command(&format!("/orders/{order_id}/cancel"))
            .send()
            .await
            .expect("cancel sent")
    }

    pub async fn ship(&self, order_id: Uuid) -> reqwest::Response {
        self.command(&format!("/orders/{order_id}/ship"))
            .send()
            .await
            .expect("ship sent")
    }

    /// The order once the saga has decided it (no longer pending), after everything is quiet.
    pub async fn settled_order(&self, order_id: Uuid) -> Value {
        self.wait_until_caught_up().await;
        let (status, order) = self.read(&format!("/orders/{order_id}")).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    /// GETs from the query-api; returns the status and the JSON body.
    pub async fn read(&self, path: &str) -> (StatusCode, Value) {
        let response = self.query(path).send().await.expect("query sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs from the query-api, reading its own write at `position`; panics unless 200.
    pub async fn read_at(&self, path: &str, position: i64) -> Value {
        let separator = if path.contains('?') { '&' } else { '?' };
        let (status, body) = self
            .read(&format!("{path}{separator}min_position={position}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Waits until every subscription has applied every event (and the Redis read models exist:
    /// on a fresh system the projector creates them as it starts).
    pub async fn wait_until_caught_up(&self) {
        let caught_up = eventually(Duration::from_secs(60), || async {
            let mut redis = self.redis.clone();
            let redis_ready: bool = redis::cmd("EXISTS")
                .arg(self.keys.live_generation())
                .query_async(&mut redis)
                .await
                .unwrap_or(false);
            let (status, body) = self.read("/projections").await;
            redis_ready
                && status == StatusCode::OK
                && body["items"].as_array().is_some_and(|items| {
                    !items.is_empty() && items.iter().all(|item| item["lag_events"] == 0)
                })
        })
        .await;
        assert!(
            caught_up,
            "the projector did not catch up: {}",
            self.read("/projections").await.1
        );
    }

    /// Stops the projector and closes every database session, so that `#[sqlx::test]` can drop
    /// the test database. Call it at the end of every test.
    pub async fn stop(self) {
        self.kill_projector().await;
        let closing = async {
            self.pool.close().await;
            self.reader_pool.close().await;
        };
        if tokio::time::timeout(Duration::from_secs(10), closing)
            .await
            .is_err()
        {
            eprintln!("the test system's database sessions did not close in time");
        }
        self.wait_for_sessions_to_end().await;
    }

    /// Closed sessions (some were opened on the HTTP servers' own worker runtimes) can take a
    /// moment to leave the server, and `DROP DATABASE` refuses while any remains.
    async fn wait_for_sessions_to_end(&self) {
        use sqlx::ConnectOptions;
        let database = self
            .connect_options
            .get_database()
            .unwrap_or_default()
            .to_owned();
        let Ok(mut admin) = self
            .connect_options
            .clone()
            .database("postgres")
            .connect()
            .await
        else {
            return;
        };
        let started = Instant::now();
        loop {
            let remaining: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&database)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap_or(0);
            if remaining == 0 || started.elapsed() > Duration::from_secs(10) {
                break;
            }
            if started.elapsed() > Duration::from_millis(500) {
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                )
                .bind(&database)
                .execute(&mut admin)
                .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = sqlx::Connection::close(admin).await;
    }

    pub async fn snapshot(&self) -> ReadModelSnapshot {
        ReadModelSnapshot::take(&self.pool, &self.redis, &self.keys).await
    }
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        if let Some(RunningProjector { task, .. }) = self
            .projector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        // Leave nothing behind in the shared Redis.
        if let Ok(client) = redis::Client::open(redis_url())
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.keys.prefix()))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}
