//! `RealSystem`: command-api, projector and query-api as separate processes of the built
//! binaries, like scripts/lib/system.sh starts them, on a PostgreSQL cluster of their own (so
//! that a case may crash it, and so that other work on the shared server, which may run out of
//! connections, cannot disturb a case), a Redis key prefix (`cqrs_fault_<id>:`) or a Redis
//! server of their own, ports and a token. A service can be killed (SIGKILL), paused (SIGSTOP)
//! and restarted on its port. Dropping the system kills its processes, deletes its Redis keys
//! and stops and deletes its private servers; the services' logs are kept (and their path
//! printed) when the test fails.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use read_models::RedisKeys;
use redis::aio::ConnectionManager;
use reqwest::{RequestBuilder, StatusCode};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use testkit::SystemUnderTest;

use crate::{PrivatePostgres, PrivateRedis, free_port, random_id, repo_root};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    CommandApi,
    QueryApi,
    Projector,
}

impl Service {
    pub const ALL: [Self; 3] = [Self::CommandApi, Self::Projector, Self::QueryApi];

    pub fn binary(self) -> &'static str {
        match self {
            Self::CommandApi => "command-api",
            Self::QueryApi => "query-api",
            Self::Projector => "projector",
        }
    }
}

#[derive(Debug, Default)]
pub struct RealSystemBuilder {
    private_redis: bool,
    saga_mode: Option<&'static str>,
    settings: Vec<(String, String)>,
}

impl RealSystemBuilder {
    /// On a Redis server of its own, which the test may kill and restart empty.
    pub fn private_redis(mut self) -> Self {
        self.private_redis = true;
        self
    }
    /// `orchestration` (the default) or `choreography`.
    pub fn saga_mode(mut self, mode: &'static str) -> Self {
        self.saga_mode = Some(mode);
        self
    }
    /// Another setting (environment variable) for every service.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    pub async fn start(self) -> RealSystem {
        let id = random_id();
        let bin_dir = bin_dir();
        for service in Service::ALL {
            let binary = bin_dir.join(service.binary());
            assert!(
                binary.is_file(),
                "{} not found: build the binaries first (cargo build --bins), or set FAULTS_BIN_DIR",
                binary.display()
            );
        }
        let postgres = PrivatePostgres::start().await;
        let redis_server = if self.private_redis {
            Some(PrivateRedis::start().await)
        } else {
            None
        };
        let server_url = postgres.server_url();
        let redis_url = match &redis_server {
            Some(server) => server.url(),
            None => std::env::var("REDIS_URL")
                .unwrap_or_else(|_| read_models::DEFAULT_REDIS_URL.to_owned()),
        };
        let database = format!("cqrs_fault_{id}");
        let mut admin = PgConnection::connect(&format!("{server_url}/postgres"))
            .await
            .expect("connect to the test's PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{database}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let log_dir = std::env::temp_dir().join(format!("cqrs-faults-{id}"));
        std::fs::create_dir_all(&log_dir).expect("create the log folder");

        let mut ports = HashMap::new();
        for service in Service::ALL {
            ports.insert(service, free_port());
        }
        let keys = RedisKeys::new(format!("cqrs_fault_{id}:"));
        let mut system = RealSystem {
            query_base: format!("http://127.0.0.1:{}", ports[&Service::QueryApi]),
            database_url: format!("{server_url}/{database}"),
            redis_url,
            keys,
            token: random_id(),
            saga_mode: self.saga_mode.unwrap_or("orchestration"),
            settings: self.settings,
            bin_dir,
            log_dir,
            ports,
            processes: Mutex::new(HashMap::new()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Below the services' 5 s keep-alive (see the soak driver).
                .pool_idle_timeout(Duration::from_secs(3))
                .build()
                .expect("HTTP client"),
            pool: None,
            redis: None,
            redis_server,
            postgres,
        };
        // The command-api applies the migrations; the others start once it is ready.
        system.start_service(Service::CommandApi).await;
        system.start_service(Service::Projector).await;
        system.start_service(Service::QueryApi).await;
        system.pool = Some(
            PgPoolOptions::new()
                .max_connections(4)
                .connect(&system.database_url)
                .await
                .expect("the test's pool"),
        );
        system.redis = Some(
            read_models::connect(&system.redis_url)
                .await
                .expect("the test's Redis connection"),
        );
        system
    }
}

pub struct RealSystem {
    pub database_url: String,
    pub redis_url: String,
    pub keys: RedisKeys,
    pub token: String,
    pub saga_mode: &'static str,
    settings: Vec<(String, String)>,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    ports: HashMap<Service, u16>,
    query_base: String,
    processes: Mutex<HashMap<Service, Child>>,
    pub client: reqwest::Client,
    pool: Option<PgPool>,
    redis: Option<ConnectionManager>,
    // Dropped after the services (fields drop in order).
    redis_server: Option<PrivateRedis>,
    postgres: PrivatePostgres,
}

impl RealSystem {
    pub fn builder() -> RealSystemBuilder {
        RealSystemBuilder::default()
    }

    pub fn base_url(&self, service: Service) -> String {
        format!("http://127.0.0.1:{}", self.ports[&service])
    }

    /// The query-api's base URL.
    pub fn query_base(&self) -> &str {
        &self.query_base
    }

    /// A pool on the system's database, as its owner.
    pub fn pool(&self) -> &PgPool {
        self.pool.as_ref().expect("started")
    }

    /// The system's own PostgreSQL, which the test may crash and start again.
    pub fn postgres(&self) -> &PrivatePostgres {
        &self.postgres
    }

    pub fn redis_server(&self) -> &PrivateRedis {
        self.redis_server
            .as_ref()
            .expect("started with private_redis()")
    }

    /// A command, with the bearer token.
    pub fn command(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base_url(Service::CommandApi)))
            .bearer_auth(&self.token)
    }

    pub fn query(&self, path: &str) -> RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base_url(Service::QueryApi)))
    }

    pub fn get(&self, service: Service, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base_url(service)))
    }

    /// The system as the invariant checks see it.
    pub fn under_test(&self) -> SystemUnderTest<'_> {
        SystemUnderTest {
            pool: self.pool(),
            redis: self.redis.as_ref().expect("started"),
            keys: &self.keys,
            client: &self.client,
            query_base: &self.query_base,
        }
    }

    /// The process id of a running service.
    pub fn pid(&self, service: Service) -> u32 {
        self.processes.lock().expect("lock")[&service].id()
    }

    /// True while the service's process runs (it has not exited).
    pub fn is_running(&self, service: Service) -> bool {
        let mut processes = self.processes.lock().expect("lock");
        processes
            .get_mut(&service)
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILL, wherever the service is; returns once it is gone.
    pub fn kill(&self, service: Service) {
        if let Some(mut child) = self.processes.lock().expect("lock").remove(&service) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays, but does nothing (its connections stay open) until `resume`.
    pub fn pause(&self, service: Service) {
        self.signal(service, "STOP");
    }

    pub fn resume(&self, service: Service) {
        self.signal(service, "CONT");
    }

    fn signal(&self, service: Service, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(service).to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {service:?} failed");
    }

    /// Kills the service if it runs, starts it again on its port and waits until it is ready.
    pub async fn restart(&self, service: Service) {
        self.kill(service);
        self.start_service(service).await;
    }

    async fn start_service(&self, service: Service) {
        let log_path = self.log_dir.join(format!("{}.log", service.binary()));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the log");
        let mut command = Command::new(self.bin_dir.join(service.binary()));
        command
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("REDIS_KEY_PREFIX", self.keys.prefix())
            .env("SAGA_MODE", self.saga_mode)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env(
                "COMMAND_API_ADDR",
                format!("127.0.0.1:{}", self.ports[&Service::CommandApi]),
            )
            .env(
                "QUERY_API_ADDR",
                format!("127.0.0.1:{}", self.ports[&Service::QueryApi]),
            )
            .env(
                "PROJECTOR_ADDR",
                format!("127.0.0.1:{}", self.ports[&Service::Projector]),
            )
            .envs(self.settings.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if service == Service::CommandApi {
            command.env("COMMAND_API_TOKEN", &self.token);
        }
        let child = command.spawn().expect("start the service");
        self.processes.lock().expect("lock").insert(service, child);
        self.wait_ready(service, &log_path).await;
    }

    async fn wait_ready(&self, service: Service, log_path: &Path) {
        let url = format!("{}/readyz", self.base_url(service));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|response| response.status() == StatusCode::OK) {
                return;
            }
            assert!(
                self.is_running(service),
                "{service:?} exited while starting:\n{}",
                tail(log_path)
            );
            assert!(
                Instant::now() < deadline,
                "{service:?} was not ready within 60 s:\n{}",
                tail(log_path)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Panics if any service's log holds the bearer token (a token is never logged, whatever
    /// requests carried it).
    pub fn assert_token_never_logged(&self) {
        for service in Service::ALL {
            let path = self.log_dir.join(format!("{}.log", service.binary()));
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !log.contains(&self.token),
                "{} holds the bearer token",
                path.display()
            );
        }
    }

    /// The last lines of every service's log.
    pub fn log_tails(&self) -> String {
        Service::ALL
            .iter()
            .map(|service| {
                let path = self.log_dir.join(format!("{}.log", service.binary()));
                format!("--- {} ---\n{}", path.display(), tail(&path))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The last 30 lines of a log.
fn tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(8_192)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FAULTS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| repo_root().join("target"), |dir| repo_root().join(dir));
    target.join("debug")
}

impl Drop for RealSystem {
    fn drop(&mut self) {
        for service in Service::ALL {
            self.kill(service);
        }
        if self.redis_server.is_none() {
            delete_keys(&self.redis_url, self.keys.prefix());
        }
        if std::thread::panicking() {
            eprintln!(
                "the services' logs are kept in {}\n{}",
                self.log_dir.display(),
                self.log_tails()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// Deletes every key that starts with `prefix` (SCAN + UNLINK, never FLUSH*).
fn delete_keys(redis_url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        eprintln!("could not delete the Redis keys {prefix}*");
        return;
    };
    // The prefix is cqrs_fault_<hex>: with no glob characters, so the pattern matches it exactly.
    let keys: Vec<String> = match redis::Commands::scan_match(&mut conn, format!("{prefix}*")) {
        Ok(keys) => keys.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
    }
}
