//! The operator dashboard: its page and assets, and `/dashboard/summary` (event rate, saga
//! outcomes, dead letters, newest events), read from the read models alone.

use std::time::Duration;

use domain::{
    StreamType,
    order::{OrderEvent, OrderLine},
};
use event_store::{Metadata, append_to_stream};
use reqwest::{StatusCode, header};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{TestSystem, eventually};
use uuid::Uuid;

#[sqlx::test(migrations = false)]
async fn the_page_and_its_assets_are_built_in_and_may_call_only_the_projector(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let page = system.query("/dashboard").send().await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("policy")
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("connect-src 'self' http://"),
        "{policy}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"<meta name="projector-url" content="http://"#));
    assert!(!html.contains("{{"), "a placeholder is left: {html}");
    for (asset, content_type) in [
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let response = system.query(asset).send().await.expect("asset");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|value| value.starts_with(content_type)),
            "{asset}"
        );
        assert!(!response.text().await.expect("body").is_empty());
    }
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_summary_shows_outcomes_the_newest_events_and_the_event_rate(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (rich, _) = system.register_customer(100_000).await;
    let (poor, _) = system.register_customer(50).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 10).await;
    system.place_order(rich, &[(tea, 2)]).await;
    system.place_order(poor, &[(tea, 1)]).await;
    let (_, last) = system.place_order(rich, &[(tea, 50)]).await;
    system.wait_until_caught_up().await;

    let summary = system.read_at("/dashboard/summary", last).await;
    let orders = &summary["orders"];
    assert_eq!(orders["total"], 3, "{summary}");
    assert_eq!(orders["approved"], 1, "{summary}");
    assert_eq!(orders["rejected"], 2, "{summary}");
    assert_eq!(orders["rejected_by_reason"]["credit_limit_exceeded"], 1);
    assert_eq!(orders["rejected_by_reason"]["insufficient_stock"], 1);

    // The newest events, newest first, are the log's own newest events.
    let newest: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, event_type FROM events ORDER BY position DESC LIMIT 25")
            .fetch_all(&system.pool)
            .await
            .expect("events");
    let shown: Vec<(i64, String)> = summary["recent_events"]
        .as_array()
        .expect("recent events")
        .iter()
        .map(|event| {
            (
                event["position"].as_i64().expect("position"),
                event["type"].as_str().expect("type").to_owned(),
            )
        })
        .collect();
    assert_eq!(shown, newest);

    // Every event of the last two minutes is counted in the rate, each second once.
    let rate = &summary["event_rate"];
    assert_eq!(rate["window_seconds"], 120);
    let counted: i64 = rate["seconds"]
        .as_array()
        .expect("seconds")
        .iter()
        .map(|second| second["events"].as_i64().expect("events"))
        .sum();
    assert_eq!(counted, system.event_count().await, "{rate}");
    let decided: i64 = rate["seconds"]
        .as_array()
        .expect("seconds")
        .iter()
        .map(|second| second["decided"].as_i64().expect("decided"))
        .sum();
    assert_eq!(decided, 3);
    assert_eq!(summary["dead_letters"]["count"], 0);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_event_feed_holds_every_event_of_the_log(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(100_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 10).await;
    for _ in 0..5 {
        system.place_order(customer, &[(tea, 1)]).await;
    }
    system.wait_until_caught_up().await;
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e
         WHERE NOT EXISTS (SELECT FROM read_model.event_feed f
                           WHERE f.position = e.position AND f.type = e.event_type
                             AND f.stream_id = e.stream_id AND f.version = e.stream_version)",
    )
    .fetch_one(&system.pool)
    .await
    .expect("compare");
    let (feed, log): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM read_model.event_feed), (SELECT count(*) FROM events)",
    )
    .fetch_one(&system.pool)
    .await
    .expect("counts");
    assert_eq!((missing, feed), (0, log));
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_summary_lists_dead_letters_with_their_errors(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(10_000).await;
    // An order for a product the store has never heard of (as after a partial restore): the
    // saga cannot reserve it and parks the event.
    let (order, missing_product) = (Uuid::now_v7(), Uuid::now_v7());
    let placed = OrderEvent::OrderPlaced {
        customer_id: customer,
        lines: vec![OrderLine {
            product_id: missing_product,
            quantity: 1,
            unit_price_cents: 100,
        }],
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
    drop(conn);

    let parked = eventually(Duration::from_secs(30), || async {
        system.read("/dashboard/summary").await.1["dead_letters"]["count"] == 1
    })
    .await;
    let (_, summary) = system.read("/dashboard/summary").await;
    assert!(parked, "{summary}");
    let letter = &summary["dead_letters"]["items"][0];
    assert_eq!(letter["event_type"], "OrderPlaced", "{letter}");
    assert_eq!(letter["stream_id"], order.to_string());
    assert!(
        letter["error"]
            .as_str()
            .is_some_and(|error| error.contains("product")),
        "{letter}"
    );
    assert!(letter["attempts"].as_i64().is_some_and(|n| n >= 1));
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_summary_refuses_unknown_parameters(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (status, body) = system.read("/dashboard/summary?limit=5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    system.stop().await;
}
