//! `as_of`: the lookups answer the state a resource had at a position or a time, from the
//! `document_versions` read model.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;

/// GETs `path` and returns the status, `X-Position` and the body.
async fn read_with_position(
    system: &TestSystem,
    path: &str,
) -> (StatusCode, Option<i64>, serde_json::Value) {
    let response = system.query(path).send().await.expect("sent");
    let status = response.status();
    let position = response
        .headers()
        .get("x-position")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    (status, position, response.json().await.unwrap_or_default())
}

#[sqlx::test(migrations = false)]
async fn as_of_a_position_or_a_time_answers_the_state_then(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, registered) = system.register_customer(10_000).await;
    let before_product = chrono::Utc::now();
    let (tea, added) = system.add_product("TEA", "Tea", 100, 5).await;
    let after_added = chrono::Utc::now();
    let (order, placed) = system.place_order(customer, &[(tea, 2)]).await;
    assert_eq!(system.settled_order(order).await["status"], "approved");
    let (_, restocked) = system
        .send(&format!("/products/{tea}/restock"), json!({"quantity": 3}))
        .await;
    system.wait_until_caught_up().await;

    // At a position: the state once every event up to it had happened, and X-Position says so.
    let (status, position, product) =
        read_with_position(&system, &format!("/products/{tea}?as_of={added}")).await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(position, Some(added));
    assert_eq!(
        (
            product["stock_on_hand"].clone(),
            product["stock_reserved"].clone(),
            product["version"].clone()
        ),
        (json!(5), json!(0), json!(1))
    );
    let (_, _, product) =
        read_with_position(&system, &format!("/products/{tea}?as_of={restocked}")).await;
    assert_eq!(
        (
            product["stock_on_hand"].clone(),
            product["stock_reserved"].clone()
        ),
        (json!(8), json!(2))
    );
    let (_, _, current) = read_with_position(&system, &format!("/products/{tea}")).await;
    assert_eq!(
        current, product,
        "as_of the newest position is the current document"
    );

    let (_, _, pending) =
        read_with_position(&system, &format!("/orders/{order}?as_of={placed}")).await;
    assert_eq!(
        (pending["status"].clone(), pending["version"].clone()),
        (json!("pending"), json!(1))
    );
    let (_, _, customer_then) = read_with_position(
        &system,
        &format!("/customers/{customer}?as_of={registered}"),
    )
    .await;
    assert_eq!(
        (
            customer_then["name"].clone(),
            customer_then["credit_reserved_cents"].clone()
        ),
        (json!("Ada"), json!(0))
    );
    let (_, _, customer_now) =
        read_with_position(&system, &format!("/customers/{customer}?as_of={restocked}")).await;
    assert_eq!(customer_now["credit_reserved_cents"], 200);

    // Each version is valid until the next one starts; the newest is open.
    let versions: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT version, valid_from_position, valid_to_position FROM read_model.document_versions
         WHERE kind = 'product' AND id = $1 ORDER BY version",
    )
    .bind(tea)
    .fetch_all(&system.pool)
    .await
    .expect("versions");
    assert_eq!(
        versions.len(),
        3,
        "added, reserved, restocked: {versions:?}"
    );
    assert_eq!((versions[0].1, versions[2].1), (added, restocked));
    for pair in versions.windows(2) {
        assert_eq!(pair[0].2, Some(pair[1].1), "{versions:?}");
    }
    assert_eq!(versions[2].2, None);

    // At a time: the newest version recorded at or before it.
    let encoded = |time: chrono::DateTime<chrono::Utc>| time.to_rfc3339().replace('+', "%2B");
    let (status, position, product) = read_with_position(
        &system,
        &format!("/products/{tea}?as_of={}", encoded(after_added)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    assert_eq!(
        position,
        Some(added),
        "the position of the version answered"
    );
    assert_eq!(product["stock_on_hand"], 5);

    // Before the product existed: 404, by position and by time.
    let (status, _, _) =
        read_with_position(&system, &format!("/products/{tea}?as_of={registered}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, problem) = read_with_position(
        &system,
        &format!("/products/{tea}?as_of={}", encoded(before_product)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");

    // Malformed values and positions no command answered are 400s.
    for bad in [
        "yesterday",
        "-1",
        "2026-12-01",
        "1.5",
        "99999999999999999999",
    ] {
        let (status, _, problem) =
            read_with_position(&system, &format!("/customers/{customer}?as_of={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    let (status, _, _) = read_with_position(
        &system,
        &format!("/customers/{customer}?as_of={}", restocked + (1 << 40)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    system.stop().await;
}
