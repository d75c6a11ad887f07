//! What every endpoint does alike: auth, problem+json for actix's own errors, body limits,
//! request ids, health, readiness and metrics.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::{ConnectOptions, PgPool};

use testkit::{TOKEN, TestSystem, expect_problem};

#[sqlx::test(migrations = false)]
async fn commands_without_the_right_token_are_401(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let body = json!({ "name": "Ada", "credit_limit_cents": 1 });
    let url = format!("{}/customers", app.command_base);
    let missing = app
        .client
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    expect_problem(missing, StatusCode::UNAUTHORIZED).await;
    let wrong = app
        .client
        .post(&url)
        .bearer_auth(format!("{TOKEN}x"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    expect_problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

/// Rotation without downtime: while COMMAND_API_TOKEN lists the old and the new token, commands
/// with either are accepted.
#[sqlx::test(migrations = false)]
async fn every_token_of_a_comma_separated_list_is_accepted(pool: PgPool) {
    let app = TestSystem::builder()
        .command_side_only()
        .command_api_token(&format!(" old-token , {TOKEN} "))
        .start((*pool.connect_options()).clone())
        .await;
    let url = format!("{}/customers", app.command_base);
    for (token, expected) in [
        ("old-token", StatusCode::CREATED),
        (TOKEN, StatusCode::CREATED),
        ("old-token,test-token", StatusCode::UNAUTHORIZED),
        ("other", StatusCode::UNAUTHORIZED),
    ] {
        let response = app
            .client
            .post(&url)
            .bearer_auth(token)
            .json(&json!({ "name": "Ada", "credit_limit_cents": 1 }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), expected, "{token}");
    }
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn actix_extractor_errors_are_problem_json(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let malformed = app
        .command("/customers")
        .header("content-type", "application/json")
        .body("{nope");
    expect_problem(
        malformed.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let wrong_type = app
        .command("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": "lots" }));
    expect_problem(
        wrong_type.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let unknown_field = app
        .command("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1, "vip": true }));
    expect_problem(
        unknown_field.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let float = app
        .command("/customers")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 1.5 }));
    expect_problem(float.send().await.expect("sent"), StatusCode::BAD_REQUEST).await;
    let not_json = app
        .command("/customers")
        .header("content-type", "text/plain")
        .body("{}");
    expect_problem(
        not_json.send().await.expect("sent"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let bad_uuid = app
        .command("/products/not-a-uuid/restock")
        .json(&json!({ "quantity": 1 }));
    expect_problem(bad_uuid.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
    expect_problem(
        app.command_api_get("/nowhere").send().await.expect("sent"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let wrong_method = app
        .command_api_get("/customers")
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong_method.headers()["allow"], "POST");
    expect_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
    let trace = app
        .client
        .request(
            reqwest::Method::TRACE,
            format!("{}/healthz", app.command_base),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(trace.headers()["allow"], "GET");
    expect_problem(trace, StatusCode::METHOD_NOT_ALLOWED).await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_body_over_64_kib_is_413(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let huge = json!({ "name": "x".repeat(70 * 1024), "credit_limit_cents": 1 });
    expect_problem(
        app.command("/customers")
            .json(&huge)
            .send()
            .await
            .expect("sent"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let huge_cancel = app
        .command(&format!("/orders/{}/cancel", uuid::Uuid::new_v4()))
        .json(&json!({ "reason": "x".repeat(70 * 1024) }));
    expect_problem(
        huge_cancel.send().await.expect("sent"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn the_request_id_is_echoed_and_becomes_the_correlation_id(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let response = app
        .command("/customers")
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
    let generated = app.command_api_get("/healthz").send().await.expect("sent");
    assert!(!generated.headers()["x-request-id"].is_empty());
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn health_readiness_and_metrics_answer(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    assert_eq!(
        app.command_api_get("/healthz")
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.command_api_get("/readyz")
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::OK
    );
    let metrics = app
        .command_api_get("/metrics")
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn readiness_is_503_when_the_database_is_gone(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    // The database refuses new sessions and loses its open ones, as in an outage.
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_owned();
    let mut admin = pool
        .connect_options()
        .as_ref()
        .clone()
        .database("postgres")
        .connect()
        .await
        .expect("admin session");
    let allow =
        |allowed: bool| format!("ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS {allowed}");
    sqlx::query(&allow(false))
        .execute(&mut admin)
        .await
        .expect("refuse sessions");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&database)
        .execute(&mut admin)
        .await
        .expect("end sessions");
    let response = app.command_api_get("/readyz").send().await.expect("sent");
    assert_eq!(response.headers()["retry-after"], "1");
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    sqlx::query(&allow(true))
        .execute(&mut admin)
        .await
        .expect("allow sessions again");
    app.stop().await;
}
