//! One scenario per rule of the saga.

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::TestSystem;
use uuid::Uuid;

use crate::in_both_modes;

in_both_modes!(
    approves_when_stock_and_credit_suffice,
    rejects_for_stock_and_releases_the_partial_reservation,
    rejects_for_credit_and_releases_all_stock,
    cancelling_a_pending_order_releases_everything,
    cancelling_an_approved_order_releases_stock_and_credit,
    shipping_moves_stock_out_and_keeps_credit_used,
    thirty_orders_cancelled_right_after_placing_hold_nothing,
);

async fn product(system: &TestSystem, id: Uuid) -> Value {
    system.read(&format!("/products/{id}")).await.1
}

async fn customer(system: &TestSystem, id: Uuid) -> Value {
    system.read(&format!("/customers/{id}")).await.1
}

async fn history_types(system: &TestSystem, order: Uuid) -> Vec<String> {
    let (_, history) = system.read(&format!("/orders/{order}/history")).await;
    history["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["type"].as_str().expect("type").to_owned())
        .collect()
}

async fn approves_when_stock_and_credit_suffice(system: &TestSystem) {
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (cake, _) = system.add_product("CAKE", "Cake", 200, 5).await;
    let (order, _) = system.place_order(ada, &[(tea, 2), (cake, 1)]).await;
    let order_doc = system.settled_order(order).await;
    assert_eq!(order_doc["status"], "approved", "{order_doc}");
    assert!(order_doc["rejection_reason"].is_null());
    let tea_doc = product(system, tea).await;
    assert_eq!(
        (
            tea_doc["stock_reserved"].clone(),
            tea_doc["stock_available"].clone()
        ),
        (json!(2), json!(3))
    );
    assert_eq!(customer(system, ada).await["credit_reserved_cents"], 400);
    let steps = history_types(system, order).await;
    assert_eq!(
        steps,
        [
            "OrderPlaced",
            "StockReserved",
            "StockReserved",
            "CreditReserved",
            "OrderApproved"
        ]
    );
    // Every step the saga issued carries the order's correlation id and a causation id.
    let metadata: Vec<Value> = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE data ->> 'order_id' = $1 OR (stream_id = $2 AND stream_version > 1)",
    )
    .bind(order.to_string())
    .bind(order)
    .fetch_all(&system.pool)
    .await
    .expect("metadata");
    let placed: Value = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE stream_id = $1 AND stream_version = 1",
    )
    .bind(order)
    .fetch_one(&system.pool)
    .await
    .expect("placed");
    assert_eq!(metadata.len(), 4);
    for step in metadata {
        assert_eq!(step["correlation_id"], placed["correlation_id"], "{step}");
        assert!(step["causation_id"].is_string(), "{step}");
    }
}

async fn rejects_for_stock_and_releases_the_partial_reservation(system: &TestSystem) {
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (cake, _) = system.add_product("CAKE", "Cake", 200, 0).await;
    let (order, _) = system.place_order(ada, &[(tea, 2), (cake, 1)]).await;
    let order_doc = system.settled_order(order).await;
    assert_eq!(
        (
            order_doc["status"].clone(),
            order_doc["rejection_reason"].clone()
        ),
        (json!("rejected"), json!("insufficient_stock"))
    );
    assert_eq!(product(system, tea).await["stock_reserved"], 0);
    assert_eq!(product(system, tea).await["stock_available"], 5);
    assert_eq!(customer(system, ada).await["credit_reserved_cents"], 0);
    let mut steps = history_types(system, order).await;
    // The release and the rejection are independent reactions (in choreography, of two handlers).
    steps[3..].sort();
    assert_eq!(
        steps,
        [
            "OrderPlaced",
            "StockReserved",
            "StockReservationRejected",
            "OrderRejected",
            "StockReleased"
        ]
    );
}

async fn rejects_for_credit_and_releases_all_stock(system: &TestSystem) {
    let (ada, _) = system.register_customer(150).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (order, _) = system.place_order(ada, &[(tea, 2)]).await;
    let order_doc = system.settled_order(order).await;
    assert_eq!(
        (
            order_doc["status"].clone(),
            order_doc["rejection_reason"].clone()
        ),
        (json!("rejected"), json!("credit_limit_exceeded"))
    );
    assert_eq!(product(system, tea).await["stock_reserved"], 0);
    let ada_doc = customer(system, ada).await;
    assert_eq!(
        (
            ada_doc["credit_reserved_cents"].clone(),
            ada_doc["credit_available_cents"].clone()
        ),
        (json!(0), json!(150))
    );
    assert!(
        history_types(system, order)
            .await
            .contains(&"CreditReservationRejected".to_owned())
    );
}

async fn cancelling_a_pending_order_releases_everything(system: &TestSystem) {
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (cake, _) = system.add_product("CAKE", "Cake", 200, 5).await;
    let (order, _) = system.place_order(ada, &[(tea, 1), (cake, 1)]).await;
    // The saga may be anywhere by now: before its first step, mid-way, or done.
    let cancelled = system.cancel(order).await;
    assert!(matches!(
        cancelled.status(),
        StatusCode::ACCEPTED | StatusCode::CONFLICT
    ));
    let order_doc = system.settled_order(order).await;
    if order_doc["status"] == "cancelled" {
        assert_eq!(product(system, tea).await["stock_reserved"], 0);
        assert_eq!(product(system, cake).await["stock_reserved"], 0);
        assert_eq!(customer(system, ada).await["credit_reserved_cents"], 0);
    } else {
        panic!("a cancel of a pending or approved order must win: {order_doc}");
    }
}

async fn cancelling_an_approved_order_releases_stock_and_credit(system: &TestSystem) {
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (order, _) = system.place_order(ada, &[(tea, 3)]).await;
    assert_eq!(system.settled_order(order).await["status"], "approved");
    assert_eq!(system.cancel(order).await.status(), StatusCode::ACCEPTED);
    let order_doc = system.settled_order(order).await;
    assert_eq!(order_doc["status"], "cancelled");
    assert_eq!(product(system, tea).await["stock_available"], 5);
    assert_eq!(customer(system, ada).await["credit_reserved_cents"], 0);
    assert_eq!(system.cancel(order).await.status(), StatusCode::CONFLICT);
}

async fn shipping_moves_stock_out_and_keeps_credit_used(system: &TestSystem) {
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (order, _) = system.place_order(ada, &[(tea, 2)]).await;
    assert_eq!(system.settled_order(order).await["status"], "approved");
    assert_eq!(system.ship(order).await.status(), StatusCode::OK);
    let order_doc = system.settled_order(order).await;
    assert_eq!(order_doc["status"], "shipped");
    let tea_doc = product(system, tea).await;
    assert_eq!(
        (
            tea_doc["stock_on_hand"].clone(),
            tea_doc["stock_reserved"].clone(),
            tea_doc["stock_available"].clone()
        ),
        (json!(3), json!(0), json!(3))
    );
    assert_eq!(customer(system, ada).await["credit_reserved_cents"], 200);
    assert_eq!(
        system.cancel(order).await.status(),
        StatusCode::CONFLICT,
        "cancel after ship is 409"
    );
    assert!(
        history_types(system, order)
            .await
            .contains(&"StockShipped".to_owned())
    );
}

async fn thirty_orders_cancelled_right_after_placing_hold_nothing(system: &TestSystem) {
    let (ada, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;
    let (cake, _) = system.add_product("CAKE", "Cake", 250, 1_000).await;
    let orders = futures_util::future::join_all((0..30).map(|_| async {
        let (order, _) = system.place_order(ada, &[(tea, 2), (cake, 1)]).await;
        assert_eq!(system.cancel(order).await.status(), StatusCode::ACCEPTED);
        order
    }))
    .await;
    system.wait_until_caught_up().await;
    for order in orders {
        assert_eq!(
            system.read(&format!("/orders/{order}")).await.1["status"],
            "cancelled"
        );
    }
    for product_id in [tea, cake] {
        let doc = product(system, product_id).await;
        assert_eq!(
            (
                doc["stock_reserved"].clone(),
                doc["stock_available"].clone()
            ),
            (json!(0), json!(1_000)),
            "{doc}"
        );
    }
    assert_eq!(customer(system, ada).await["credit_reserved_cents"], 0);
}
