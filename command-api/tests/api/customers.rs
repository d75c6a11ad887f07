use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use testkit::{TestSystem, expect_problem, expect_status};

#[sqlx::test(migrations = false)]
async fn registering_a_customer_answers_201_with_location_etag_and_position(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let response = app
        .command("/customers")
        .json(&json!({ "name": "Ada Lovelace", "credit_limit_cents": 100_000 }))
        .send()
        .await
        .expect("sent");
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let etag = response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(
        location,
        format!("/customers/{}", body["id"].as_str().expect("id"))
    );
    assert_eq!(etag, "\"1\"");
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_i64().expect("position") > 0);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn invalid_fields_are_422_with_one_error_per_field(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let response = app
        .command("/customers")
        .json(&json!({ "name": "  ", "credit_limit_cents": -5 }))
        .send()
        .await
        .expect("sent");
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("name"), json!("credit_limit_cents")]);
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}
