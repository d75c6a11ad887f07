use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use testkit::{TestSystem, expect_problem, expect_status};

#[sqlx::test(migrations = false)]
async fn a_duplicate_sku_is_409_whatever_its_case(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    app.add_product("TEA-1", "Product TEA-1", 450, 10).await;
    let response = app
        .command("/products")
        .json(&json!({ "sku": "tea-1", "name": "Tea again", "price_cents": 1, "stock": 1 }))
        .send()
        .await
        .expect("sent");
    expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn two_racing_creates_of_one_sku_give_one_201_and_one_409(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let create = || {
        app.command("/products")
            .json(&json!({ "sku": "RACE", "name": "Race", "price_cents": 1, "stock": 1 }))
            .send()
    };
    let (a, b) = tokio::join!(create(), create());
    let mut statuses = [a.expect("sent").status(), b.expect("sent").status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(app.event_count().await, 1);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn restocking_answers_200_with_the_new_version(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let product = app.add_product("TEA-1", "Product TEA-1", 450, 10).await.0;
    let response = app
        .command(&format!("/products/{product}/restock"))
        .json(&json!({ "quantity": 5 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body = expect_status(response, StatusCode::OK).await;
    assert_eq!(body["version"], 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn restocking_an_unknown_product_is_404_and_a_zero_quantity_422(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let unknown = Uuid::new_v4();
    let response = app
        .command(&format!("/products/{unknown}/restock"))
        .json(&json!({ "quantity": 5 }))
        .send()
        .await
        .expect("sent");
    expect_problem(response, StatusCode::NOT_FOUND).await;
    let product = app.add_product("TEA-1", "Product TEA-1", 450, 10).await.0;
    let response = app
        .command(&format!("/products/{product}/restock"))
        .json(&json!({ "quantity": 0 }))
        .send()
        .await
        .expect("sent");
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "quantity");
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn if_match_with_a_stale_version_is_412_and_appends_nothing(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let product = app.add_product("TEA-1", "Product TEA-1", 450, 10).await.0;
    let restock = |version: &str| {
        app.command(&format!("/products/{product}/restock"))
            .header("If-Match", version.to_owned())
            .json(&json!({ "quantity": 1 }))
            .send()
    };
    expect_problem(
        restock("\"7\"").await.expect("sent"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    expect_problem(
        restock("garbage").await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_status(restock("\"1\"").await.expect("sent"), StatusCode::OK).await;
    expect_problem(
        restock("\"1\"").await.expect("sent"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(app.event_count().await, 2);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_integral_number_written_as_2_0_is_an_integer(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let product = app.add_product("TEA-1", "Product TEA-1", 450, 10).await.0;
    let restock = app
        .command(&format!("/products/{product}/restock"))
        .json(&json!({ "quantity": 2.0 }));
    expect_status(restock.send().await.expect("sent"), StatusCode::OK).await;
    let fraction = app
        .command(&format!("/products/{product}/restock"))
        .json(&json!({ "quantity": 2.5 }));
    expect_problem(
        fraction.send().await.expect("sent"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    app.stop().await;
}
