//! A saga-heavy workload and the contract's invariants, for the tests that crash, scale or
//! repartition the projector under load: customers with tight credit, products with scarce
//! stock, concurrent multi-line orders with cancels and restocks racing the saga. Once the
//! system is quiet, `assert_invariants` checks exactly what the contract promises, against the
//! read models and the aggregates, and that every read model equals a rebuild.

use std::collections::HashMap;

use domain::{Aggregate, customer::Customer, product::Product};
use serde_json::Value;
use uuid::Uuid;

use crate::TestSystem;

pub struct Workload {
    pub customers: Vec<Uuid>,
    pub products: Vec<Uuid>,
    initial_stock: HashMap<Uuid, i64>,
}

impl Workload {
    /// Registers four customers and adds five products.
    pub async fn set_up(system: &TestSystem) -> Self {
        let mut customers = Vec::new();
        for limit in [3_000, 5_000, 8_000, 20_000] {
            customers.push(system.register_customer(limit).await.0);
        }
        let mut products = Vec::new();
        let mut initial_stock = HashMap::new();
        for (index, (price, stock)) in [(100, 40), (250, 25), (400, 15), (90, 60), (1_000, 8)]
            .into_iter()
            .enumerate()
        {
            let (id, _) = system
                .add_product(
                    &format!("P{index}"),
                    &format!("Product {index}"),
                    price,
                    stock,
                )
                .await;
            products.push(id);
            initial_stock.insert(id, stock);
        }
        Self {
            customers,
            products,
            initial_stock,
        }
    }

    /// `clients` clients each place `per_client` orders of one to three lines at once; every
    /// fifth is cancelled right away (racing the saga), every seventeenth restocks a product.
    /// `round` varies the orders from one call to the next.
    pub async fn place_orders(
        &self,
        system: &TestSystem,
        clients: usize,
        per_client: usize,
        round: usize,
    ) {
        futures_util::future::join_all((0..clients).map(|client| async move {
            for n in 0..per_client {
                let seed = client * 7919 + n * 104_729 + round * 15_485_863;
                let customer = self.customers[seed % self.customers.len()];
                let first = seed % self.products.len();
                let lines: Vec<(Uuid, i64)> = (0..1 + seed % 3)
                    .map(|k| {
                        (
                            self.products[(first + k) % self.products.len()],
                            1 + ((seed / 3 + k) % 4) as i64,
                        )
                    })
                    .collect();
                let (order, _) = system.place_order(customer, &lines).await;
                if n % 5 == 0 {
                    let _ = system.cancel(order).await; // may race the saga; 409 once it is rejected
                }
                if n % 17 == 0 {
                    system
                        .send(
                            &format!("/products/{}/restock", lines[0].0),
                            serde_json::json!({"quantity": 2}),
                        )
                        .await;
                }
            }
        }))
        .await;
    }

    /// Ships a few approved orders (the system must be caught up).
    pub async fn ship_some(&self, system: &TestSystem) {
        let approved = system.read("/orders?status=approved&limit=5").await.1;
        for order in approved["items"].as_array().into_iter().flatten() {
            let id: Uuid = order["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("id");
            assert_eq!(system.ship(id).await.status(), reqwest::StatusCode::OK);
        }
    }

    /// Checks the contract's invariants exactly, once the system is quiet: no order pending;
    /// stock and credit equal to what the decided orders hold, within bounds, in the read
    /// models and in the aggregates; every read model equal to a rebuild. Returns how many
    /// orders ended in each status.
    pub async fn assert_invariants(
        &self,
        system: &TestSystem,
        orders_placed: usize,
    ) -> HashMap<String, usize> {
        system.wait_until_caught_up().await;
        let orders: Vec<Value> = sqlx::query_scalar("SELECT doc FROM read_model.orders")
            .fetch_all(&system.pool)
            .await
            .expect("orders");
        assert_eq!(
            orders.len(),
            orders_placed,
            "every order placed is listed, once"
        );
        let mut reserved_by_product: HashMap<Uuid, i64> = HashMap::new();
        let mut shipped_by_product: HashMap<Uuid, i64> = HashMap::new();
        let mut credit_by_customer: HashMap<Uuid, i64> = HashMap::new();
        let mut outcomes: HashMap<String, usize> = HashMap::new();
        for order in &orders {
            let status = order["status"].as_str().expect("status");
            *outcomes.entry(status.to_owned()).or_default() += 1;
            assert_ne!(status, "pending", "no order stays pending: {order}");
            let customer: Uuid = order["customer_id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("customer");
            if matches!(status, "approved" | "shipped") {
                *credit_by_customer.entry(customer).or_default() +=
                    order["total_cents"].as_i64().expect("total");
            }
            for line in order["lines"].as_array().expect("lines") {
                let product: Uuid = line["product_id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .expect("product");
                let quantity = line["quantity"].as_i64().expect("quantity");
                match status {
                    "approved" => *reserved_by_product.entry(product).or_default() += quantity,
                    "shipped" => *shipped_by_product.entry(product).or_default() += quantity,
                    _ => {}
                }
            }
        }

        let restocks: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT stream_id, sum((data ->> 'quantity')::bigint)::bigint FROM events
             WHERE event_type = 'ProductRestocked' GROUP BY stream_id",
        )
        .fetch_all(&system.pool)
        .await
        .expect("restocks");
        let restocked: HashMap<Uuid, i64> = restocks.into_iter().collect();
        let mut conn = system.pool.acquire().await.expect("conn");
        for product in &self.products {
            let (_, doc) = system.read(&format!("/products/{product}")).await;
            let reserved = reserved_by_product.get(product).copied().unwrap_or(0);
            let on_hand = self.initial_stock[product]
                + restocked.get(product).copied().unwrap_or(0)
                - shipped_by_product.get(product).copied().unwrap_or(0);
            assert_eq!(doc["stock_reserved"], reserved, "{doc}");
            assert_eq!(doc["stock_on_hand"], on_hand, "{doc}");
            assert_eq!(doc["stock_available"], on_hand - reserved, "{doc}");
            assert!(on_hand - reserved >= 0, "{doc}");
            let aggregate = event_store::load_aggregate::<Product>(&mut conn, *product, false)
                .await
                .expect("load");
            assert_eq!(
                (
                    aggregate.state.stock_reserved(),
                    aggregate.state.stock_on_hand
                ),
                (reserved, on_hand)
            );
        }
        for customer in &self.customers {
            let (_, doc) = system.read(&format!("/customers/{customer}")).await;
            let reserved = credit_by_customer.get(customer).copied().unwrap_or(0);
            assert_eq!(doc["credit_reserved_cents"], reserved, "{doc}");
            assert!(
                reserved <= doc["credit_limit_cents"].as_i64().expect("limit"),
                "{doc}"
            );
            let aggregate = event_store::load_aggregate::<Customer>(&mut conn, *customer, false)
                .await
                .expect("load");
            assert!(aggregate.state.exists());
            assert_eq!(aggregate.state.credit_reserved_cents(), reserved);
        }
        drop(conn);

        let incremental = system.snapshot().await;
        system
            .rebuilder()
            .rebuild(&read_models::names::READ_MODELS.map(String::from))
            .await
            .expect("rebuilt");
        assert_eq!(
            system.snapshot().await,
            incremental,
            "every read model equals a rebuild"
        );
        outcomes
    }
}
