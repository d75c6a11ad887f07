//! The system's HTTP interface as the benchmarks use it: commands with the bearer token, reads
//! from the query-api, and the catalog (customers and products) every scenario orders from.

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// Where the system answers, from the environment `scripts/bench` sets (or `scripts/run`'s).
#[derive(Debug, Clone, clap::Args)]
pub struct Endpoints {
    #[arg(long, env = "COMMAND_URL", default_value = "http://127.0.0.1:8080")]
    pub command_url: String,
    #[arg(long, env = "QUERY_URL", default_value = "http://127.0.0.1:8081")]
    pub query_url: String,
    #[arg(long, env = "COMMAND_API_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
}

/// What a command answered: the stream's id and the position of its last event.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Accepted {
    pub id: Uuid,
    pub position: i64,
}

/// Customers with credit and products with stock enough for any benchmark's orders, so that
/// every order is approved and the saga does the same work for each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub customers: Vec<Uuid>,
    pub products: Vec<Uuid>,
    /// The highest position the registrations reached.
    pub position: i64,
}

impl Client {
    pub fn new(endpoints: Endpoints) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()?;
        Ok(Self { http, endpoints })
    }

    pub async fn command(&self, path: &str, body: &Value) -> anyhow::Result<Accepted> {
        let response = self
            .http
            .post(format!("{}{path}", self.endpoints.command_url))
            .bearer_auth(&self.endpoints.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).with_context(|| format!("POST {path} answered {text}"))
    }

    pub async fn read(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        let text = String::from_utf8_lossy(&body);
        ensure!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_slice(&body).with_context(|| format!("GET {path} answered {text}"))
    }

    /// The raw body of a read, as the query-api sends it.
    pub async fn read_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let (status, body) = self.get(path).await?;
        ensure!(status.is_success(), "GET {path}: {status}");
        Ok(body)
    }

    /// A GET of the query-api: its status and body, whatever the status.
    async fn get(&self, path: &str) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let response = self
            .http
            .get(format!("{}{path}", self.endpoints.query_url))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        Ok((status, response.bytes().await?.to_vec()))
    }

    /// Registers `customers` customers and `products` products (SKUs unique to this run).
    pub async fn register_catalog(
        &self,
        customers: usize,
        products: usize,
    ) -> anyhow::Result<Catalog> {
        let run = &Uuid::new_v4().simple().to_string()[..8];
        let mut catalog = Catalog {
            customers: Vec::with_capacity(customers),
            products: Vec::with_capacity(products),
            position: 0,
        };
        for n in 0..customers {
            let body = json!({ "name": format!("Bench customer {n}"), "credit_limit_cents": 1_000_000_000_000_i64 });
            let accepted = self.command("/customers", &body).await?;
            catalog.customers.push(accepted.id);
            catalog.position = catalog.position.max(accepted.position);
        }
        for n in 0..products {
            let body = json!({
                "sku": format!("B{run}-{n}"),
                "name": format!("Bench tea {n}"),
                "price_cents": 100 + n,
                "stock": 1_000_000_000,
            });
            let accepted = self.command("/products", &body).await?;
            catalog.products.push(accepted.id);
            catalog.position = catalog.position.max(accepted.position);
        }
        Ok(catalog)
    }
}

impl Catalog {
    /// The body of the `n`th order: 1 to 3 lines of distinct products.
    pub fn order_body(&self, n: usize) -> Value {
        let lines: Vec<Value> = (0..1 + n % 3)
            .map(|k| {
                json!({
                    "product_id": self.products[(n * 7 + k) % self.products.len()],
                    "quantity": 1 + k,
                })
            })
            .collect();
        json!({ "customer_id": self.customers[n % self.customers.len()], "lines": lines })
    }
}
