//! An event a saga subscription cannot process is parked with its error, counted in
//! /projections, skipped so the saga goes on, and processed by `retry-dead-letters` once the
//! cause is fixed.

use std::time::Duration;

use domain::{
    StreamType,
    order::{OrderEvent, OrderLine},
    product::ProductEvent,
};
use event_store::{Metadata, append_to_stream};
use serde_json::Value;
use testkit::{TestSystem, eventually};
use uuid::Uuid;

use crate::in_both_modes;

in_both_modes!(
    an_unprocessable_event_is_parked_then_retried,
    a_parked_order_cancelled_meanwhile_holds_nothing_after_the_retry,
    the_dashboard_retries_over_http_with_the_operator_token,
);

/// Parked events over all subscriptions (each partition's item shows its subscription's).
async fn dead_letters(system: &TestSystem) -> i64 {
    let (_, body) = system.read("/projections").await;
    let per_subscription: std::collections::HashMap<String, i64> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let name = item["name"].as_str().unwrap_or_default().to_owned();
            (name, item["dead_letters"].as_i64().unwrap_or(0))
        })
        .collect();
    per_subscription.values().sum()
}

/// A customer, and an order of theirs for a product the store has never heard of (as after a
/// partial restore), whose first saga step has been parked. Returns (customer, order, product).
async fn park_an_order_for_a_missing_product(system: &TestSystem) -> (Uuid, Uuid, Uuid) {
    let (customer, _) = system.register_customer(10_000).await;
    let (order, missing_product) = (Uuid::now_v7(), Uuid::now_v7());
    let line = OrderLine {
        product_id: missing_product,
        quantity: 1,
        unit_price_cents: 100,
    };
    let placed = OrderEvent::OrderPlaced {
        customer_id: customer,
        lines: vec![line],
        total_cents: 100,
    };
    let mut conn = system.pool.acquire().await.expect("conn");
    append_to_stream(
        &mut conn,
        order,
        StreamType::Order,
        0,
        &[placed],
        &Metadata::default(),
    )
    .await
    .expect("appended");
    let parked = eventually(Duration::from_secs(30), || async {
        dead_letters(system).await == 1
    })
    .await;
    assert!(
        parked,
        "the event was not parked: {}",
        system.read("/projections").await.1
    );
    (customer, order, missing_product)
}

/// Makes the missing product exist, as restoring it would.
async fn add_the_missing_product(system: &TestSystem, product: Uuid) {
    let added = ProductEvent::ProductAdded {
        sku: "LATE".into(),
        name: "Late".into(),
        price_cents: 100,
        stock: 5,
    };
    let mut conn = system.pool.acquire().await.expect("conn");
    append_to_stream(
        &mut conn,
        product,
        StreamType::Product,
        0,
        &[added],
        &Metadata::default(),
    )
    .await
    .expect("appended");
}

async fn an_unprocessable_event_is_parked_then_retried(system: &TestSystem) {
    let (customer, order, missing_product) = park_an_order_for_a_missing_product(system).await;
    let error: String = sqlx::query_scalar("SELECT error FROM projector.dead_letters")
        .fetch_one(&system.pool)
        .await
        .expect("parked");
    assert!(error.contains("product"), "{error}");
    // The saga goes on with other orders meanwhile.
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    let (other, _) = system.place_order(customer, &[(tea, 1)]).await;
    assert_eq!(system.settled_order(other).await["status"], "approved");

    // Fix the cause, then retry.
    add_the_missing_product(system, missing_product).await;
    let (processed, failing) = projector::saga::retry_dead_letters(&system.pool, 100)
        .await
        .expect("retried");
    assert_eq!((processed, failing), (1, 0));
    let order_doc: Value = system.settled_order(order).await;
    assert_eq!(order_doc["status"], "approved", "{order_doc}");
    assert_eq!(dead_letters(system).await, 0);
}

async fn a_parked_order_cancelled_meanwhile_holds_nothing_after_the_retry(system: &TestSystem) {
    let (customer, order, missing_product) = park_an_order_for_a_missing_product(system).await;

    // The client gives up on the order while its first saga step sits in dead_letters.
    assert_eq!(
        system.cancel(order).await.status(),
        reqwest::StatusCode::ACCEPTED
    );
    // The cancel is processed (finding nothing to release) before the parked step is retried:
    // the order that matters.
    system.wait_until_caught_up().await;
    add_the_missing_product(system, missing_product).await;
    let (processed, failing) = projector::saga::retry_dead_letters(&system.pool, 100)
        .await
        .expect("retried");
    let still_parked: Vec<(String, String, String)> =
        sqlx::query_as("SELECT subscription, event_type, error FROM projector.dead_letters")
            .fetch_all(&system.pool)
            .await
            .expect("dead letters");
    assert_eq!(failing, 0, "{still_parked:?}");
    assert!(processed >= 1);
    system.wait_until_caught_up().await;
    assert_eq!(
        system.read(&format!("/orders/{order}")).await.1["status"],
        "cancelled"
    );
    let (_, product) = system.read(&format!("/products/{missing_product}")).await;
    assert_eq!(product["stock_reserved"], 0, "{product}");
    let (_, customer_doc) = system.read(&format!("/customers/{customer}")).await;
    assert_eq!(customer_doc["credit_reserved_cents"], 0, "{customer_doc}");
}

/// `POST /dead-letters/retry` on the projector, as the dashboard's retry button calls it: from
/// the dashboard's origin (CORS), with the operator token.
async fn the_dashboard_retries_over_http_with_the_operator_token(system: &TestSystem) {
    let (_, order, missing_product) = park_an_order_for_a_missing_product(system).await;
    let retry = format!("{}/dead-letters/retry", system.projector_base().await);
    let post = |token: Option<&str>| {
        let request = system
            .client
            .post(&retry)
            .header("Origin", testkit::DASHBOARD_ORIGIN);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    };

    // The browser asks first; only the dashboard's origin may send the token.
    let preflight = |origin: &str| {
        system
            .client
            .request(reqwest::Method::OPTIONS, &retry)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight(testkit::DASHBOARD_ORIGIN)
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        testkit::DASHBOARD_ORIGIN
    );
    let elsewhere = preflight("http://elsewhere.test").await.expect("preflight");
    assert!(
        !elsewhere
            .headers()
            .contains_key("access-control-allow-origin"),
        "another origin was allowed"
    );

    for token in [None, Some("not-the-token"), Some(testkit::TOKEN)] {
        let refused = post(token).send().await.expect("sent");
        assert_eq!(
            refused.status(),
            reqwest::StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        // The dashboard can read the refusal and say so.
        assert_eq!(
            refused.headers()["access-control-allow-origin"],
            testkit::DASHBOARD_ORIGIN
        );
    }
    assert_eq!(dead_letters(system).await, 1);

    add_the_missing_product(system, missing_product).await;
    let retried = post(Some(testkit::OPERATOR_TOKEN))
        .send()
        .await
        .expect("sent");
    assert_eq!(retried.status(), reqwest::StatusCode::OK);
    let body: Value = retried.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"processed": 1, "still_failing": 0})
    );
    assert_eq!(dead_letters(system).await, 0);
    assert_eq!(system.settled_order(order).await["status"], "approved");
}
