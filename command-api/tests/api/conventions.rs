//! What every endpoint does alike: auth, problem+json for actix's own errors, body limits,
//! request ids, health, readiness and metrics.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TOKEN, TestApp, problem};

#[sqlx::test(migrations = "../migrations")]
async fn commands_without_the_right_token_are_401(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = json!({ "name": "Ada", "credit_limit_cents": 1 });
    let url = format!("{}/customers", app.base);
    let missing = app
        .client
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    problem(missing, StatusCode::UNAUTHORIZED).await;
    let wrong = app
        .client
        .post(&url)
        .bearer_auth(format!("{TOKEN}x"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.event_count().await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn actix_extractor_errors_are_problem_json(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let malformed = app
        .post("/customers")
        .header("content-type", "application/json")
        .body("{nope");
    problem(
        malformed.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let wrong_type = app
        .post("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": "lots" }));
    problem(
        wrong_type.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let unknown_field = app
        .post("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1, "vip": true }));
    problem(
        unknown_field.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let float = app
        .post("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1.5 }));
    problem(float.send().await.expect("sent"), StatusCode::BAD_REQUEST).await;
    let not_json = app
        .post("/customers")
        .header("content-type", "text/plain")
        .body("{}");
    problem(
        not_json.send().await.expect("sent"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let bad_uuid = app
        .post("/products/not-a-uuid/restock")
        .json(&json!({ "quantity": 1 }));
    problem(bad_uuid.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
    problem(
        app.get("/nowhere").send().await.expect("sent"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let wrong_method = app
        .get("/customers")
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_method.headers()["allow"], "POST");
    problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
    let trace = app
        .client
        .request(reqwest::Method::TRACE, format!("{}/healthz", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(trace.headers()["allow"], "GET");
    problem(trace, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_body_over_64_kib_is_413(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let huge = json!({ "name": "x".repeat(70 * 1024), "credit_limit_cents": 1 });
    problem(
        app.post("/customers")
            .json(&huge)
            .send()
            .await
            .expect("sent"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let huge_cancel = app
        .post(&format!("/orders/{}/cancel", uuid::Uuid::new_v4()))
        .json(&json!({ "reason": "x".repeat(70 * 1024) }));
    problem(
        huge_cancel.send().await.expect("sent"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_request_id_is_echoed_and_becomes_the_correlation_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let response = app
        .post("/customers")
        .header("X-Request-Id", "trace-me-42")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let correlation: String =
        sqlx::query_scalar("SELECT metadata ->> 'correlation_id' FROM events")
            .fetch_one(&app.pool)
            .await
            .expect("metadata");
    assert_eq!(correlation, "trace-me-42");
    let generated = app.get("/healthz").send().await.expect("sent");
    assert!(!generated.headers()["x-request-id"].is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn health_readiness_and_metrics_answer(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(
        app.get("/healthz").send().await.expect("sent").status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/readyz").send().await.expect("sent").status(),
        StatusCode::OK
    );
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}

#[sqlx::test(migrations = "../migrations")]
async fn readiness_is_503_when_the_database_is_gone(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    pool.close().await;
    let response = app.get("/readyz").send().await.expect("sent");
    assert_eq!(response.headers()["retry-after"], "1");
    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
}
