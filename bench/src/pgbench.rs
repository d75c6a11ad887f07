//! The commands' ceiling: pgbench inserting single rows of an event's shape (a copy of the
//! `events` table with its indexes and constraints, but none of its triggers) holding a real
//! `OrderPlaced` payload, one row per transaction, with prepared statements, at the same
//! concurrency as `POST /orders`. Nothing a command does can be cheaper than its one insert.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{latency::Latencies, measurement::Throughput};

const SETUP: [&str; 4] = [
    "DROP TABLE IF EXISTS bench_ceiling",
    "CREATE TABLE bench_ceiling (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)",
    "CREATE SEQUENCE IF NOT EXISTS bench_ceiling_position",
    "ALTER TABLE bench_ceiling
         ALTER position SET DEFAULT nextval('bench_ceiling_position'),
         ALTER transaction_id SET DEFAULT pg_current_xact_id()",
];

const SCRIPT: &str = "INSERT INTO bench_ceiling (stream_id, stream_type, stream_version, event_type, schema_version, data, metadata)
VALUES (gen_random_uuid(), 'order', 1, 'OrderPlaced', 1, :data::jsonb, :metadata::jsonb);
";

/// An `OrderPlaced` payload of a two-line order, as the command-api stores it.
fn order_placed_payload() -> (String, String) {
    let line = |price: i64| json!({ "product_id": Uuid::now_v7(), "quantity": 2, "unit_price_cents": price });
    let data = json!({
        "customer_id": Uuid::now_v7(),
        "lines": [line(120), line(135)],
        "total_cents": 510,
    });
    let metadata = json!({ "correlation_id": Uuid::new_v4().to_string() });
    (data.to_string(), metadata.to_string())
}

pub async fn run(
    pool: &PgPool,
    database_url: &str,
    work_dir: &Path,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    for statement in SETUP {
        sqlx::query(statement).execute(pool).await?;
    }
    let script = work_dir.join("pgbench-insert.sql");
    std::fs::write(&script, SCRIPT)?;
    let log_dir = work_dir.join("pgbench-log");
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)?;
    let (data, metadata) = order_placed_payload();
    let output = Command::new("pgbench")
        .arg("--no-vacuum")
        .args(["--protocol", "prepared"])
        .args(["--client", &connections.to_string()])
        .args(["--jobs", "2"])
        .args(["--time", &duration.as_secs().max(1).to_string()])
        .arg("--file")
        .arg(&script)
        .arg("--define")
        .arg(format!("data={data}"))
        .arg("--define")
        .arg(format!("metadata={metadata}"))
        .arg("--log")
        .arg(format!("--log-prefix={}", log_dir.join("tx").display()))
        .arg(database_url)
        .output()
        .context("running pgbench (install it: apt-get install -y postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "pgbench failed: {stdout}{stderr}");
    let Some(tps) = stdout.lines().find_map(|line| {
        line.strip_prefix("tps = ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<f64>().ok())
    }) else {
        bail!("pgbench printed no tps: {stdout}");
    };
    let failed = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("number of failed transactions: ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
        })
        .unwrap_or(0);

    // Each log line: client, transaction number, latency (µs), script, epoch s, µs.
    let mut latencies = Latencies::new();
    for entry in std::fs::read_dir(&log_dir)? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            if let Some(micros) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                latencies.record_micros(micros);
            }
        }
    }
    let summary = latencies.summary();
    sqlx::query("DROP TABLE bench_ceiling")
        .execute(pool)
        .await?;
    Ok(Throughput {
        connections,
        seconds: duration.as_secs_f64(),
        requests: summary.count,
        errors: failed,
        per_second: tps,
        p50_ms: summary.p50_ms,
        p90_ms: summary.p90_ms,
        p99_ms: summary.p99_ms,
        max_ms: summary.max_ms,
        percentiles_ms: latencies.percentiles(),
    })
}
