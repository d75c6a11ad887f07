//! Switching SAGA_MODE while orders are in flight: choreography keeps no state, so it decides
//! whatever orchestration had not decided yet, and the retired mode disappears from
//! /projections.

use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{SagaMode, TestSystem};

#[sqlx::test(migrations = false)]
async fn switching_to_choreography_mid_flight_decides_every_order(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start_in(SagaMode::Orchestration, pool_options, connect).await;
    let (customer, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;
    let (cake, _) = system.add_product("CAKE", "Cake", 300, 1_000).await;
    let before = system.place_order(customer, &[(tea, 1), (cake, 1)]).await.0;
    assert_eq!(system.settled_order(before).await["status"], "approved");

    // Orders placed and the projector stopped wherever its saga is, until at least one order
    // is caught undecided (the orchestrator has not handled it yet).
    let mut in_flight = Vec::new();
    for _ in 0..20 {
        for _ in 0..5 {
            in_flight.push(system.place_order(customer, &[(tea, 2), (cake, 1)]).await.0);
        }
        system.kill_projector().await;
        if undecided(&system).await > 0 {
            break;
        }
        system.start_projector_in(SagaMode::Orchestration).await;
    }
    assert!(
        undecided(&system).await > 0,
        "no order was caught undecided"
    );
    system.start_projector_in(SagaMode::Choreography).await;
    let after = system.place_order(customer, &[(cake, 3)]).await.0;
    system.wait_until_caught_up().await;

    for order in in_flight.iter().chain([&before, &after]) {
        assert_eq!(
            system.read(&format!("/orders/{order}")).await.1["status"],
            "approved"
        );
    }
    let (_, tea_doc) = system.read(&format!("/products/{tea}")).await;
    let placed = in_flight.len() as i64;
    assert_eq!(tea_doc["stock_reserved"], 1 + 2 * placed, "{tea_doc}");
    let (_, cake_doc) = system.read(&format!("/products/{cake}")).await;
    assert_eq!(cake_doc["stock_reserved"], 1 + placed + 3, "{cake_doc}");
    let (status, projections) = system.read("/projections").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = projections["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert!(!names.contains(&"order_saga"), "{names:?}");
    for handler in ["stock_handler", "credit_handler", "order_handler"] {
        assert!(names.contains(&handler), "{names:?}");
    }
    system.stop().await;
}

/// Placed orders the orchestrator has not handled yet.
async fn undecided(system: &TestSystem) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events
         WHERE event_type = 'OrderPlaced'
           AND stream_id NOT IN (SELECT order_id FROM projector.order_sagas)",
    )
    .fetch_one(&system.pool)
    .await
    .expect("undecided orders")
}
