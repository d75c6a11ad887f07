use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use testkit::{TestSystem, expect_problem, expect_status};

#[sqlx::test(migrations = false)]
async fn placing_an_order_is_202_pending_with_prices_captured(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(100_000).await.0;
    let (tea, cake) = (
        app.add_product("TEA", "Product TEA", 450, 10).await.0,
        app.add_product("CAKE", "Product CAKE", 1_200, 3).await.0,
    );
    let response = app.try_place_order(customer, &[(tea, 2), (cake, 1)]).await;
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body = expect_status(response, StatusCode::ACCEPTED).await;
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
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_customer_and_products_are_422_naming_each_field(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let response = app
        .try_place_order(Uuid::new_v4(), &[(tea, 1), (Uuid::new_v4(), 1)])
        .await;
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, [json!("customer_id"), json!("lines[1].product_id")]);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn lines_must_be_one_to_fifty_distinct_products(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(100).await.0;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    expect_problem(
        app.try_place_order(customer, &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let body = expect_problem(
        app.try_place_order(customer, &[(tea, 1), (tea, 2)]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "lines[1].product_id");
    let many: Vec<_> = (0..51).map(|_| (Uuid::new_v4(), 1)).collect();
    expect_problem(
        app.try_place_order(customer, &many).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn shipping_needs_an_approved_order(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(100_000).await.0;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let order = app.place_order(customer, &[(tea, 1)]).await.0;
    expect_problem(
        app.command(&format!("/orders/{order}/ship"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    approve_order(&app.pool, order).await;
    let body = expect_status(
        app.command(&format!("/orders/{order}/ship"))
            .send()
            .await
            .expect("sent"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["status"], "shipped");
    expect_problem(
        app.command(&format!("/orders/{order}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn cancelling_takes_an_optional_reason_and_a_second_cancel_is_409(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(100_000).await.0;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let first = app.place_order(customer, &[(tea, 1)]).await.0;
    let second = app.place_order(customer, &[(tea, 1)]).await.0;
    let body = expect_status(
        app.command(&format!("/orders/{first}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(body["status"], "cancelled");
    let null_body = app
        .command(&format!(
            "/orders/{}/cancel",
            app.place_order(customer, &[(tea, 1)]).await.0
        ))
        .header("content-type", "application/json")
        .body("null");
    expect_status(null_body.send().await.expect("sent"), StatusCode::ACCEPTED).await;
    let with_reason = app
        .command(&format!("/orders/{second}/cancel"))
        .json(&json!({ "reason": "changed my mind" }));
    expect_status(
        with_reason.send().await.expect("sent"),
        StatusCode::ACCEPTED,
    )
    .await;
    expect_problem(
        app.command(&format!("/orders/{first}/cancel"))
            .send()
            .await
            .expect("sent"),
        StatusCode::CONFLICT,
    )
    .await;
    let unknown = app.command(&format!("/orders/{}/cancel", Uuid::new_v4()));
    expect_problem(unknown.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
    let not_json = app
        .command(&format!("/orders/{second}/cancel"))
        .header("content-type", "text/plain")
        .body("why");
    expect_problem(
        not_json.send().await.expect("sent"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_cancel_reason_with_control_characters_is_422_not_a_server_error(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let customer = app.register_customer(100_000).await.0;
    let tea = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let order = app.place_order(customer, &[(tea, 1)]).await.0;
    let response = app
        .command(&format!("/orders/{order}/cancel"))
        .header("Idempotency-Key", "nul")
        .json(&json!({ "reason": "nul\u{0}byte" }))
        .send()
        .await
        .expect("sent");
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "reason");
    app.stop().await;
}

/// Writes the order's saga outcome straight into the log, as the projector's saga would.
async fn approve_order(pool: &sqlx::PgPool, order_id: uuid::Uuid) {
    use domain::{
        Aggregate,
        order::{Order, OrderCommand},
    };
    use event_store::{CommandOptions, execute_in_tx};
    let mut tx = pool.begin().await.expect("begin");
    execute_in_tx::<Order, _>(&mut tx, order_id, &CommandOptions::default(), |order| {
        order.decide(OrderCommand::Approve)
    })
    .await
    .expect("approved");
    tx.commit().await.expect("commit");
}
