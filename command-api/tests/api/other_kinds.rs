//! An id that exists but names another kind of aggregate is "not found" for the kind a command
//! expects: 404 in the path, 422 in the body. Never a 500, and nothing is appended.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use testkit::{TestSystem, expect_problem};

#[sqlx::test(migrations = false)]
async fn an_id_of_another_kind_names_nothing_for_every_command(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let (customer, _) = app.register_customer(10_000).await;
    let (product, _) = app.add_product("TEA", "Tea", 100, 5).await;
    let (order, _) = app.place_order(customer, &[(product, 1)]).await;
    let events = app.event_count().await;

    // In the body: 422 naming the field.
    let body = expect_problem(
        app.try_place_order(product, &[(product, 1)]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "customer_id", "{body}");
    let body = expect_problem(
        app.try_place_order(customer, &[(customer, 1), (order, 1)])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|error| error["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("lines[0].product_id"), json!("lines[1].product_id")]
    );

    // In the path: 404.
    for (path, body) in [
        (format!("/orders/{product}/cancel"), None),
        (format!("/orders/{customer}/ship"), None),
        (
            format!("/products/{customer}/restock"),
            Some(json!({ "quantity": 1 })),
        ),
        (
            format!("/products/{order}/restock"),
            Some(json!({ "quantity": 1 })),
        ),
    ] {
        let request = app.command(&path);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let problem =
            expect_problem(request.send().await.expect("sent"), StatusCode::NOT_FOUND).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no ")),
            "{path}: {problem}"
        );
    }
    assert_eq!(app.event_count().await, events, "nothing was appended");
    app.stop().await;
}
