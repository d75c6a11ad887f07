//! `TestApp`: the command-api running against a test database, with methods that let tests
//! read as stories.

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

pub const TOKEN: &str = "test-token";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool, 100).await
    }

    pub async fn spawn_with(pool: PgPool, snapshot_every: i64) -> Self {
        let app = command_api::startup::build_with_pool(
            pool.clone(),
            "127.0.0.1:0",
            Some(TOKEN.to_owned()),
            snapshot_every,
        )
        .expect("app builds");
        let base = format!("http://{}", app.address());
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            client: reqwest::Client::new(),
            pool,
        }
    }

    /// A POST carrying the bearer token.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    pub async fn register_customer(&self, credit_limit_cents: i64) -> Uuid {
        let response = self
            .post("/customers")
            .json(&json!({ "name": "Ada", "credit_limit_cents": credit_limit_cents }))
            .send()
            .await
            .expect("request sent");
        id_of(created(response, StatusCode::CREATED).await)
    }

    pub async fn add_product(&self, sku: &str, price_cents: i64, stock: i64) -> Uuid {
        let response = self
            .post("/products")
            .json(&json!({ "sku": sku, "name": format!("Product {sku}"), "price_cents": price_cents, "stock": stock }))
            .send()
            .await
            .expect("request sent");
        id_of(created(response, StatusCode::CREATED).await)
    }

    pub async fn place_order(&self, customer_id: Uuid, lines: &[(Uuid, i64)]) -> Response {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(product_id, quantity)| json!({ "product_id": product_id, "quantity": quantity }))
            .collect();
        self.post("/orders")
            .json(&json!({ "customer_id": customer_id, "lines": lines }))
            .send()
            .await
            .expect("request sent")
    }

    /// Places an order, asserts it was accepted, and returns its id.
    pub async fn placed_order(&self, customer_id: Uuid, lines: &[(Uuid, i64)]) -> Uuid {
        id_of(
            created(
                self.place_order(customer_id, lines).await,
                StatusCode::ACCEPTED,
            )
            .await,
        )
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// Writes the order's saga outcome straight into the log, as the projector's saga would.
    pub async fn approve_order(&self, order_id: Uuid) {
        use shared::{
            domain::{
                Aggregate,
                order::{Order, OrderCommand},
            },
            event_store::{CommandOptions, execute_in_tx},
        };
        let mut tx = self.pool.begin().await.expect("begin");
        execute_in_tx::<Order, _>(&mut tx, order_id, &CommandOptions::default(), |order| {
            order.decide(OrderCommand::Approve)
        })
        .await
        .expect("approved");
        tx.commit().await.expect("commit");
    }
}

/// Asserts the status and returns the JSON body.
pub async fn created(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, expected, "unexpected answer: {body}");
    body
}

pub fn id_of(body: Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an id in the body")
}

/// Asserts a problem+json answer with this status and returns its body.
pub async fn problem(response: Response, expected: StatusCode) -> Value {
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
