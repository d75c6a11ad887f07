//! Hundreds of concurrent multi-line orders against scarce stock and tight credit, with cancels
//! and restocks racing the saga and the projector killed several times mid-way; then the
//! contract's invariants, checked exactly, against the read models and the aggregates.

use std::{collections::HashMap, time::Duration};

use domain::{Aggregate, customer::Customer, product::Product};
use serde_json::Value;
use testkit::TestSystem;
use uuid::Uuid;

use crate::in_both_modes;

in_both_modes!(invariants_hold_under_contention_and_crashes);

const ORDERS: usize = 320;
const CLIENTS: usize = 32;

async fn invariants_hold_under_contention_and_crashes(system: &TestSystem) {
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

    let load = async {
        let per_client = ORDERS / CLIENTS;
        futures_util::future::join_all((0..CLIENTS).map(|client| {
            let (customers, products) = (&customers, &products);
            async move {
                for n in 0..per_client {
                    let seed = client * 7919 + n * 104_729;
                    let customer = customers[seed % customers.len()];
                    let first = seed % products.len();
                    let lines: Vec<(Uuid, i64)> = (0..1 + seed % 3)
                        .map(|k| {
                            (
                                products[(first + k) % products.len()],
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
            }
        }))
        .await;
    };
    let crashes = async {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            system.kill_projector().await;
            system.start_projector().await;
        }
    };
    tokio::join!(load, crashes);
    // Ship some approved orders now that the dust is settling.
    system.wait_until_caught_up().await;
    let approved = system.read("/orders?status=approved&limit=5").await.1;
    for order in approved["items"].as_array().expect("items") {
        let id: Uuid = order["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("id");
        assert_eq!(system.ship(id).await.status(), reqwest::StatusCode::OK);
    }
    system.wait_until_caught_up().await;

    let orders: Vec<Value> = sqlx::query_scalar("SELECT doc FROM read_model.orders")
        .fetch_all(&system.pool)
        .await
        .expect("orders");
    assert_eq!(orders.len(), ORDERS / CLIENTS * CLIENTS);
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
    for status in ["approved", "rejected", "cancelled"] {
        assert!(
            outcomes.get(status).copied().unwrap_or(0) > 0,
            "the load should produce {status} orders: {outcomes:?}"
        );
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
    for product in &products {
        let (_, doc) = system.read(&format!("/products/{product}")).await;
        let reserved = reserved_by_product.get(product).copied().unwrap_or(0);
        let on_hand = initial_stock[product] + restocked.get(product).copied().unwrap_or(0)
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
    for customer in &customers {
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
}
