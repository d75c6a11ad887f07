//! `/metrics` of every service: Prometheus text with `# HELP` lines, histograms with buckets,
//! and the metrics an operator alerts on, moving when the system does. The services of every
//! test in this process share one recorder, so counters are compared before and after.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("metrics text")
}

/// The value of one series (`name{labels}` exactly as rendered), 0 when it is not there yet.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

fn assert_described(metrics: &str, name: &str, kind: &str) {
    assert!(
        metrics.contains(&format!("# HELP {name} ")),
        "no HELP line for {name}"
    );
    assert!(
        metrics.contains(&format!("# TYPE {name} {kind}")),
        "{name} is not a {kind}"
    );
}

#[sqlx::test(migrations = false)]
async fn commands_saga_outcomes_and_pools_are_measured(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let command_metrics = format!("{}/metrics", system.command_base);
    let projector_metrics = format!("{}/metrics", system.projector_base().await);
    let placed = r#"command_api_events_appended_total{stream_type="order",type="OrderPlaced"}"#;
    let accepted = r#"command_api_commands_total{route="/orders",outcome="accepted"}"#;
    let refused = r#"command_api_commands_total{route="/orders",outcome="unauthorized"}"#;
    let replays = r#"command_api_idempotent_replays_total{route="/customers"}"#;
    let approved = r#"projector_saga_outcomes_total{result="approved",reason="none"}"#;
    let short_of_credit =
        r#"projector_saga_outcomes_total{result="rejected",reason="credit_limit_exceeded"}"#;
    let before = scrape(&command_metrics).await;

    let (customer, _) = system.register_customer(1_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 400, 10).await;
    system.place_order(customer, &[(tea, 2)]).await;
    system.place_order(customer, &[(tea, 1)]).await; // 1,200 cents > 1,000: rejected
    let unauthorized = system
        .client
        .post(format!("{}/orders", system.command_base))
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let response = system
            .command("/customers")
            .header("Idempotency-Key", "metrics-replay")
            .json(&json!({ "name": "Bo", "credit_limit_cents": 5 }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    system.wait_until_caught_up().await;

    let after = scrape(&command_metrics).await;
    assert!(value(&after, placed) >= value(&before, placed) + 2.0);
    assert!(value(&after, accepted) >= value(&before, accepted) + 2.0);
    assert!(value(&after, refused) > value(&before, refused));
    assert!(value(&after, replays) > value(&before, replays));
    assert_described(&after, "command_api_commands_total", "counter");
    assert_described(&after, "command_api_events_appended_total", "counter");
    assert_described(&after, "command_api_idempotent_replays_total", "counter");
    assert_described(&after, "http_request_duration_seconds", "histogram");
    assert!(after.contains(r#"http_request_duration_seconds_bucket{method="POST",route="/orders",status="202",le="0.005"}"#));
    assert_described(&after, "db_pool_connections", "gauge");
    assert!(value(&after, r#"db_pool_max_connections{pool="command-api"}"#) >= 1.0);

    let projector = scrape(&projector_metrics).await;
    assert!(value(&projector, approved) >= value(&before, approved) + 1.0);
    assert!(value(&projector, short_of_credit) >= value(&before, short_of_credit) + 1.0);
    assert_described(&projector, "projector_saga_outcomes_total", "counter");
    assert_described(
        &projector,
        "projector_saga_placed_to_decided_seconds",
        "histogram",
    );
    assert!(
        projector
            .contains(r#"projector_saga_placed_to_decided_seconds_bucket{result="approved",le="#)
    );
    assert!(value(&projector, r#"db_pool_max_connections{pool="projector"}"#) >= 1.0);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn min_position_waits_and_their_timeouts_are_measured(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let query_metrics = format!("{}/metrics", system.query_base);
    let waits = r#"query_api_min_position_waits_total{read_model="lookups"}"#;
    let timeouts = r#"query_api_min_position_timeouts_total{read_model="lookups"}"#;
    system.wait_until_caught_up().await;
    let before = scrape(&query_metrics).await;

    // Nothing applies the write while the projector is down: the read waits, then gives up.
    system.kill_projector().await;
    let (customer, position) = system.register_customer(1_000).await;
    let (status, body) = system
        .read(&format!("/customers/{customer}?min_position={position}"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    let after = scrape(&query_metrics).await;
    assert!(value(&after, waits) > value(&before, waits));
    assert!(value(&after, timeouts) > value(&before, timeouts));
    assert_described(&after, "query_api_min_position_wait_seconds", "histogram");
    assert!(after.contains(
        r#"query_api_min_position_wait_seconds_bucket{read_model="lookups",outcome="timed_out",le="10"}"#
    ));
    assert!(value(&after, r#"db_pool_max_connections{pool="query-api"}"#) >= 1.0);
    system.stop().await;
}
