//! The contract's invariants once the system is quiet (docs/interface.md, "When the system is
//! quiet"), checked exactly: against the event log (the truth), the read models the query-api
//! answers, the aggregates folded from their events, and a rebuild of every read model. Used by
//! the in-process tests (`TestSystem`) and by the fault suite against the real binaries alike,
//! so "the invariants hold" means the same thing everywhere.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use domain::{Aggregate, customer::Customer, product::Product};
use read_models::RedisKeys;
use redis::aio::ConnectionManager;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{ReadModelSnapshot, eventually};

/// What the checks read: the database (as its owner), Redis, and the query-api.
pub struct SystemUnderTest<'a> {
    pub pool: &'a PgPool,
    pub redis: &'a ConnectionManager,
    pub keys: &'a RedisKeys,
    pub client: &'a reqwest::Client,
    pub query_base: &'a str,
}

/// What a quiet system held when its invariants were checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuietState {
    pub events: i64,
    /// Orders by status.
    pub orders: BTreeMap<String, usize>,
    pub products: usize,
    pub customers: usize,
}

impl QuietState {
    pub fn orders_total(&self) -> usize {
        self.orders.values().sum()
    }
}

impl SystemUnderTest<'_> {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        match self
            .client
            .get(format!("{}{path}", self.query_base))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
        }
    }

    /// Waits (up to `within`) until every subscription has applied every event and the Redis
    /// read models exist; panics, showing `/projections`, if they do not.
    pub async fn wait_until_caught_up(&self, within: Duration) {
        let caught_up = eventually(within, || async {
            let mut redis = self.redis.clone();
            let redis_ready: bool = redis::cmd("EXISTS")
                .arg(self.keys.live_generation())
                .query_async(&mut redis)
                .await
                .unwrap_or(false);
            let (status, body) = self.get("/projections").await;
            redis_ready
                && status == StatusCode::OK
                && body["items"].as_array().is_some_and(|items| {
                    !items.is_empty() && items.iter().all(|item| item["lag_events"] == 0)
                })
        })
        .await;
        assert!(
            caught_up,
            "the projector did not catch up within {within:?}: {}",
            self.get("/projections").await.1
        );
    }

    /// Waits for the system to be quiet, then checks every invariant; panics naming the first
    /// that does not hold. The read models are rebuilt at the end (and must come out equal).
    pub async fn assert_invariants(&self) -> QuietState {
        self.wait_until_caught_up(Duration::from_secs(60)).await;
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(self.pool)
            .await
            .expect("count events");

        // Orders: one read-model row per OrderPlaced, none pending.
        let orders: Vec<Value> = sqlx::query_scalar("SELECT doc FROM read_model.orders")
            .fetch_all(self.pool)
            .await
            .expect("orders");
        let placed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE stream_type = 'order' AND event_type = 'OrderPlaced'",
        )
        .fetch_one(self.pool)
        .await
        .expect("count placed orders");
        assert_eq!(
            orders.len() as i64,
            placed,
            "one listed order per OrderPlaced"
        );
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        let mut reserved_by_product: HashMap<Uuid, i64> = HashMap::new();
        let mut shipped_by_product: HashMap<Uuid, i64> = HashMap::new();
        let mut credit_by_customer: HashMap<Uuid, i64> = HashMap::new();
        for order in &orders {
            let status = order["status"].as_str().expect("status");
            *by_status.entry(status.to_owned()).or_default() += 1;
            assert_ne!(status, "pending", "no order stays pending: {order}");
            if matches!(status, "approved" | "shipped") {
                *credit_by_customer
                    .entry(uuid(&order["customer_id"]))
                    .or_default() += order["total_cents"].as_i64().expect("total");
            }
            for line in order["lines"].as_array().expect("lines") {
                let quantity = line["quantity"].as_i64().expect("quantity");
                match status {
                    "approved" => {
                        *reserved_by_product
                            .entry(uuid(&line["product_id"]))
                            .or_default() += quantity
                    }
                    "shipped" => {
                        *shipped_by_product
                            .entry(uuid(&line["product_id"]))
                            .or_default() += quantity
                    }
                    _ => {}
                }
            }
        }

        // Products: stock from the log (added + restocked - shipped), reservations from the
        // approved orders; the document and the aggregate agree.
        let stock: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT stream_id,
                    sum((data ->> 'stock')::bigint) FILTER (WHERE event_type = 'ProductAdded')::bigint,
                    coalesce(sum((data ->> 'quantity')::bigint) FILTER (WHERE event_type = 'ProductRestocked'), 0)::bigint
             FROM events WHERE stream_type = 'product' GROUP BY stream_id",
        )
        .fetch_all(self.pool)
        .await
        .expect("product stock from the log");
        let mut conn = self.pool.acquire().await.expect("connection");
        for (product, added, restocked) in &stock {
            let reserved = reserved_by_product.get(product).copied().unwrap_or(0);
            let on_hand = added + restocked - shipped_by_product.get(product).copied().unwrap_or(0);
            let (status, doc) = self.get(&format!("/products/{product}")).await;
            assert_eq!(status, StatusCode::OK, "product {product}: {doc}");
            assert_eq!(doc["stock_reserved"], reserved, "reserved stock: {doc}");
            assert_eq!(doc["stock_on_hand"], on_hand, "stock on hand: {doc}");
            assert_eq!(doc["stock_available"], on_hand - reserved, "{doc}");
            assert!(on_hand - reserved >= 0, "stock available below 0: {doc}");
            let aggregate = event_store::load_aggregate::<Product>(&mut conn, *product, false)
                .await
                .expect("load product");
            assert_eq!(
                (
                    aggregate.state.stock_reserved(),
                    aggregate.state.stock_on_hand
                ),
                (reserved, on_hand),
                "the product aggregate {product}"
            );
        }

        // Customers: credit held by approved and shipped orders, never above the limit.
        let customers: Vec<Uuid> = sqlx::query_scalar(
            "SELECT stream_id FROM events WHERE stream_type = 'customer' AND event_type = 'CustomerRegistered'",
        )
        .fetch_all(self.pool)
        .await
        .expect("customers");
        for customer in &customers {
            let reserved = credit_by_customer.get(customer).copied().unwrap_or(0);
            let (status, doc) = self.get(&format!("/customers/{customer}")).await;
            assert_eq!(status, StatusCode::OK, "customer {customer}: {doc}");
            assert_eq!(
                doc["credit_reserved_cents"], reserved,
                "reserved credit: {doc}"
            );
            assert!(
                reserved <= doc["credit_limit_cents"].as_i64().expect("limit"),
                "credit above the limit: {doc}"
            );
            let aggregate = event_store::load_aggregate::<Customer>(&mut conn, *customer, false)
                .await
                .expect("load customer");
            assert!(aggregate.state.exists());
            assert_eq!(
                aggregate.state.credit_reserved_cents(),
                reserved,
                "the customer aggregate {customer}"
            );
        }
        drop(conn);

        // Every read model equals a rebuild of it from the log.
        let incremental = ReadModelSnapshot::take(self.pool, self.redis, self.keys).await;
        projector::rebuild::Rebuilder {
            pool: self.pool.clone(),
            redis: self.redis.clone(),
            keys: self.keys.clone(),
        }
        .rebuild(&read_models::names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
        let rebuilt = ReadModelSnapshot::take(self.pool, self.redis, self.keys).await;
        if let Some(difference) = incremental.first_difference(&rebuilt) {
            panic!("a read model differs from its rebuild: {difference}");
        }

        QuietState {
            events,
            orders: by_status,
            products: stock.len(),
            customers: customers.len(),
        }
    }
}

fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a UUID: {value}"))
}
