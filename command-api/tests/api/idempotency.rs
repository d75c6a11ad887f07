use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestApp, created, problem};

#[sqlx::test(migrations = "../migrations")]
async fn a_retry_with_the_same_key_replays_the_response_and_appends_nothing(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let register = || {
        app.post("/customers")
            .header("Idempotency-Key", "register-ada")
            .json(&json!({ "name": "Ada", "credit_limit_cents": 500 }))
            .send()
    };
    let first = register().await.expect("sent");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = created(first, StatusCode::CREATED).await;
    let retry = register().await.expect("sent");
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(created(retry, StatusCode::CREATED).await, first);
    assert_eq!(app.event_count().await, 1);
    let key: String = sqlx::query_scalar("SELECT metadata ->> 'idempotency_key' FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("metadata");
    assert_eq!(key, "register-ada");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_key_with_another_body_is_422(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let register = |limit: i64| {
        app.post("/customers")
            .header("Idempotency-Key", "k")
            .json(&json!({ "name": "Ada", "credit_limit_cents": limit }))
            .send()
    };
    created(register(500).await.expect("sent"), StatusCode::CREATED).await;
    problem(
        register(501).await.expect("sent"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(app.event_count().await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn racing_retries_with_one_key_append_once_and_answer_alike(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(1_000_000).await;
    let tea = app.add_product("TEA", 450, 10).await;
    let place = || {
        app.post("/orders")
            .header("Idempotency-Key", "order-1")
            .json(&json!({ "customer_id": customer, "lines": [{ "product_id": tea, "quantity": 1 }] }))
            .send()
    };
    let responses = futures_util::future::join_all((0..8).map(|_| place())).await;
    let mut bodies = Vec::new();
    for response in responses {
        bodies.push(created(response.expect("sent"), StatusCode::ACCEPTED).await);
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
}

#[sqlx::test(migrations = "../migrations")]
async fn an_overlong_key_is_400(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app
        .post("/customers")
        .header("Idempotency-Key", "k".repeat(201))
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1 }))
        .send()
        .await
        .expect("sent");
    problem(response, StatusCode::BAD_REQUEST).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_key_older_than_its_retention_is_new_again_and_is_purged(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let register = || {
        app.post("/customers")
            .header("Idempotency-Key", "yesterday")
            .json(&json!({ "name": "Ada", "credit_limit_cents": 500 }))
            .send()
    };
    created(register().await.expect("sent"), StatusCode::CREATED).await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let again = register().await.expect("sent");
    assert!(again.headers().get("idempotent-replayed").is_none());
    created(again, StatusCode::CREATED).await;
    assert_eq!(app.event_count().await, 2);

    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let retention = command_api::startup::DEFAULT_IDEMPOTENCY_RETENTION;
    let purged = shared::event_store::purge_idempotency_keys(&app.pool, retention)
        .await
        .expect("purged");
    assert_eq!(purged, 1);
}
