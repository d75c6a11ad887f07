//! The steps of the request-path suite (issue 14). `scripts/bench` starts the isolated system and
//! runs the steps in order, pausing the projector and restarting the command-api between them;
//! each step measures one thing and writes its measurements to the work folder, and `report`
//! puts them together.
//!
//! 1. `reads`: seeds a catalog and orders over HTTP, then drives the three lookups and the three
//!    PostgreSQL reads with wrk at 64 connections, each lookup beside the Redis ceiling; the peak
//!    RSS of every service after that load.
//! 2. `commands`: `POST /orders` at 32 connections with wrk (run once with the projector running,
//!    once with it stopped); with `--ceiling`, pgbench's single-row inserts at the same
//!    concurrency.
//! 3. `rebuild`: seeds a million events with COPY and times `projector rebuild --all`.
//! 4. `hot`: restocks a product with 100,000 events and a fresh one, one command at a time.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::{PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

use crate::{
    api::{Catalog, Client, Endpoints},
    ceiling_server, event_seed,
    latency::Latencies,
    measurement::{self, Measurement, Throughput},
    pgbench, wrk,
};

#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Where the steps keep their state and measurements.
    #[arg(long)]
    pub work_dir: PathBuf,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    #[arg(long, env = "REDIS_KEY_PREFIX")]
    pub redis_prefix: String,
    /// Shorter runs and fewer events: a smoke test of the whole suite.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Step {
    /// Lookups and PostgreSQL reads beside the Redis ceiling; then each service's peak RSS.
    Reads {
        /// `name=pid` of each service whose peak RSS to report.
        #[arg(long = "service")]
        services: Vec<String>,
    },
    /// `POST /orders` at 32 connections; `--ceiling` also measures pgbench's inserts.
    Commands {
        /// `running` or `paused`: how the projector is (the script stops it for `paused`).
        #[arg(long)]
        projector: String,
        #[arg(long)]
        ceiling: bool,
    },
    /// COPY a million events into the log, then time `projector rebuild --all`.
    Rebuild {
        /// The projector binary.
        #[arg(long)]
        projector_bin: PathBuf,
        #[arg(long, env = "SAGA_MODE", default_value = "orchestration")]
        saga_mode: String,
    },
    /// Commands on a product with 100,000 events and on a fresh one.
    Hot {
        /// `on` or `off`: how the command-api was started (SNAPSHOT_EVERY).
        #[arg(long)]
        snapshots: String,
    },
}

/// What the first step seeds, for the later ones.
#[derive(Debug, Serialize, Deserialize)]
struct Fixture {
    catalog: Catalog,
    orders: Vec<Uuid>,
}

struct SuiteRun {
    args: SuiteArgs,
    client: Client,
    pool: PgPool,
}

impl SuiteRun {
    /// How long each load runs.
    fn load_time(&self) -> Duration {
        Duration::from_secs(if self.args.quick { 3 } else { 10 })
    }

    fn fixture_path(&self) -> PathBuf {
        self.args.work_dir.join("fixture.json")
    }

    fn load_fixture(&self) -> anyhow::Result<Fixture> {
        let bytes = std::fs::read(self.fixture_path())
            .context("the reads step writes the fixture first")?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

pub async fn run(args: SuiteArgs, step: Step) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let context = SuiteRun {
        client: Client::new(args.endpoints.clone())?,
        args,
        pool,
    };
    let (name, measurements) = match step {
        Step::Reads { services } => ("reads", reads(&context, &services).await?),
        Step::Commands { projector, ceiling } => {
            let measurements = commands(&context, &projector, ceiling).await?;
            (
                if projector == "paused" {
                    "commands-paused"
                } else {
                    "commands-running"
                },
                measurements,
            )
        }
        Step::Rebuild {
            projector_bin,
            saga_mode,
        } => (
            "rebuild",
            rebuild(&context, &projector_bin, &saga_mode).await?,
        ),
        Step::Hot { snapshots } => {
            let measurements = hot(&context, &snapshots).await?;
            (
                if snapshots == "off" {
                    "hot-off"
                } else {
                    "hot-on"
                },
                measurements,
            )
        }
    };
    for m in &measurements {
        m.print();
    }
    measurement::save(&context.args.work_dir, name, &measurements)
}

/// The step names in the order the report lists them.
pub const STEPS: [&str; 6] = [
    "reads",
    "commands-running",
    "commands-paused",
    "rebuild",
    "hot-on",
    "hot-off",
];

// --- reads -------------------------------------------------------------------------------------

async fn seed_fixture(context: &SuiteRun) -> anyhow::Result<Fixture> {
    let client = &context.client;
    let catalog = client.register_catalog(20, 50).await?;
    let mut orders = Vec::new();
    let mut last = catalog.position;
    for n in 0..200 {
        let accepted = client.command("/orders", &catalog.order_body(n)).await?;
        orders.push(accepted.id);
        last = last.max(accepted.position);
    }
    // Every read model has everything, and the saga has decided each order, so that documents
    // no longer change while they are read.
    client
        .read(&format!("/projections?min_position={last}"))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let projections = client.read("/projections").await?;
        let items = projections["items"].as_array().cloned().unwrap_or_default();
        if items.iter().all(|item| item["lag_events"] == 0) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the projector did not catch up: {projections}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fixture = Fixture { catalog, orders };
    std::fs::write(context.fixture_path(), serde_json::to_vec(&fixture)?)?;
    Ok(fixture)
}

/// The ceiling server, a child process stopped when dropped.
struct CeilingServer {
    child: Child,
    url: String,
}

impl CeilingServer {
    async fn start(context: &SuiteRun) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(std::env::current_exe()?)
            .args(["ceiling-server", "--listen", &listen])
            .env("REDIS_URL", &context.args.redis_url)
            .env("REDIS_KEY_PREFIX", &context.args.redis_prefix)
            .stdin(Stdio::null())
            .spawn()
            .context("starting the ceiling server")?;
        let server = Self {
            child,
            url: format!("http://{listen}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = reqwest::Client::new();
        loop {
            if let Ok(response) = probe
                .get(format!("{}/lookup/none", server.url))
                .send()
                .await
                && response.status() == reqwest::StatusCode::NOT_FOUND
            {
                return Ok(server);
            }
            ensure!(
                Instant::now() < deadline,
                "the ceiling server did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CeilingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies each document the lookup serves under the ceiling's key; returns the mean size.
async fn copy_documents(context: &SuiteRun, kind: &str, ids: &[Uuid]) -> anyhow::Result<usize> {
    let redis_client = redis::Client::open(context.args.redis_url.as_str())?;
    let mut redis = redis_client.get_multiplexed_async_connection().await?;
    let mut total = 0;
    for id in ids {
        let bytes = context.client.read_bytes(&format!("/{kind}/{id}")).await?;
        total += bytes.len();
        let () = redis
            .set(
                ceiling_server::copy_key(&context.args.redis_prefix, &id.to_string()),
                bytes,
            )
            .await?;
    }
    Ok(total / ids.len().max(1))
}

fn peak_rss_mib(pid: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let Some(kib) = status.lines().find_map(|line| {
        line.strip_prefix("VmHWM:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    }) else {
        bail!("no VmHWM in /proc/{pid}/status");
    };
    Ok(kib / 1024.0)
}

async fn reads(context: &SuiteRun, services: &[String]) -> anyhow::Result<Vec<Measurement>> {
    let fixture = seed_fixture(context).await?;
    let catalog = &fixture.catalog;
    let ceiling = CeilingServer::start(context).await?;
    let query_url = &context.args.endpoints.query_url;
    let work_dir = &context.args.work_dir;
    let load = context.load_time();
    let mut measurements = Vec::new();

    let lookups: [(&str, &[Uuid]); 3] = [
        ("orders", &fixture.orders),
        ("products", &catalog.products),
        ("customers", &catalog.customers),
    ];
    for (kind, ids) in lookups {
        let size = copy_documents(context, kind, ids).await?;
        let paths: Vec<String> = ids.iter().map(|id| format!("/{kind}/{id}")).collect();
        let endpoint = wrk::run(
            work_dir,
            &format!("lookup-{kind}"),
            query_url,
            &wrk::get_script(&paths),
            64,
            load,
        )?;
        let paths: Vec<String> = ids.iter().map(|id| format!("/lookup/{id}")).collect();
        let bare = wrk::run(
            work_dir,
            &format!("ceiling-{kind}"),
            &ceiling.url,
            &wrk::get_script(&paths),
            64,
            load,
        )?;
        let ceiling_id = format!("ceiling_redis_{kind}");
        measurements.push(
            Measurement::rate(
                &format!("lookup_{kind}"),
                &format!("GET /{kind}/{{id}} (Redis)"),
                "req/s",
                endpoint,
            )
            .against(&ceiling_id)
            .noting(format!(
                "{} documents of {size} bytes on average",
                ids.len()
            )),
        );
        measurements.push(Measurement::rate(
            &ceiling_id,
            &format!("ceiling: actix-web + one Redis GET ({size} B)"),
            "req/s",
            bare,
        ));
    }

    let pg_reads: [(&str, &str, Vec<String>); 3] = [
        (
            "list_orders",
            "GET /orders?customer_id= (PostgreSQL)",
            catalog
                .customers
                .iter()
                .map(|c| format!("/orders?customer_id={c}&limit=20"))
                .collect(),
        ),
        (
            "search_products",
            "GET /products?q= (PostgreSQL)",
            (0..50)
                .map(|n| format!("/products?q=tea%20{n}&limit=20"))
                .collect(),
        ),
        (
            "order_history",
            "GET /orders/{id}/history (PostgreSQL)",
            fixture
                .orders
                .iter()
                .map(|o| format!("/orders/{o}/history"))
                .collect(),
        ),
    ];
    for (id, what, paths) in pg_reads {
        let result = wrk::run(work_dir, id, query_url, &wrk::get_script(&paths), 64, load)?;
        measurements.push(Measurement::rate(id, what, "req/s", result));
    }

    // VmHWM: the most each process has held since it started, the read load included.
    for service in services {
        let Some((name, pid)) = service.split_once('=') else {
            bail!("--service takes name=pid, not {service}");
        };
        let mib = peak_rss_mib(pid)?;
        let mut m = Measurement::value(
            &format!("rss_{}", name.replace('-', "_")),
            &format!("peak RSS of {name}"),
            mib,
            "MiB",
        );
        if name == "query-api" {
            m = m.against("rss_ceiling");
        }
        measurements.push(m);
    }
    measurements.push(Measurement::value(
        "rss_ceiling",
        "peak RSS of the ceiling server",
        peak_rss_mib(&ceiling.pid().to_string())?,
        "MiB",
    ));
    Ok(measurements)
}

// --- commands ----------------------------------------------------------------------------------

async fn commands(
    context: &SuiteRun,
    projector: &str,
    ceiling: bool,
) -> anyhow::Result<Vec<Measurement>> {
    let fixture = context.load_fixture()?;
    let ids = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
    let script = wrk::orders_script(
        &ids(&fixture.catalog.customers),
        &ids(&fixture.catalog.products),
        &context.args.endpoints.token,
    );
    let work_dir = &context.args.work_dir;
    let result = wrk::run(
        work_dir,
        &format!("orders-{projector}"),
        &context.args.endpoints.command_url,
        &script,
        32,
        context.load_time(),
    )?;
    let mut measurements = vec![
        Measurement::rate(
            &format!("orders_{projector}"),
            &format!("POST /orders, 1-3 lines (projector {projector})"),
            "req/s",
            result,
        )
        .against("ceiling_pgbench_insert"),
    ];
    if ceiling {
        let result = pgbench::run(
            &context.pool,
            &context.args.database_url,
            work_dir,
            32,
            context.load_time(),
        )
        .await?;
        measurements.push(Measurement::rate(
            "ceiling_pgbench_insert",
            "ceiling: pgbench, one event-shaped row per transaction",
            "rows/s",
            result,
        ));
    }
    Ok(measurements)
}

// --- rebuild -----------------------------------------------------------------------------------

async fn rebuild(
    context: &SuiteRun,
    projector_bin: &Path,
    saga_mode: &str,
) -> anyhow::Result<Vec<Measurement>> {
    let events = if context.args.quick {
        100_000
    } else {
        1_000_000
    };
    println!("rebuild: seeding {events} events with COPY ...");
    let seeded = event_seed::seed_orders(&context.pool, events).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&context.pool)
        .await?;
    println!(
        "rebuild: {} events seeded in {:.1} s; the log holds {total}; running projector rebuild --all ...",
        seeded.events,
        seeded.elapsed.as_secs_f64()
    );
    // As autovacuum would soon: statistics for the new rows, and their writes flushed.
    sqlx::query("ANALYZE events").execute(&context.pool).await?;
    sqlx::query("CHECKPOINT").execute(&context.pool).await?;
    let mut measurements = vec![Measurement::value(
        "seed_copy",
        "seeding the log with COPY (trigger included)",
        seeded.events as f64 / seeded.elapsed.as_secs_f64().max(1e-9),
        "events/s",
    )];
    let started = Instant::now();
    let output = Command::new(projector_bin)
        .args(["rebuild", "--all"])
        .env("DATABASE_URL", &context.args.database_url)
        .env("REDIS_URL", &context.args.redis_url)
        .env("REDIS_KEY_PREFIX", &context.args.redis_prefix)
        .env("SAGA_MODE", saga_mode)
        .env("NATS_URL", "")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .context("running projector rebuild --all")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "projector rebuild --all failed: {stderr}"
    );
    for (name, count, seconds) in stderr.lines().filter_map(rebuilt_figures) {
        measurements.push(
            Measurement::value(
                &format!("rebuild_{name}"),
                &format!("projector rebuild: {name}"),
                count / seconds.max(1e-9),
                "events/s",
            )
            .noting(format!("{count:.0} events in {seconds:.1} s")),
        );
    }
    ensure!(
        measurements.len() > 1,
        "projector rebuild --all printed no figures: {stderr}"
    );
    measurements.push(Measurement::value(
        "rebuild_all_seconds",
        "projector rebuild --all, wall time",
        started.elapsed().as_secs_f64(),
        "s",
    ));
    Ok(measurements)
}

/// Name, events and seconds from the line `projector rebuild` prints as each read model
/// switches over: `rebuilt NAME: N events in S s (R events/s), live at position P`.
fn rebuilt_figures(line: &str) -> Option<(String, f64, f64)> {
    let (name, figures) = line.strip_prefix("rebuilt ")?.split_once(": ")?;
    let (count, rest) = figures.split_once(" events in ")?;
    let seconds = rest.split_whitespace().next()?.parse().ok()?;
    Some((name.to_owned(), count.parse().ok()?, seconds))
}

// --- hot aggregate -----------------------------------------------------------------------------

/// One restock at a time, alternating between the products (so that a machine that gets busier
/// or quieter meanwhile moves both the same way), `count` times each.
async fn restocks(
    client: &Client,
    products: &[Uuid],
    count: usize,
) -> anyhow::Result<Vec<Throughput>> {
    let mut latencies: Vec<Latencies> = products.iter().map(|_| Latencies::new()).collect();
    let started = Instant::now();
    for _ in 0..count {
        for (product, latencies) in products.iter().zip(&mut latencies) {
            let sent = Instant::now();
            client
                .command(
                    &format!("/products/{product}/restock"),
                    &json!({ "quantity": 1 }),
                )
                .await?;
            latencies.record(sent.elapsed());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(latencies
        .iter()
        .map(|latencies| {
            let summary = latencies.summary();
            Throughput {
                connections: 1,
                seconds,
                requests: summary.count,
                errors: 0,
                per_second: summary.count as f64 / seconds.max(1e-9),
                p50_ms: summary.p50_ms,
                p90_ms: summary.p90_ms,
                p99_ms: summary.p99_ms,
                max_ms: summary.max_ms,
                percentiles_ms: latencies.percentiles(),
            }
        })
        .collect())
}

async fn hot(context: &SuiteRun, snapshots: &str) -> anyhow::Result<Vec<Measurement>> {
    let hot_path = context.args.work_dir.join("hot-product.json");
    let hot_events: u64 = if context.args.quick { 10_000 } else { 100_000 };
    let product = if hot_path.exists() {
        let value: Value = serde_json::from_slice(&std::fs::read(&hot_path)?)?;
        value["id"].as_str().context("hot-product.json")?.parse()?
    } else {
        // One event short: the first command makes it `hot_events` and, with snapshots on,
        // crosses a multiple of SNAPSHOT_EVERY, so a snapshot is taken as in steady use.
        let (product, seeded) = event_seed::seed_hot_product(&context.pool, hot_events - 1).await?;
        println!(
            "hot: a product with {} events seeded in {:.1} s",
            seeded.events,
            seeded.elapsed.as_secs_f64()
        );
        std::fs::write(&hot_path, serde_json::to_vec(&json!({ "id": product }))?)?;
        product
    };
    let client = &context.client;
    let fresh = client
        .command(
            "/products",
            &json!({ "sku": format!("FRESH-{}", Uuid::new_v4().simple()), "name": "Fresh tea", "price_cents": 250, "stock": 0 }),
        )
        .await?
        .id;
    // Settle the writes of the seeding (and of the steps before) so they do not land on this
    // step's commits, then warm up both products (and take the hot one's snapshot when on).
    sqlx::query("ANALYZE events").execute(&context.pool).await?;
    sqlx::query("CHECKPOINT").execute(&context.pool).await?;
    restocks(client, &[product, fresh], 1).await?;
    let count = match (snapshots, context.args.quick) {
        ("off", true) => 3,
        ("off", false) => 10,
        (_, true) => 30,
        (_, false) => 200,
    };
    let mut results = restocks(client, &[product, fresh], count)
        .await?
        .into_iter();
    let (Some(hot_result), Some(fresh_result)) = (results.next(), results.next()) else {
        bail!("no figures for the restocks");
    };
    let fresh_id = format!("fresh_snapshots_{snapshots}");
    Ok(vec![
        Measurement {
            value: hot_result.p50_ms,
            ..Measurement::rate(
                &format!("hot_snapshots_{snapshots}"),
                &format!(
                    "restock a product with {}k events, snapshots {snapshots}",
                    hot_events / 1_000
                ),
                "ms",
                hot_result,
            )
        }
        .against(&fresh_id),
        Measurement {
            value: fresh_result.p50_ms,
            ..Measurement::rate(
                &fresh_id,
                &format!("restock a fresh product, snapshots {snapshots}"),
                "ms",
                fresh_result,
            )
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::rebuilt_figures;

    #[test]
    fn reads_the_figures_of_a_rebuilt_read_model() {
        let line =
            "rebuilt order_list: 1016821 events in 23.45 s (43361 events/s), live at position 42";
        assert_eq!(
            rebuilt_figures(line),
            Some(("order_list".to_owned(), 1_016_821.0, 23.45))
        );
        assert_eq!(rebuilt_figures("rebuild started"), None);
        assert_eq!(
            rebuilt_figures("rebuilt lookups: many events in a while"),
            None
        );
    }
}
