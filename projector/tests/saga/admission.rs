//! Admission under overload (`MAX_SAGA_LAG_EVENTS`): while the saga has more events left to
//! handle than the bound, new orders are refused with 503 and `Retry-After` (and counted),
//! every other command still goes through, and once the saga has caught up orders are accepted
//! again and decided.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{TestSystem, eventually};

const BOUND: i64 = 12;

#[sqlx::test(migrations = false)]
async fn orders_are_refused_while_the_saga_lags_beyond_the_bound(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    drop(pool_options);
    let system = TestSystem::builder()
        .api_args(["--max-saga-lag-events", &BOUND.to_string()])
        .start(connect)
        .await;
    let (customer, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;
    system.wait_until_caught_up().await;

    // Nobody decides orders now: each order placed is one more event for the saga.
    system.kill_projector().await;
    // Orders are placed one after another until one is refused: the watcher reads the backlog
    // four times a second, so refusals start within that of the bound being passed.
    let mut accepted = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let response = system.try_place_order(customer, &[(tea, 1)]).await;
        if response.status() != StatusCode::ACCEPTED {
            break response;
        }
        let body: Value = response.json().await.expect("accepted body");
        accepted.push(body["id"].as_str().unwrap_or_default().to_owned());
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} orders accepted with the saga stopped and a bound of {BOUND}",
            accepted.len()
        );
    };
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("2")
    );
    assert_eq!(
        refused
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/overloaded", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains(&format!("more than the {BOUND}"))),
        "{problem}"
    );
    assert!(
        accepted.len() as i64 >= BOUND,
        "orders are accepted until the backlog passes the bound: only {} were",
        accepted.len()
    );

    // Other commands are not held back: a cancel gets through.
    let first = accepted.first().expect("some orders were accepted first");
    assert_eq!(
        system
            .cancel(first.parse().expect("order id"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let metrics = system
        .command_api_get("/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("command_api_commands_total")
                && line.contains("outcome=\"overloaded\"")),
        "refusals are counted as overloaded"
    );
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("command_api_saga_backlog_events ")),
        "the backlog is a gauge"
    );

    // The saga catches up: orders are admitted again, and decided.
    system.start_projector().await;
    system.wait_until_caught_up().await;
    let admitted = eventually(Duration::from_secs(10), || async {
        system.try_place_order(customer, &[(tea, 1)]).await.status() == StatusCode::ACCEPTED
    })
    .await;
    assert!(
        admitted,
        "orders are admitted again once the saga caught up"
    );
    system.wait_until_caught_up().await;
    let (_, pending) = system.read("/orders?status=pending").await;
    assert_eq!(pending["items"], serde_json::json!([]), "{pending}");
    system.stop().await;
}
