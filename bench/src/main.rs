//! `bench`: drives a running system (see scripts/run) over HTTP and reports throughput and
//! latency percentiles.
//!
//! - `bench orders`: registers customers and products, then places orders with N in flight;
//!   each order is read back through the query-api with `min_position` (read-your-writes), and
//!   at the end every order must be visible and decided by the saga.
//! - `bench reads`: hammers the read endpoints (lookups from Redis, lists and search from
//!   PostgreSQL) with N in flight for a fixed time.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "Benchmarks a running system over HTTP")]
struct Cli {
    #[arg(long, env = "COMMAND_URL", default_value = "http://127.0.0.1:8080")]
    command_url: String,
    #[arg(long, env = "QUERY_URL", default_value = "http://127.0.0.1:8081")]
    query_url: String,
    #[arg(long, env = "COMMAND_API_TOKEN", hide_env_values = true)]
    token: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Place orders and read each back with min_position.
    Orders {
        #[arg(long, default_value_t = 2_000)]
        orders: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Read endpoints for a fixed time.
    Reads {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

struct Client {
    http: reqwest::Client,
    command_url: String,
    query_url: String,
    token: String,
}

impl Client {
    async fn command(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.command_url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    async fn read(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.query_url))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }
}

fn id(body: &Value) -> anyhow::Result<String> {
    body["id"]
        .as_str()
        .map(str::to_owned)
        .context("no id in the answer")
}

/// Latencies in milliseconds at the usual percentiles.
fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    let at = |p: f64| {
        let index =
            ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{name:<28} {:>7} requests in {:>6.2} s = {:>8.0} req/s   p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
    );
}

async fn setup(client: &Client, run: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut customers = Vec::new();
    for n in 0..20 {
        let body =
            json!({ "name": format!("Bench customer {n}"), "credit_limit_cents": 1_000_000_000 });
        customers.push(id(&client.command("/customers", body).await?)?);
    }
    let mut products = Vec::new();
    for n in 0..50 {
        let body = json!({ "sku": format!("B{run}-{n}"), "name": format!("Bench tea {n}"), "price_cents": 100 + n, "stock": 1_000_000 });
        products.push(id(&client.command("/products", body).await?)?);
    }
    Ok((customers, products))
}

async fn orders(client: &Client, count: usize, concurrency: usize) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (customers, products) = setup(client, &run).await?;
    println!("placing {count} orders, {concurrency} in flight; each read back with min_position");
    let started = Instant::now();
    let results: Vec<anyhow::Result<(String, Duration, Duration)>> = stream::iter(0..count)
        .map(|n| {
            let (customers, products) = (&customers, &products);
            async move {
                let lines: Vec<Value> = (0..1 + n % 3)
                    .map(|k| json!({ "product_id": products[(n * 7 + k) % products.len()], "quantity": 1 + k }))
                    .collect();
                let body = json!({ "customer_id": customers[n % customers.len()], "lines": lines });
                let sent = Instant::now();
                let placed = client.command("/orders", body).await?;
                let write = sent.elapsed();
                let (order, position) = (id(&placed)?, placed["position"].as_i64().context("position")?);
                let read_sent = Instant::now();
                client.read(&format!("/orders/{order}?min_position={position}")).await?;
                Ok((order, write, read_sent.elapsed()))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut order_ids = Vec::with_capacity(count);
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for result in results {
        let (order, write, read) = result?;
        order_ids.push(order);
        writes.push(write);
        reads.push(read);
    }
    report("POST /orders", writes, elapsed);
    report("GET /orders/{id}?min_position", reads, elapsed);

    // Every order visible, and decided by the saga once the system is quiet.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let projections = client.read("/projections").await?;
        let items = projections["items"].as_array().context("items")?;
        if items.iter().all(|item| item["lag_events"] == 0) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the projector did not catch up: {projections}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut pending = 0;
    for order in &order_ids {
        let body = client.read(&format!("/orders/{order}")).await?;
        if body["status"] == "pending" {
            pending += 1;
        }
    }
    ensure!(pending == 0, "{pending} orders still pending");
    println!(
        "all {count} orders visible and decided by the saga {:.2} s after the first was placed",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn reads(client: &Client, seconds: u64, concurrency: usize) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (customers, products) = setup(client, &run).await?;
    let mut last_position = 0;
    let mut order_ids = Vec::new();
    for n in 0..200 {
        let lines = json!([{ "product_id": products[n % products.len()], "quantity": 1 }]);
        let placed = client
            .command(
                "/orders",
                json!({ "customer_id": customers[n % customers.len()], "lines": lines }),
            )
            .await?;
        order_ids.push(id(&placed)?);
        last_position = placed["position"].as_i64().unwrap_or(last_position);
    }
    client
        .read(&format!("/orders?limit=1&min_position={last_position}"))
        .await?;
    let paths: Vec<(&str, Vec<String>)> = vec![
        (
            "GET /orders/{id} (Redis)",
            order_ids.iter().map(|o| format!("/orders/{o}")).collect(),
        ),
        (
            "GET /products/{id} (Redis)",
            products.iter().map(|p| format!("/products/{p}")).collect(),
        ),
        (
            "GET /customers/{id} (Redis)",
            customers
                .iter()
                .map(|c| format!("/customers/{c}"))
                .collect(),
        ),
        (
            "GET /orders?customer_id (PG)",
            customers
                .iter()
                .map(|c| format!("/orders?customer_id={c}&limit=20"))
                .collect(),
        ),
        (
            "GET /products?q= (PG)",
            (0..50)
                .map(|n| format!("/products?q=tea%20{n}&limit=20"))
                .collect(),
        ),
        (
            "GET /orders/{id}/history (PG)",
            order_ids
                .iter()
                .map(|o| format!("/orders/{o}/history"))
                .collect(),
        ),
    ];
    for (name, targets) in paths {
        let started = Instant::now();
        let stop_at = started + Duration::from_secs(seconds);
        let latencies: Vec<Vec<Duration>> = stream::iter(0..concurrency)
            .map(|worker| {
                let targets = &targets;
                async move {
                    let mut latencies = Vec::new();
                    let mut n = worker;
                    while Instant::now() < stop_at {
                        let sent = Instant::now();
                        client.read(&targets[n % targets.len()]).await?;
                        latencies.push(sent.elapsed());
                        n += concurrency;
                    }
                    Ok::<_, anyhow::Error>(latencies)
                }
            })
            .buffer_unordered(concurrency)
            .map(|result| result.unwrap_or_default())
            .collect()
            .await;
        report(
            name,
            latencies.into_iter().flatten().collect(),
            started.elapsed(),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let client = Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?,
        command_url: cli.command_url,
        query_url: cli.query_url,
        token: cli.token,
    };
    match cli.scenario {
        Scenario::Orders {
            orders: count,
            concurrency,
        } => orders(&client, count, concurrency).await,
        Scenario::Reads {
            seconds,
            concurrency,
        } => reads(&client, seconds, concurrency).await,
    }
}
