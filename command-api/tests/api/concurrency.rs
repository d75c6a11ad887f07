use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;

use testkit::TestSystem;

#[sqlx::test(migrations = false)]
async fn fifty_concurrent_if_match_writers_exactly_one_wins(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let product = app.add_product("TEA", "Product TEA", 450, 10).await.0;
    let restock = || {
        app.command(&format!("/products/{product}/restock"))
            .header("If-Match", "\"1\"")
            .json(&json!({ "quantity": 1 }))
            .send()
    };
    let responses = futures_util::future::join_all((0..50).map(|_| restock())).await;
    let statuses: Vec<StatusCode> = responses
        .into_iter()
        .map(|r| r.expect("sent").status())
        .collect();
    let winners = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((winners, refused), (1, 49), "{statuses:?}");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY 1")
            .bind(product)
            .fetch_all(&app.pool)
            .await
            .expect("versions");
    assert_eq!(versions, [1, 2]);
    app.stop().await;
}

#[sqlx::test(migrations = false)]
async fn concurrent_writers_without_if_match_land_in_order_or_get_409(pool: PgPool) {
    let app = TestSystem::command_side(&pool).await;
    let product = app.add_product("TEA", "Product TEA", 450, 0).await.0;
    let restock = || {
        app.command(&format!("/products/{product}/restock"))
            .json(&json!({ "quantity": 1 }))
            .send()
    };
    let responses = futures_util::future::join_all((0..20).map(|_| restock())).await;
    // Each writer retries on the new state; one that keeps losing gets 409 (the contract allows
    // it), and nothing is ever half-written.
    let mut landed = 0;
    for response in responses {
        match response.expect("sent").status() {
            StatusCode::OK => landed += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(landed >= 10, "only {landed} of 20 writers landed");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY 1")
            .bind(product)
            .fetch_all(&app.pool)
            .await
            .expect("versions");
    assert_eq!(versions, (1..=1 + landed).collect::<Vec<i64>>());
    app.stop().await;
}
