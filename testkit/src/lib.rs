//! `TestSystem`: command-api, projector and query-api running in the test's process against the
//! test's own database (from `#[sqlx::test]`) and its own Redis key prefix, with methods that
//! let tests read as stories. Dropping it deletes the prefix's Redis keys.

pub mod invariants;
pub mod nats;
mod snapshot;
mod workload;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use actix_web::dev::ServerHandle;
use clap::Parser;
use read_models::RedisKeys;
use redis::aio::ConnectionManager;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::{
    ConnectOptions, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

pub use invariants::{QuietState, SystemUnderTest};
pub use projector::{saga::SagaMode, subscription::Subscription};
pub use snapshot::ReadModelSnapshot;
pub use workload::Workload;

pub const TOKEN: &str = "test-token";
/// The projector's operator token (`OPERATOR_TOKEN`) in tests.
pub const OPERATOR_TOKEN: &str = "test-operator-token";
/// The origin the projector lets call its operator endpoints (`DASHBOARD_ORIGINS`) in tests.
pub const DASHBOARD_ORIGIN: &str = "http://dashboard.test";

/// PostgreSQL sessions each service of a test system may open: tests run two at a time on one
/// server, so each system stays well inside its connection limit.
const POOL_SIZE: &str = "8";

/// A pool on the test's database with the schema applied (for tests that need no services).
pub async fn migrated_pool(
    pool_options: PgPoolOptions,
    connect_options: &PgConnectOptions,
) -> PgPool {
    let pool = pool_options
        .connect_with(connect_options.clone())
        .await
        .expect("test pool");
    database::migrate(&pool).await.expect("migrations");
    pool
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| read_models::DEFAULT_REDIS_URL.to_owned())
}

/// The URL of the test's database: `DATABASE_URL` (the server `#[sqlx::test]` uses) with the
/// test database's name, and `application_name` when given.
pub fn database_url(connect_options: &PgConnectOptions, application_name: Option<&str>) -> String {
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL names the test server");
    let without_query = server.split('?').next().unwrap_or(&server);
    let base = without_query
        .rsplit_once('/')
        .filter(|(scheme_and_host, _)| {
            scheme_and_host.contains("//") && !scheme_and_host.ends_with('/')
        })
        .map_or(without_query, |(base, _)| base);
    let database = connect_options.get_database().unwrap_or("postgres");
    match application_name {
        Some(name) => format!("{base}/{database}?application_name={name}"),
        None => format!("{base}/{database}"),
    }
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

/// Which services a `TestSystem` runs, and how.
#[derive(Debug, Clone)]
pub struct TestSystemBuilder {
    saga_mode: SagaMode,
    read_side: bool,
    snapshot_every: i64,
    partitions: i32,
    projector_args: Vec<String>,
    command_api_token: String,
    api_args: Vec<String>,
    query_api_args: Vec<String>,
}

impl Default for TestSystemBuilder {
    fn default() -> Self {
        Self {
            saga_mode: SagaMode::Orchestration,
            read_side: true,
            snapshot_every: 100,
            // More than one, so that every test runs partitioned subscriptions.
            partitions: 3,
            projector_args: Vec::new(),
            command_api_token: TOKEN.to_owned(),
            api_args: Vec::new(),
            query_api_args: Vec::new(),
        }
    }
}

impl TestSystemBuilder {
    pub fn saga_mode(mut self, saga_mode: SagaMode) -> Self {
        self.saga_mode = saga_mode;
        self
    }
    /// Only the command-api: no projector, no query-api.
    pub fn command_side_only(mut self) -> Self {
        self.read_side = false;
        self
    }
    pub fn snapshot_every(mut self, snapshot_every: i64) -> Self {
        self.snapshot_every = snapshot_every;
        self
    }
    /// Partitions per subscription of the projectors it starts.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = partitions;
        self
    }
    /// More command-line settings for the projector (e.g. `nats::TestStream::projector_args`).
    pub fn projector_args(mut self, args: impl IntoIterator<Item = String>) -> Self {
        self.projector_args.extend(args);
        self
    }
    /// The command-api's COMMAND_API_TOKEN setting (`TOKEN` by default, which `command` sends).
    pub fn command_api_token(mut self, setting: &str) -> Self {
        self.command_api_token = setting.to_owned();
        self
    }
    /// More command-line settings for both APIs, e.g. `["--cors-allowed-origins", "..."]`.
    pub fn api_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.api_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// More command-line settings for the query-api alone, e.g. `["--feed-heartbeat-ms", "200"]`.
    pub fn query_api_args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.query_api_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the services on the test's database (from `#[sqlx::test]`), each through its own
    /// `Application::build`, listening on port 0.
    pub async fn start(self, connect_options: PgConnectOptions) -> TestSystem {
        // Pools of their own rather than sqlx's shared test pool: the system holds its
        // connections for the whole test, and `stop` closes them.
        let url = database_url(&connect_options, None);
        let command = command_api::Application::build(
            command_api::Settings::try_parse_from(
                [
                    "command-api",
                    "--database-url",
                    &url,
                    "--addr",
                    "127.0.0.1:0",
                    "--token",
                    &self.command_api_token,
                    "--snapshot-every",
                    &self.snapshot_every.to_string(),
                    "--database-pool-size",
                    POOL_SIZE,
                ]
                .into_iter()
                .chain(self.api_args.iter().map(String::as_str)),
            )
            .expect("command-api settings"),
        )
        .await
        .expect("command-api starts");
        let command_base = format!("http://{}", command.address());
        let mut servers = vec![command.server_handle()];
        tokio::spawn(command.run_until_stopped());
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(connect_options.clone())
            .await
            .expect("test pool");
        let redis = read_models::connect(&redis_url())
            .await
            .expect("Redis for tests");
        let keys = RedisKeys::new(format!("test:{}:", Uuid::new_v4().simple()));
        let mut query_base = String::new();
        if self.read_side {
            let query = query_api::Application::build(
                query_api::Settings::try_parse_from(
                    [
                        "query-api",
                        "--database-url",
                        &url,
                        "--redis-url",
                        &redis_url(),
                        "--redis-key-prefix",
                        keys.prefix(),
                        "--addr",
                        "127.0.0.1:0",
                        "--database-pool-size",
                        POOL_SIZE,
                    ]
                    .into_iter()
                    .chain(self.api_args.iter().map(String::as_str))
                    .chain(self.query_api_args.iter().map(String::as_str)),
                )
                .expect("query-api settings"),
            )
            .await
            .expect("query-api starts");
            query_base = format!("http://{}", query.address());
            servers.push(query.server_handle());
            tokio::spawn(query.run_until_stopped());
        }
        let system = TestSystem {
            connect_options,
            saga_mode: self.saga_mode,
            snapshot_every: self.snapshot_every,
            partitions: std::sync::atomic::AtomicI32::new(self.partitions),
            projector_args: self.projector_args,
            pool,
            redis,
            keys,
            command_base,
            query_base,
            client: reqwest::Client::new(),
            servers,
            projectors: tokio::sync::Mutex::new(Vec::new()),
        };
        if self.read_side {
            system.start_projector().await;
        }
        system
    }
}

pub struct TestSystem {
    connect_options: PgConnectOptions,
    pub saga_mode: SagaMode,
    snapshot_every: i64,
    /// Partitions per subscription of the projectors started from now on.
    partitions: std::sync::atomic::AtomicI32,
    projector_args: Vec<String>,
    /// A pool on the test's database, for tests that look into it.
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: RedisKeys,
    pub command_base: String,
    pub query_base: String,
    pub client: reqwest::Client,
    /// The command-api's and query-api's servers, stopped by `stop`.
    servers: Vec<ServerHandle>,
    /// The projector processes running, oldest first.
    projectors: tokio::sync::Mutex<Vec<RunningProjector>>,
}

struct RunningProjector {
    /// `http://<address>` of its operations endpoints.
    base: String,
    task: JoinHandle<()>,
    server: ServerHandle,
    _stop: watch::Sender<bool>,
    /// The `application_name` of its database sessions.
    application_name: String,
}

impl TestSystem {
    pub fn builder() -> TestSystemBuilder {
        TestSystemBuilder::default()
    }

    /// Starts all three services; the projector runs with small batches so that tests see
    /// several of them.
    pub async fn start(pool_options: PgPoolOptions, connect_options: PgConnectOptions) -> Self {
        drop(pool_options);
        Self::builder().start(connect_options).await
    }

    /// Starts the system with the order saga in `saga_mode`.
    pub async fn start_in(
        saga_mode: SagaMode,
        pool_options: PgPoolOptions,
        connect_options: PgConnectOptions,
    ) -> Self {
        drop(pool_options);
        Self::builder()
            .saga_mode(saga_mode)
            .start(connect_options)
            .await
    }

    /// Only the command-api, on the database of `pool` (a `#[sqlx::test]` pool).
    pub async fn command_side(pool: &PgPool) -> Self {
        Self::builder()
            .command_side_only()
            .start((*pool.connect_options()).clone())
            .await
    }

    /// A projector built as `main` builds it, whose sessions carry `application_name` so that
    /// killing it can end them the way a dying process would.
    pub async fn build_projector(
        &self,
        saga_mode: SagaMode,
        application_name: &str,
    ) -> projector::Application {
        let url = database_url(&self.connect_options, Some(application_name));
        let mode = match saga_mode {
            SagaMode::Orchestration => "orchestration",
            SagaMode::Choreography => "choreography",
        };
        let partitions = self
            .partitions
            .load(std::sync::atomic::Ordering::Relaxed)
            .to_string();
        let pool_size = POOL_SIZE.to_owned();
        let mut args: Vec<String> = [
            "projector",
            "--database-url",
            &url,
            "--redis-url",
            &redis_url(),
            "--redis-key-prefix",
            self.keys.prefix(),
            "--addr",
            "127.0.0.1:0",
            "--saga-mode",
            mode,
            "--batch-size",
            "50",
            "--poll-interval-ms",
            "100",
            "--snapshot-every",
            &self.snapshot_every.to_string(),
            "--partitions",
            &partitions,
            "--database-pool-size",
            &pool_size,
            "--operator-token",
            OPERATOR_TOKEN,
            "--dashboard-origins",
            DASHBOARD_ORIGIN,
        ]
        .map(String::from)
        .into();
        // The relay only where a test asks for it: a NATS_URL in the environment (scripts/test
        // exports one for the tests' own connections) must not turn it on for every test.
        if !self.projector_args.iter().any(|arg| arg == "--nats-url") {
            args.extend(["--nats-url".to_owned(), String::new()]);
        }
        args.extend(self.projector_args.iter().cloned());
        projector::Application::build(
            projector::cli::Cli::try_parse_from(args)
                .expect("projector settings")
                .settings,
        )
        .await
        .expect("projector starts")
    }

    /// Projectors started from now on split every subscription into `partitions` (the first
    /// of them to start changes the layout).
    pub fn set_partitions(&self, partitions: i32) {
        self.partitions
            .store(partitions, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts a projector process (one more, if some run already).
    pub async fn start_projector(&self) -> String {
        self.start_projector_in(self.saga_mode).await
    }

    /// Starts a projector process with the saga in `saga_mode` (a mode switch, if it differs);
    /// returns its name, for `kill_projector_named`.
    pub async fn start_projector_in(&self, saga_mode: SagaMode) -> String {
        let name = format!("test-projector-{}", Uuid::new_v4().simple());
        let application = self.build_projector(saga_mode, &name).await;
        let server = application.server_handle();
        let base = format!("http://{}", application.address());
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(application.run_until(shutdown));
        self.projectors.lock().await.push(RunningProjector {
            base,
            task,
            server,
            _stop: stop,
            application_name: name.clone(),
        });
        name
    }

    /// How many projector processes run.
    pub async fn projectors_running(&self) -> usize {
        self.projectors.lock().await.len()
    }

    /// Stops every projector abruptly, wherever it is, as `kill -9` would: its tasks stop and
    /// its database sessions are ended, so its open transactions roll back. (Aborting the
    /// tasks alone could leave a session idle in a transaction, which holds back every
    /// reader's safe horizon until it is noticed.) Its leases are not given up: they expire.
    pub async fn kill_projector(&self) {
        let running: Vec<RunningProjector> = self.projectors.lock().await.drain(..).collect();
        for projector in running {
            self.kill(projector).await;
        }
    }

    /// Kills one projector process (see `kill_projector`).
    pub async fn kill_projector_named(&self, name: &str) {
        let running = {
            let mut projectors = self.projectors.lock().await;
            projectors
                .iter()
                .position(|projector| projector.application_name == name)
                .map(|index| projectors.remove(index))
        };
        if let Some(projector) = running {
            self.kill(projector).await;
        }
    }

    async fn kill(&self, projector: RunningProjector) {
        let RunningProjector {
            task,
            server,
            application_name,
            ..
        } = projector;
        task.abort();
        let _ = task.await;
        server.stop(false).await;
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

    /// `http://<address>` of the running projector's endpoints; panics when it is not running.
    pub async fn projector_base(&self) -> String {
        self.projectors
            .lock()
            .await
            .first()
            .map(|running| running.base.clone())
            .expect("a projector is running")
    }

    /// The Redis read model's subscription as the projector runs it, with the lease of its
    /// partition (taken once a killed projector's lease has expired), for tests that drive it
    /// one batch at a time.
    pub async fn lookups_subscription(
        &self,
    ) -> (
        projector::projections::lookups::Lookups,
        event_store::checkpoints::Lease,
    ) {
        let lookups = projector::projections::lookups::Lookups::new(
            self.redis.clone(),
            self.keys.clone(),
            self.pool.clone(),
            projector::projections::lookups::Target::Live,
        );
        let owner = Uuid::new_v4();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let claimed = event_store::checkpoints::claim(
                &self.pool,
                read_models::names::LOOKUPS,
                0,
                owner,
                Duration::from_secs(60),
            )
            .await
            .expect("claim");
            if let Some(lease) = claimed {
                return (lookups, lease);
            }
            assert!(Instant::now() < deadline, "the lookups lease never expired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes every Redis key of the system's prefix, as a Redis restarted without persistence
    /// would have lost them.
    pub async fn wipe_redis(&self) {
        let mut redis = self.redis.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.keys.prefix()))
            .query_async(&mut redis)
            .await
            .expect("keys");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .exec_async(&mut redis)
                .await
                .expect("deleted");
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

    /// A GET to the command-api (its operations endpoints and API docs).
    pub fn command_api_get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.command_base))
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
        self.send("/orders", order_body(customer_id, lines)).await
    }

    /// Places an order and returns the answer, whatever it is.
    pub async fn try_place_order(
        &self,
        customer_id: Uuid,
        lines: &[(Uuid, i64)],
    ) -> reqwest::Response {
        self.command("/orders")
            .json(&order_body(customer_id, lines))
            .send()
            .await
            .expect("order sent")
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
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
        self.under_test()
            .wait_until_caught_up(Duration::from_secs(60))
            .await;
    }

    /// The system as the invariant checks see it.
    pub fn under_test(&self) -> SystemUnderTest<'_> {
        SystemUnderTest {
            pool: &self.pool,
            redis: &self.redis,
            keys: &self.keys,
            client: &self.client,
            query_base: &self.query_base,
        }
    }

    /// Stops every service and closes every database session, so that `#[sqlx::test]` can drop
    /// the test database. Call it at the end of every test.
    pub async fn stop(self) {
        self.kill_projector().await;
        for server in &self.servers {
            server.stop(false).await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.pool.close())
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

fn order_body(customer_id: Uuid, lines: &[(Uuid, i64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product_id, quantity)| json!({ "product_id": product_id, "quantity": quantity }))
        .collect();
    json!({ "customer_id": customer_id, "lines": lines })
}

/// Asserts the status and returns the JSON body.
pub async fn expect_status(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, expected, "unexpected answer: {body}");
    body
}

/// The `id` of a command's answer.
pub fn id_of(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an id in the body")
}

/// Asserts a problem+json answer with this status and returns its body.
pub async fn expect_problem(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, expected, "unexpected answer: {body}");
    assert_eq!(content_type, "application/problem+json", "for {body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    for member in ["type", "title", "detail"] {
        assert!(body[member].is_string(), "problem without {member}: {body}");
    }
    body
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        if let Ok(mut running) = self.projectors.try_lock() {
            for RunningProjector { task, server, .. } in running.drain(..) {
                task.abort();
                drop(server.stop(false));
            }
        }
        for server in &self.servers {
            drop(server.stop(false));
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
