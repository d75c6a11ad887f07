use domain::{StreamType, product::ProductEvent};
use event_store::{Metadata, NewEvent, append_many};
use read_models::names;
use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;

#[sqlx::test(migrations = false)]
async fn a_rebuild_equals_the_incremental_state_and_swaps_generations(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 10).await;
    let (order, _) = system.place_order(customer, &[(tea, 2)]).await;
    let (_, position) = system
        .send(
            &format!("/products/{tea}/restock"),
            serde_json::json!({"quantity": 3}),
        )
        .await;
    system.wait_until_caught_up().await;
    let before = system.snapshot().await;

    system
        .rebuilder()
        .rebuild(&names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
    assert_eq!(system.snapshot().await, before);

    let generations: Vec<(String, i32)> =
        sqlx::query_as("SELECT name, generation FROM projector.subscriptions WHERE name IN ('order_list', 'product_catalog', 'order_history') ORDER BY name")
            .fetch_all(&system.pool)
            .await
            .expect("generations");
    assert!(
        generations.iter().all(|(_, generation)| *generation == 2),
        "{generations:?}"
    );
    let old_tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'projection_store' AND tablename LIKE '%_g1'",
    )
    .fetch_one(&system.pool)
    .await
    .expect("tables");
    assert_eq!(old_tables, 0, "the old copy is dropped");

    // The live projector carries on in the new copy.
    let (_, later) = system
        .send(&format!("/orders/{order}/cancel"), serde_json::json!({}))
        .await;
    assert!(later > position);
    let body = system.read_at(&format!("/orders/{order}"), later).await;
    assert_eq!(body["status"], "cancelled");
    let listed = system.read_at("/orders?status=cancelled", later).await;
    assert_eq!(listed["items"][0]["id"], order.to_string());
    let (status, _) = system.read(&format!("/orders/{order}/history")).await;
    assert_eq!(status, StatusCode::OK);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn rebuilding_an_unknown_read_model_says_which_exist(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let error = system
        .rebuilder()
        .rebuild(&["nope".to_owned()])
        .await
        .expect_err("unknown");
    assert!(error.to_string().contains("order_list"), "{error}");
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_second_rebuild_of_the_same_read_model_is_refused(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    // Another process's rebuild of order_list holds the lock.
    let mut other = system.pool.acquire().await.expect("conn");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('projector rebuild order_list', 0))")
        .execute(&mut *other)
        .await
        .expect("locked");
    let error = system
        .rebuilder()
        .rebuild(&["order_list".to_owned()])
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("already running"), "{error}");
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *other)
        .await
        .expect("unlocked");
    drop(other);
    system
        .rebuilder()
        .rebuild(&["order_list".to_owned()])
        .await
        .expect("rebuilt once the other is done");
    system.stop().await;
}

/// A log longer than many of the rebuild's batches: the rebuild reads ahead of its writes, and
/// what it builds must still equal what the live projector built event by event.
#[sqlx::test(migrations = false)]
async fn a_rebuild_over_many_batches_equals_the_incremental_state(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(1_000_000).await;
    let mut products = Vec::new();
    for sku in ["TEA", "CAKE", "JAM"] {
        products.push(system.add_product(sku, sku, 100, 5).await.0);
    }
    // 3 x 3,000 restocks, interleaved across the products, appended in one statement.
    let restocks: Vec<NewEvent> = (0..3_000)
        .flat_map(|round| {
            products.iter().map(move |&product| {
                NewEvent::new(
                    product,
                    StreamType::Product,
                    round + 2,
                    &ProductEvent::ProductRestocked { quantity: 1 },
                    &Metadata::default(),
                )
                .expect("event")
            })
        })
        .collect();
    let mut conn = system.pool.acquire().await.expect("connection");
    append_many(&mut conn, &restocks).await.expect("appended");
    drop(conn);
    for product in &products {
        system.place_order(customer, &[(*product, 2)]).await;
    }
    system.wait_until_caught_up().await;
    let before = system.snapshot().await;

    system
        .rebuilder()
        .rebuild(&names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
    assert_eq!(system.snapshot().await, before);
    let (status, product) = system.read(&format!("/products/{}", products[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(product["stock_on_hand"], 3_005);
    system.stop().await;
}
