//! `soak`: holds a running system (scripts/soak starts one) under mixed reads and writes at a
//! fixed rate, with the saga busy, and fails on any error, on memory growing after warm-up, or on
//! open connections or files growing.
//!
//! The load is open-loop: a request starts every 1/rate seconds whether or not earlier ones have
//! finished, so a system that slows down falls behind visibly instead of being paced by its own
//! answers. Each tick is one of: place an order and read it back with `min_position`; look up an
//! order, a product or a customer; list orders or search products; cancel, ship or restock;
//! register a customer; read `/projections`. Every answer must be one the contract gives for that
//! request (a cancel may meet an order the saga already rejected: 409).
//!
//! Every two seconds it samples, per service process: resident memory (VmRSS), open files, and
//! TCP connections to PostgreSQL and to Redis (its sockets whose peer is that port); and the
//! database's sessions. The run is cut in thirds: the first is warm-up; memory has grown if the
//! last third's median is above the middle third's highest sample by more than 5% (and 2 MiB);
//! a count has grown if the last third's highest is above everything before it by more than a
//! quarter (and 4): pools open connections as the load needs them, up to their bound, while a
//! leak keeps growing.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Requests allowed in flight before the system counts as not keeping up.
const MAX_IN_FLIGHT: u64 = 500;

struct Settings {
    command_url: String,
    query_url: String,
    token: String,
    database_url: String,
    seconds: u64,
    rate: u64,
    /// service name -> pid
    pids: Vec<(&'static str, u32)>,
    /// The port each of `pids` serves on.
    listen_ports: Vec<u16>,
    postgres_port: u16,
    redis_port: u16,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("error: {name} is not set; run this through scripts/soak");
        std::process::exit(2)
    })
}

fn port_of(url: &str, default: u16) -> u16 {
    let authority = url.split("://").nth(1).unwrap_or(url);
    let host_port = authority.split(['/', '?']).next().unwrap_or_default();
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    host_port
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(default)
}

fn settings() -> Settings {
    let mut seconds = 300;
    let mut rate = 40;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--seconds", Some(v)) if v > 0 => seconds = v,
            ("--rate", Some(v)) if v > 0 => rate = v,
            _ => {
                eprintln!("usage: soak [--seconds N] [--rate REQUESTS_PER_SECOND]");
                std::process::exit(2)
            }
        }
    }
    let database_url = env("SYSTEM_DATABASE_URL");
    let redis_url = env("SYSTEM_REDIS_URL");
    let listen_ports = [
        "SYSTEM_COMMAND_URL",
        "SYSTEM_PROJECTOR_URL",
        "SYSTEM_QUERY_URL",
    ]
    .map(|var| port_of(&env(var), 0))
    .to_vec();
    Settings {
        listen_ports,
        command_url: env("SYSTEM_COMMAND_URL"),
        query_url: env("SYSTEM_QUERY_URL"),
        token: env("SYSTEM_TOKEN"),
        postgres_port: port_of(&database_url, 5432),
        redis_port: port_of(&redis_url, 6379),
        database_url,
        seconds,
        rate,
        pids: [
            ("command-api", "SYSTEM_COMMAND_PID"),
            ("projector", "SYSTEM_PROJECTOR_PID"),
            ("query-api", "SYSTEM_QUERY_PID"),
        ]
        .into_iter()
        .map(|(name, var)| (name, env(var).parse().expect("a pid")))
        .collect(),
    }
}

/// What the load did.
#[derive(Default)]
struct Outcome {
    requests: AtomicU64,
    in_flight: AtomicU64,
    errors: Mutex<Vec<String>>,
    latencies_ms: Mutex<Vec<f64>>,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Outcome {
    fn error(&self, what: String) {
        let mut errors = self.errors.lock().expect("lock");
        if errors.len() < 1_000 {
            errors.push(what);
        }
    }
}

/// The shop the load works in; orders placed are remembered for cancels and lookups.
struct Shop {
    customers: Vec<String>,
    products: Vec<String>,
    orders: Mutex<Vec<String>>,
}

struct Load {
    http: reqwest::Client,
    settings: Settings,
    shop: Shop,
    outcome: Outcome,
}

impl Load {
    /// Sends one request and checks its status; returns the body when it is one of `expected`.
    async fn call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        expected: &[u16],
    ) -> Option<Value> {
        self.outcome.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let response = request.send().await;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        self.outcome
            .latencies_ms
            .lock()
            .expect("lock")
            .push(elapsed);
        match response {
            Err(error) => {
                self.outcome.error(format!("{what}: no answer: {error}"));
                None
            }
            Ok(response) => {
                let status = response.status().as_u16();
                *self
                    .outcome
                    .statuses
                    .lock()
                    .expect("lock")
                    .entry(status)
                    .or_default() += 1;
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if expected.contains(&status) {
                    Some(body)
                } else {
                    self.outcome
                        .error(format!("{what} answered {status}: {body}"));
                    None
                }
            }
        }
    }

    fn command(&self, path: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.settings.command_url))
            .bearer_auth(&self.settings.token)
            .json(&body)
    }

    fn query(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.settings.query_url))
    }

    fn pick(items: &[String], n: u64) -> &str {
        &items[(n as usize) % items.len()]
    }

    /// The `n`-th request of the run.
    async fn tick(&self, n: u64) {
        let shop = &self.shop;
        let customer = Self::pick(&shop.customers, n / 7);
        let product = Self::pick(&shop.products, n / 3);
        let recent = {
            let orders = shop.orders.lock().expect("lock");
            orders
                .len()
                .checked_sub(1 + (n as usize % 20))
                .and_then(|i| orders.get(i).cloned())
        };
        match n % 20 {
            0..=5 => {
                let other = Self::pick(&shop.products, n / 3 + 1);
                let body = json!({ "customer_id": customer, "lines": [
                    { "product_id": product, "quantity": 1 + n % 3 },
                    { "product_id": other, "quantity": 1 } ] });
                let Some(placed) = self
                    .call("POST /orders", self.command("/orders", body), &[202])
                    .await
                else {
                    return;
                };
                let id = placed["id"].as_str().unwrap_or_default().to_owned();
                let position = placed["position"].as_i64().unwrap_or_default();
                self.call(
                    "GET /orders/{id}?min_position",
                    self.query(&format!("/orders/{id}?min_position={position}")),
                    &[200],
                )
                .await;
                shop.orders.lock().expect("lock").push(id);
            }
            6..=8 => {
                self.call(
                    "GET /products/{id}",
                    self.query(&format!("/products/{product}")),
                    &[200],
                )
                .await;
            }
            9 | 10 => {
                self.call(
                    "GET /customers/{id}",
                    self.query(&format!("/customers/{customer}")),
                    &[200],
                )
                .await;
            }
            11 | 12 => {
                if let Some(order) = recent {
                    self.call(
                        "GET /orders/{id}",
                        self.query(&format!("/orders/{order}")),
                        &[200],
                    )
                    .await;
                }
            }
            13 => {
                self.call(
                    "GET /orders?customer_id",
                    self.query(&format!("/orders?customer_id={customer}&limit=10")),
                    &[200],
                )
                .await;
            }
            14 => {
                self.call(
                    "GET /products?q",
                    self.query("/products?q=soak&limit=10"),
                    &[200],
                )
                .await;
            }
            15 => {
                if let Some(order) = recent {
                    // The saga may have rejected it, or another tick cancelled or shipped it.
                    self.call(
                        "POST /orders/{id}/cancel",
                        self.command(&format!("/orders/{order}/cancel"), json!({})),
                        &[202, 409],
                    )
                    .await;
                }
            }
            16 => {
                let approved = self
                    .call(
                        "GET /orders?status=approved",
                        self.query(&format!(
                            "/orders?customer_id={customer}&status=approved&limit=1"
                        )),
                        &[200],
                    )
                    .await;
                if let Some(id) = approved
                    .as_ref()
                    .and_then(|page| page["items"][0]["id"].as_str())
                {
                    // A cancel may get there first.
                    self.call(
                        "POST /orders/{id}/ship",
                        self.command(&format!("/orders/{id}/ship"), json!(null)),
                        &[200, 409],
                    )
                    .await;
                }
            }
            17 => {
                self.call(
                    "POST /products/{id}/restock",
                    self.command(
                        &format!("/products/{product}/restock"),
                        json!({ "quantity": 5 }),
                    ),
                    &[200],
                )
                .await;
            }
            18 => {
                self.call(
                    "POST /customers",
                    self.command(
                        "/customers",
                        json!({ "name": format!("Soak {n}"), "credit_limit_cents": 1_000_000 }),
                    ),
                    &[201],
                )
                .await;
            }
            _ => {
                self.call("GET /projections", self.query("/projections"), &[200])
                    .await;
            }
        }
    }
}

/// One sample of a process.
#[derive(Debug, Clone, Copy, Default)]
struct ProcessSample {
    rss_kib: u64,
    /// Open files other than the connections of its own clients (which come and go with the
    /// load): the process's own files, listeners and connections to its dependencies.
    open_files: u64,
    postgres: u64,
    redis: u64,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The socket inodes a process holds, and how many files it has open.
fn sockets(pid: u32) -> (HashSet<u64>, u64) {
    let mut inodes = HashSet::new();
    let mut files = 0;
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            files += 1;
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    (inodes, files)
}

/// Established TCP connections by socket inode -> (local port, peer's port).
fn peer_ports() -> HashMap<u64, (u16, u16)> {
    let mut ports = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "01" {
                continue;
            }
            let port = |field: &str| {
                field
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if let (Some(local), Some(peer), Ok(inode)) =
                (port(fields[1]), port(fields[2]), fields[9].parse())
            {
                ports.insert(inode, (local, peer));
            }
        }
    }
    ports
}

fn sample(settings: &Settings) -> Vec<ProcessSample> {
    let peers = peer_ports();
    settings
        .pids
        .iter()
        .zip(&settings.listen_ports)
        .map(|((_, pid), listen_port)| {
            let (inodes, open_files) = sockets(*pid);
            let count = |wanted: &dyn Fn(u16, u16) -> bool| {
                inodes
                    .iter()
                    .filter(|inode| {
                        peers
                            .get(inode)
                            .is_some_and(|(local, peer)| wanted(*local, *peer))
                    })
                    .count() as u64
            };
            let clients = count(&|local, _| local == *listen_port);
            ProcessSample {
                rss_kib: rss_kib(*pid),
                open_files: open_files - clients,
                postgres: count(&|_, peer| peer == settings.postgres_port),
                redis: count(&|_, peer| peer == settings.redis_port),
            }
        })
        .collect()
}

async fn database_sessions(pool: &sqlx::PgPool) -> u64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .map_or(0, |n| n.max(0) as u64)
}

/// Registers the customers and products the load works with.
async fn open_shop(http: &reqwest::Client, settings: &Settings) -> Shop {
    let command = |path: &str, body: Value| {
        http.post(format!("{}{path}", settings.command_url))
            .bearer_auth(&settings.token)
            .json(&body)
    };
    let answer_position = AtomicU64::new(0);
    let mut customers = Vec::new();
    for n in 0..8 {
        let answer: Value = command(
            "/customers",
            json!({ "name": format!("Soak customer {n}"), "credit_limit_cents": 50_000_000 }),
        )
        .send()
        .await
        .expect("register a customer")
        .json()
        .await
        .expect("JSON");
        customers.push(answer["id"].as_str().expect("id").to_owned());
        answer_position.fetch_max(answer["position"].as_u64().unwrap_or(0), Ordering::Relaxed);
    }
    let mut products = Vec::new();
    for n in 0..12 {
        let answer: Value = command(
            "/products",
            json!({ "sku": format!("SOAK-{n}-{}", std::process::id()), "name": format!("Soak product {n}"),
                    "price_cents": 100 + n * 37, "stock": 2_000 }),
        )
        .send()
        .await
        .expect("add a product")
        .json()
        .await
        .expect("JSON");
        products.push(answer["id"].as_str().expect("id").to_owned());
        answer_position.fetch_max(answer["position"].as_u64().unwrap_or(0), Ordering::Relaxed);
    }
    // The load reads these at once: wait until every read model has them.
    let last = answer_position.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http
            .get(format!(
                "{}/projections?min_position={last}",
                settings.query_url
            ))
            .send()
            .await
            .map(|response| response.status());
        if status.is_ok_and(|status| status == StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the read models did not reach the shop's position {last} within a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Shop {
        customers,
        products,
        orders: Mutex::new(Vec::new()),
    }
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let settings = settings();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        // The services close a connection idle for 5 s (http_kit::deadlines::KEEP_ALIVE); a
        // client that reuses one at that very moment gets no answer. Reuse sooner or not at all.
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .expect("HTTP client");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&settings.database_url)
        .await
        .expect("connect to the system's database");
    let shop = open_shop(&http, &settings).await;
    let load = Arc::new(Load {
        http,
        settings,
        shop,
        outcome: Outcome::default(),
    });
    let (seconds, rate) = (load.settings.seconds, load.settings.rate);
    eprintln!(
        "soak: {seconds} s at {rate} requests/s against {} and {}",
        load.settings.command_url, load.settings.query_url
    );

    // The load: one request every 1/rate s, each on its own task.
    let driver = {
        let load = load.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0u64;
            let mut tasks = tokio::task::JoinSet::new();
            while Instant::now() < end {
                every.tick().await;
                if load.outcome.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    load.outcome.error(format!(
                        "more than {MAX_IN_FLIGHT} requests in flight: the system is not keeping up"
                    ));
                    continue;
                }
                let load = load.clone();
                load.outcome.in_flight.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(async move {
                    load.tick(n).await;
                    load.outcome.in_flight.fetch_sub(1, Ordering::Relaxed);
                });
                n += 1;
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    // The samples.
    let started = Instant::now();
    let mut samples: Vec<(f64, Vec<ProcessSample>, u64)> = Vec::new();
    while !driver.is_finished() {
        let processes = sample(&load.settings);
        let sessions = database_sessions(&pool).await;
        samples.push((started.elapsed().as_secs_f64(), processes, sessions));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = async { while !driver.is_finished() { tokio::time::sleep(Duration::from_millis(100)).await } } => {}
        }
    }
    driver.await.expect("the load");

    let mut failures = Vec::new();
    // The projector keeps up: once the load stops, it catches up within a minute.
    let caught_up = Instant::now() + Duration::from_secs(60);
    loop {
        let projections: Option<Value> = match load.query("/projections").send().await {
            Ok(response) if response.status() == StatusCode::OK => response.json().await.ok(),
            _ => None,
        };
        let lagging = projections
            .as_ref()
            .and_then(|body| body["items"].as_array())
            .is_none_or(|items| items.iter().any(|item| item["lag_events"] != 0));
        if !lagging {
            break;
        }
        if Instant::now() > caught_up {
            failures.push(format!(
                "the projector did not catch up within a minute of the load's end: {}",
                projections.unwrap_or(Value::Null)
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let errors = load.outcome.errors.lock().expect("lock").clone();
    if !errors.is_empty() {
        failures.push(format!(
            "{} errors, e.g.:\n  {}",
            errors.len(),
            errors[..errors.len().min(10)].join("\n  ")
        ));
    }
    let third = samples.len() / 3;
    if third < 2 {
        failures.push("too few samples to judge growth; run longer (--seconds 30 at least)".into());
    } else {
        let (middle, last) = (&samples[third..2 * third], &samples[2 * third..]);
        let before_last = &samples[..2 * third];
        for (index, (name, _)) in load.settings.pids.iter().enumerate() {
            let series = |window: &[(f64, Vec<ProcessSample>, u64)],
                          f: fn(&ProcessSample) -> u64| {
                window
                    .iter()
                    .map(|(_, p, _)| f(&p[index]))
                    .collect::<Vec<u64>>()
            };
            let middle_peak = series(middle, |p| p.rss_kib).into_iter().max().unwrap_or(0);
            let last_median = median(&mut series(last, |p| p.rss_kib));
            let allowed = middle_peak + (middle_peak / 20).max(2_048);
            if last_median > allowed {
                failures.push(format!(
                    "{name}: memory grew after warm-up: {last_median} KiB in the last third, up to {middle_peak} KiB in the middle one"
                ));
            }
            for (what, f) in [
                (
                    "open files",
                    (|p: &ProcessSample| p.open_files) as fn(&ProcessSample) -> u64,
                ),
                ("PostgreSQL connections", |p| p.postgres),
                ("Redis connections", |p| p.redis),
            ] {
                let before = series(before_last, f).into_iter().max().unwrap_or(0);
                let latest = series(last, f).into_iter().max().unwrap_or(0);
                if latest > before + (before / 4).max(4) {
                    failures.push(format!(
                        "{name}: {what} grew: {latest} in the last third, at most {before} before"
                    ));
                }
            }
        }
        let sessions_before = before_last.iter().map(|s| s.2).max().unwrap_or(0);
        let sessions_last = last.iter().map(|s| s.2).max().unwrap_or(0);
        if sessions_last > sessions_before + (sessions_before / 4).max(4) {
            failures.push(format!(
                "database sessions grew: {sessions_last} in the last third, at most {sessions_before} before"
            ));
        }
    }

    let mut latencies = load.outcome.latencies_ms.lock().expect("lock").clone();
    latencies.sort_by(f64::total_cmp);
    let requests = load.outcome.requests.load(Ordering::Relaxed);
    println!("time_s\tservice\trss_kib\topen_files\tpg_conns\tredis_conns\tdb_sessions");
    for (at, processes, sessions) in &samples {
        for ((name, _), p) in load.settings.pids.iter().zip(processes) {
            println!(
                "{at:.0}\t{name}\t{}\t{}\t{}\t{}\t{sessions}",
                p.rss_kib, p.open_files, p.postgres, p.redis
            );
        }
    }
    let placed = load.shop.orders.lock().expect("lock").len();
    let statuses = load.outcome.statuses.lock().expect("lock").clone();
    println!(
        "SOAK: {seconds} s at {rate}/s: {requests} requests ({placed} orders placed), statuses {statuses:?}, \
         errors {}, latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms, {} samples",
        errors.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        samples.len()
    );
    if failures.is_empty() {
        println!("soak: passed");
    } else {
        for failure in &failures {
            eprintln!("FAIL: {failure}");
        }
        std::process::exit(1);
    }
}
