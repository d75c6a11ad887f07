use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use testkit::{TestSystem, expect_problem, expect_status};

#[sqlx::test(migrations = false)]
async fn a_retry_with_the_same_key_replays_the_response_and_appends_nothing(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let register = || {
        app.command("/customers")
            .header("Idempotency-Key", "register-ada")
            .json(&json!({ "name": "Ada", "credit_limit_cents": 500 }))
            .send()
    };
    let first = register().await.expect("sent");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_status(first, StatusCode::CREATED).await;
    let retry = register().await.expect("sent");
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_status(retry, StatusCode::CREATED).await, first);
    assert_eq!(app.event_count().await, 1);
    let key: String = sqlx::query_scalar("SELECT metadata ->> 'idempotency_key' FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("metadata");
    assert_eq!(key, "register-ada");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_same_key_with_another_body_is_422(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let register = |limit: i64| {
        app.command("/customers")
            .header("Idempotency-Key", "k")
            .json(&json!({ "name": "Ada", "credit_limit_cents": limit }))
            .send()
    };
    expect_status(register(500).await.expect("sent"), StatusCode::CREATED).await;
    expect_problem(
        register(501).await.expect("sent"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn racing_retries_with_one_key_append_once_and_answer_alike(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(1_000_000).await.0;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let place = || {
        app.command("/orders")
            .header("Idempotency-Key", "order-1")
            .json(&json!({ "customer_id": customer, "lines": [{ "product_id": tea, "quantity": 1 }] }))
            .send()
    };
    let responses = futures_util::future::join_all((0..8).map(|_| place())).await;
    let mut bodies = Vec::new();
    for response in responses {
        bodies.push(expect_status(response.expect("sent"), StatusCode::ACCEPTED).await);
    }
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "{bodies:?}"
    );
    let orders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'OrderPlaced'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(orders, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_overlong_key_is_400(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let response = app
        .command("/customers")
        .header("Idempotency-Key", "k".repeat(201))
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1 }))
        .send()
        .await
        .expect("sent");
    expect_problem(response, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_key_older_than_its_retention_is_new_again_and_is_purged(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let register = || {
        app.command("/customers")
            .header("Idempotency-Key", "yesterday")
            .json(&json!({ "name": "Ada", "credit_limit_cents": 500 }))
            .send()
    };
    expect_status(register().await.expect("sent"), StatusCode::CREATED).await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let again = register().await.expect("sent");
    assert!(again.headers().get("idempotent-replayed").is_none());
    expect_status(again, StatusCode::CREATED).await;
    assert_eq!(app.event_count().await, 2);

    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let retention = std::time::Duration::from_secs(24 * 3600);
    let purged = event_store::purge_idempotency_keys(&app.pool, retention)
        .await
        .expect("purged");
    assert_eq!(purged, 1);
    app.stop().await;
}
