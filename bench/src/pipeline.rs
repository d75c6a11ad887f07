//! `bench pipeline`: orders end to end. Places orders (closed loop at C connections, or at a
//! fixed rate), then waits until the saga has decided every one, and reports how fast orders
//! were placed and decided, placed-to-decided latency, the largest saga lag seen on
//! `/projections`, and how long the backlog took to drain once the load stopped.
//!
//! Placed-to-decided latency comes from the event log itself: the `recorded_at` of each order's
//! `OrderPlaced` and of its decision (both stamped by PostgreSQL's clock), so nothing depends on
//! polling every order over HTTP.
//!
//! It also reports what the orders cost PostgreSQL (`budget`: transactions, statements, rows
//! and WAL bytes per decided order, from PostgreSQL's own counters), and, after the drain, the
//! same run's reference: pgbench inserting single event-shaped rows (`pgbench`), the ratios to
//! which are the figures that compare across runs.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::{
    api::{Catalog, Client, Endpoints},
    budget::{self, Budget},
    latency::{Latencies, Summary},
    measurement::Throughput,
    pgbench,
};

/// The events that decide an order (a cancel while pending counts: the saga is done with it).
const DECISIONS: [&str; 3] = ["OrderApproved", "OrderRejected", "OrderCancelled"];

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// The system's database, read to find when each order was placed and decided.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// How long to place orders.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Closed loop: this many orders in flight.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Place this many orders per second instead of a closed loop; each order is then read back
    /// with `min_position` (command-to-visible latency).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Customers the orders are spread over (each order reserves its customer's credit).
    #[arg(long, default_value_t = 20)]
    pub customers: usize,
    /// Products the orders are spread over (1 to 3 lines each, so at most 3 per order).
    #[arg(long, default_value_t = 50)]
    pub products: usize,
    /// Give up if the saga has not decided every order this long after the load stops.
    #[arg(long, default_value_t = 600)]
    pub drain_timeout: u64,
    /// Projector processes to stop (SIGSTOP) while the orders are placed and to continue
    /// (SIGCONT) when the load ends: the saga then meets the whole backlog at once, which
    /// measures its own pace whatever pace the command-api places orders at.
    #[arg(long = "pause-pid")]
    pub pause_pids: Vec<u32>,
    /// How long pgbench runs after the drain (the same run's reference); 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub reference_seconds: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct PipelineReport {
    pub mode: String,
    pub seconds: u64,
    pub orders_placed: usize,
    pub failed_commands: usize,
    pub placed_per_second: f64,
    pub decided_per_second: f64,
    pub placed_to_decided: Summary,
    pub max_saga_lag_events: i64,
    pub drain_seconds: f64,
    /// `--pause-pid` only: orders decided per second from the projector's resume to the last
    /// decision (the saga working through a backlog).
    pub backlog_decided_per_second: Option<f64>,
    pub command: Summary,
    /// `--rate` only: from sending the command to the answer of a `min_position` read of it.
    pub command_to_visible: Option<Summary>,
    /// What the orders cost PostgreSQL, from the load's start to the last decision.
    pub budget: Budget,
    /// pgbench inserting one event-shaped row per transaction at 32 connections, after the
    /// drain (`None` with `--reference-seconds 0`).
    pub reference: Option<Throughput>,
    pub ratios: Ratios,
}

/// The run's figures against each other and against its reference.
#[derive(Debug, Serialize)]
pub struct Ratios {
    /// Decided per second over placed per second: at 1 the backlog does not grow.
    pub decided_to_placed: f64,
    /// Decided per second over a tenth of pgbench's rows per second.
    pub decided_to_tenth_of_pgbench: Option<f64>,
    /// Placed per second (`POST /orders` with the projector running) over pgbench's rows per
    /// second.
    pub placed_to_pgbench: Option<f64>,
}

/// What one placement gave.
struct Placed {
    order: Uuid,
    command: Duration,
    visible: Option<Duration>,
}

pub async fn run(args: PipelineArgs) -> anyhow::Result<PipelineReport> {
    let client = Client::new(args.endpoints.clone())?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await
        .context("connecting to DATABASE_URL")?;
    let catalog = Arc::new(
        client
            .register_catalog(args.customers.max(1), args.products.max(3))
            .await?,
    );

    let stop_monitor = Arc::new(AtomicBool::new(false));
    let max_lag = Arc::new(AtomicI64::new(0));
    let monitor = tokio::spawn(watch_saga_lag(
        pool.clone(),
        Arc::clone(&stop_monitor),
        Arc::clone(&max_lag),
    ));

    let mut mode = match args.rate {
        Some(rate) => format!("fixed rate {rate}/s"),
        None => format!("closed loop, {} connections", args.connections),
    };
    if !args.pause_pids.is_empty() {
        mode.push_str(", projector paused during the load");
    }
    let (counters_before, statements_counted) = budget::start(&pool).await?;
    println!("pipeline: placing orders for {} s ({mode})", args.seconds);
    let load_for = Duration::from_secs(args.seconds);
    signal(&args.pause_pids, "STOP")?;
    let started = Instant::now();
    let (placed, failed) = match args.rate {
        Some(rate) => fixed_rate(&client, &catalog, rate, load_for).await,
        None => closed_loop(&client, &catalog, args.connections, load_for).await,
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let load_stopped = Instant::now();
    // On PostgreSQL's clock, like the events' recorded_at.
    let resumed_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&pool).await?;
    signal(&args.pause_pids, "CONT")?;
    let orders: Vec<Uuid> = placed.iter().map(|p| p.order).collect();
    println!(
        "pipeline: {} orders placed in {load_seconds:.1} s ({failed} commands failed); waiting for the saga",
        orders.len()
    );

    let drain_deadline = load_stopped + Duration::from_secs(args.drain_timeout);
    loop {
        // Cheap until the saga has caught up with the log; only then are the orders counted
        // (a count over tens of thousands of ids, every 200 ms, was a load of its own).
        if saga_caught_up(&pool).await? {
            let decided = decided_count(&pool, &orders).await?;
            if decided >= orders.len() {
                break;
            }
        }
        if Instant::now() > drain_deadline {
            stop_monitor.store(true, Ordering::Relaxed);
            let decided = decided_count(&pool, &orders).await?;
            bail!(
                "the saga decided only {decided} of {} orders within {} s of the load stopping",
                orders.len(),
                args.drain_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_seconds = load_stopped.elapsed().as_secs_f64();
    stop_monitor.store(true, Ordering::Relaxed);
    monitor.await?;
    // Backends publish their counts when idle, at most once a second (see `budget::read`).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let counters_after = budget::read(&pool, statements_counted).await?;
    let budget = budget::finish(&pool, counters_before, counters_after, orders.len()).await?;
    let reference = if args.reference_seconds > 0 {
        println!(
            "pipeline: the reference, pgbench inserting single rows for {} s",
            args.reference_seconds
        );
        let work_dir = std::env::temp_dir().join(format!("cqrs-pipeline-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&work_dir)?;
        let measured = pgbench::run(
            &pool,
            &args.database_url,
            &work_dir,
            32,
            Duration::from_secs(args.reference_seconds),
        )
        .await;
        let _ = std::fs::remove_dir_all(&work_dir);
        Some(measured?)
    } else {
        None
    };

    let timings = decision_timings(&pool, &orders).await?;
    let mut command = Latencies::new();
    let mut visible = Latencies::new();
    for p in &placed {
        command.record(p.command);
        if let Some(v) = p.visible {
            visible.record(v);
        }
    }
    let placed_per_second = orders.len() as f64 / load_seconds;
    let decided_per_second = orders.len() as f64 / timings.first_to_last.as_secs_f64().max(1e-3);
    let ratios = Ratios {
        decided_to_placed: decided_per_second / placed_per_second.max(1e-9),
        decided_to_tenth_of_pgbench: reference
            .as_ref()
            .map(|r| decided_per_second / (r.per_second / 10.0).max(1e-9)),
        placed_to_pgbench: reference
            .as_ref()
            .map(|r| placed_per_second / r.per_second.max(1e-9)),
    };
    let report = PipelineReport {
        mode,
        seconds: args.seconds,
        orders_placed: orders.len(),
        failed_commands: failed,
        placed_per_second,
        decided_per_second,
        placed_to_decided: timings.latencies.summary(),
        max_saga_lag_events: max_lag.load(Ordering::Relaxed),
        drain_seconds,
        backlog_decided_per_second: match (args.pause_pids.is_empty(), timings.last_decision) {
            (false, Some(last)) => Some(
                orders.len() as f64
                    / (last - resumed_at)
                        .to_std()
                        .unwrap_or_default()
                        .as_secs_f64()
                        .max(1e-3),
            ),
            _ => None,
        },
        command: command.summary(),
        command_to_visible: args.rate.map(|_| visible.summary()),
        budget,
        reference,
        ratios,
    };
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

fn print_report(report: &PipelineReport) {
    println!("pipeline ({}):", report.mode);
    println!(
        "  orders placed/s        {:>9.0}   ({} orders, {} failed commands)",
        report.placed_per_second, report.orders_placed, report.failed_commands
    );
    println!(
        "  orders decided/s       {:>9.0}   (placed orders / first placement to last decision)",
        report.decided_per_second
    );
    println!(
        "  placed-to-decided      {}",
        report.placed_to_decided.line()
    );
    println!("  POST /orders           {}", report.command.line());
    if let Some(visible) = &report.command_to_visible {
        println!("  command-to-visible     {}", visible.line());
    }
    println!(
        "  largest saga lag       {:>9} events",
        report.max_saga_lag_events
    );
    println!("  drain after the load   {:>9.2} s", report.drain_seconds);
    if let Some(rate) = report.backlog_decided_per_second {
        println!(
            "  saga over the backlog  {rate:>9.0}   decided/s (from the projector's resume to the last decision)"
        );
    }
    if let Some(reference) = &report.reference {
        println!(
            "  reference: pgbench     {:>9.0}   single-row INSERTs/s at 32 connections (p99 {:.2} ms)",
            reference.per_second, reference.p99_ms
        );
    }
    let ratios = &report.ratios;
    println!("  decided / placed       {:>9.2}", ratios.decided_to_placed);
    if let (Some(tenth), Some(placed)) =
        (ratios.decided_to_tenth_of_pgbench, ratios.placed_to_pgbench)
    {
        println!("  decided / (pgbench/10) {tenth:>9.2}");
        println!("  placed / pgbench       {placed:>9.2}");
    }
    for line in report.budget.lines() {
        println!("{line}");
    }
}

/// Sends `kill -SIGNAL` to each process (the projectors `--pause-pid` names).
fn signal(pids: &[u32], signal: &str) -> anyhow::Result<()> {
    for pid in pids {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    }
    Ok(())
}

/// C workers, each placing its next order as soon as the previous one is answered.
async fn closed_loop(
    client: &Client,
    catalog: &Arc<Catalog>,
    connections: usize,
    load_for: Duration,
) -> (Vec<Placed>, usize) {
    let deadline = Instant::now() + load_for;
    let counter = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let (client, catalog, counter) =
            (client.clone(), Arc::clone(catalog), Arc::clone(&counter));
        workers.spawn(async move {
            let (mut placed, mut failed) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match place(&client, &catalog, n, false).await {
                    Ok(p) => placed.push(p),
                    Err(error) => {
                        failed += 1;
                        if failed == 1 {
                            eprintln!("pipeline: a command failed: {error:#}");
                        }
                    }
                }
            }
            (placed, failed)
        });
    }
    collect(workers).await
}

/// One order every 1/rate s, each in its own task, whatever the answers' latency.
async fn fixed_rate(
    client: &Client,
    catalog: &Arc<Catalog>,
    rate: u32,
    load_for: Duration,
) -> (Vec<Placed>, usize) {
    let deadline = Instant::now() + load_for;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut tasks = JoinSet::new();
    let mut n = 0;
    let reported = Arc::new(AtomicBool::new(false));
    while Instant::now() < deadline {
        ticks.tick().await;
        let (client, catalog, reported) =
            (client.clone(), Arc::clone(catalog), Arc::clone(&reported));
        tasks.spawn(async move {
            match place(&client, &catalog, n, true).await {
                Ok(p) => (vec![p], 0),
                Err(error) => {
                    // The first failure says why; the count says how many.
                    if !reported.swap(true, Ordering::Relaxed) {
                        eprintln!("pipeline: a command failed: {error:#}");
                    }
                    (Vec::new(), 1)
                }
            }
        });
        n += 1;
    }
    collect(tasks).await
}

async fn collect(mut tasks: JoinSet<(Vec<Placed>, usize)>) -> (Vec<Placed>, usize) {
    let (mut placed, mut failed) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok((mut p, f)) => {
                placed.append(&mut p);
                failed += f;
            }
            Err(_) => failed += 1,
        }
    }
    (placed, failed)
}

async fn place(
    client: &Client,
    catalog: &Catalog,
    n: usize,
    read_back: bool,
) -> anyhow::Result<Placed> {
    let sent = Instant::now();
    let accepted = client.command("/orders", &catalog.order_body(n)).await?;
    let command = sent.elapsed();
    let visible = if read_back {
        client
            .read(&format!(
                "/orders/{}?min_position={}",
                accepted.id, accepted.position
            ))
            .await?;
        Some(sent.elapsed())
    } else {
        None
    };
    Ok(Placed {
        order: accepted.id,
        command,
        visible,
    })
}

/// Until told to stop, keeps the largest saga lag: the events after the saga partition furthest
/// behind (what `/projections` shows as `lag_events`), every 2 s: a count reads every event of
/// the backlog, and more often it would take a share of the cores it measures.
async fn watch_saga_lag(pool: PgPool, stop: Arc<AtomicBool>, max_lag: Arc<AtomicI64>) {
    let mut warned = false;
    while !stop.load(Ordering::Relaxed) {
        let lag: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE position >
                 (SELECT coalesce(min(position), 0) FROM projector.checkpoints WHERE name = ANY($1))",
        )
        .bind(&event_store::subscriptions::SAGA_SUBSCRIPTIONS[..])
        .fetch_one(&pool)
        .await;
        match lag {
            Ok(lag) => {
                max_lag.fetch_max(lag, Ordering::Relaxed);
            }
            Err(error) if !warned => {
                warned = true;
                eprintln!(
                    "pipeline: cannot read the saga's lag (it may be under-reported): {error}"
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// True once every saga partition has passed the newest event.
async fn saga_caught_up(pool: &PgPool) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT (SELECT coalesce(min(position), 0) FROM projector.checkpoints WHERE name = ANY($1))
                >= (SELECT coalesce(max(position), 0) FROM events)",
    )
    .bind(&event_store::subscriptions::SAGA_SUBSCRIPTIONS[..])
    .fetch_one(pool)
    .await?)
}

async fn decided_count(pool: &PgPool, orders: &[Uuid]) -> anyhow::Result<usize> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT stream_id) FROM events
         WHERE stream_id = ANY($1) AND event_type = ANY($2)",
    )
    .bind(orders)
    .bind(&DECISIONS[..])
    .fetch_one(pool)
    .await?;
    Ok(usize::try_from(count).unwrap_or(0))
}

struct DecisionTimings {
    latencies: Latencies,
    /// From the first order's placement to the last order's decision.
    first_to_last: Duration,
    last_decision: Option<DateTime<Utc>>,
}

async fn decision_timings(pool: &PgPool, orders: &[Uuid]) -> anyhow::Result<DecisionTimings> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT placed.recorded_at, decision.decided_at
         FROM events placed
         CROSS JOIN LATERAL (
             SELECT min(recorded_at) AS decided_at FROM events
             WHERE stream_id = placed.stream_id AND event_type = ANY($2)
         ) decision
         WHERE placed.stream_id = ANY($1) AND placed.event_type = 'OrderPlaced'
           AND decision.decided_at IS NOT NULL",
    )
    .bind(orders)
    .bind(&DECISIONS[..])
    .fetch_all(pool)
    .await?;
    let mut latencies = Latencies::new();
    let (mut first, mut last) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
    for (placed, decided) in rows {
        let micros = (decided - placed).num_microseconds().unwrap_or(0);
        latencies.record_micros(u64::try_from(micros).unwrap_or(0));
        first = Some(first.map_or(placed, |f| f.min(placed)));
        last = Some(last.map_or(decided, |l| l.max(decided)));
    }
    let first_to_last = match (first, last) {
        (Some(first), Some(last)) => (last - first).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    Ok(DecisionTimings {
        latencies,
        first_to_last,
        last_decision: last,
    })
}
