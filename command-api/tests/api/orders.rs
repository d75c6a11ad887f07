use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, created, problem};

#[sqlx::test(migrations = "../migrations")]
async fn placing_an_order_is_202_pending_with_prices_captured(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(100_000).await;
    let (tea, cake) = (
        app.add_product("TEA", 450, 10).await,
        app.add_product("CAKE", 1_200, 3).await,
    );
    let response = app.place_order(customer, &[(tea, 2), (cake, 1)]).await;
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = created(response, StatusCode::ACCEPTED).await;
    assert_eq!(body["status"], "pending");
    assert_eq!(
        location,
        format!("/orders/{}", body["id"].as_str().expect("id"))
    );
    let data: serde_json::Value =
        sqlx::query_scalar("SELECT data FROM events WHERE event_type = 'OrderPlaced'")
            .fetch_one(&app.pool)
            .await
            .expect("event");
    assert_eq!(data["total_cents"], 2 * 450 + 1_200);
    assert_eq!(data["lines"][1]["unit_price_cents"], 1_200);
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_customer_and_products_are_422_naming_each_field(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let tea = app.add_product("TEA", 450, 10).await;
    let response = app
        .place_order(Uuid::new_v4(), &[(tea, 1), (Uuid::new_v4(), 1)])
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("customer_id"), json!("lines[1].product_id")]);
}

#[sqlx::test(migrations = "../migrations")]
async fn lines_must_be_one_to_fifty_distinct_products(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(100).await;
    let tea = app.add_product("TEA", 450, 10).await;
    problem(
        app.place_order(customer, &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let body = problem(
        app.place_order(customer, &[(tea, 1), (tea, 2)]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "lines[1].product_id");
    let many: Vec<_> = (0..51).map(|_| (Uuid::new_v4(), 1)).collect();
    problem(
        app.place_order(customer, &many).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn shipping_needs_an_approved_order(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(100_000).await;
    let tea = app.add_product("TEA", 450, 10).await;
    let order = app.placed_order(customer, &[(tea, 1)]).await;
    problem(
        app.post(&format!("/orders/{order}/ship"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    app.approve_order(order).await;
    let body = created(
        app.post(&format!("/orders/{order}/ship"))
            .send()
            .await
            .expect("sent"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["status"], "shipped");
    problem(
        app.post(&format!("/orders/{order}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn cancelling_takes_an_optional_reason_and_a_second_cancel_is_409(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(100_000).await;
    let tea = app.add_product("TEA", 450, 10).await;
    let first = app.placed_order(customer, &[(tea, 1)]).await;
    let second = app.placed_order(customer, &[(tea, 1)]).await;
    let body = created(
        app.post(&format!("/orders/{first}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(body["status"], "cancelled");
    let null_body = app
        .post(&format!(
            "/orders/{}/cancel",
            app.placed_order(customer, &[(tea, 1)]).await
        ))
        .header("content-type", "application/json")
        .body("null");
    created(null_body.send().await.expect("sent"), StatusCode::ACCEPTED).await;
    let with_reason = app
        .post(&format!("/orders/{second}/cancel"))
        .json(&json!({ "reason": "changed my mind" }));
    created(
        with_reason.send().await.expect("sent"),
        StatusCode::ACCEPTED,
    )
    .await;
    problem(
        app.post(&format!("/orders/{first}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    let unknown = app.post(&format!("/orders/{}/cancel", Uuid::new_v4()));
    problem(unknown.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
    let not_json = app
        .post(&format!("/orders/{second}/cancel"))
        .header("content-type", "text/plain")
        .body("why");
    problem(
        not_json.send().await.expect("sent"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_cancel_reason_with_control_characters_is_422_not_a_server_error(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let customer = app.register_customer(100_000).await;
    let tea = app.add_product("TEA", 450, 10).await;
    let order = app.placed_order(customer, &[(tea, 1)]).await;
    let response = app
        .post(&format!("/orders/{order}/cancel"))
        .header("Idempotency-Key", "nul")
        .json(&json!({ "reason": "nul\u{0}byte" }))
        .send()
        .await
        .expect("sent");
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "reason");
}
