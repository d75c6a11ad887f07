use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;

#[sqlx::test(migrations = false)]
async fn a_client_reads_its_own_write_with_min_position(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, position) = system.register_customer(5_000).await;
    let response = system
        .query(&format!("/customers/{customer}?min_position={position}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let reflected: i64 = response.headers()["x-position"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(reflected >= position);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["credit_available_cents"], 5_000);
    assert_eq!(body["version"], 1);

    let (product, position) = system.add_product("TEA", "Green Tea", 450, 7).await;
    let product_doc = system
        .read_at(&format!("/products/{product}"), position)
        .await;
    assert_eq!(
        (
            product_doc["stock_on_hand"].clone(),
            product_doc["stock_available"].clone()
        ),
        (json!(7), json!(7))
    );
    let (order, position) = system.place_order(customer, &[(product, 2)]).await;
    let order_doc = system.read_at(&format!("/orders/{order}"), position).await;
    assert_eq!(order_doc["total_cents"], 900);
    let listed = system
        .read_at(&format!("/orders?customer_id={customer}"), position)
        .await;
    assert_eq!(listed["items"][0]["id"], order.to_string());
    let history = system
        .read_at(&format!("/orders/{order}/history"), position)
        .await;
    assert_eq!(history["items"][0]["type"], "OrderPlaced");
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_position_not_reached_in_time_is_503_with_retry_after(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, position) = system.register_customer(1).await;
    system
        .read_at(&format!("/customers/{customer}"), position)
        .await;
    // With the projector down, a newer write cannot be reached.
    system.kill_projector().await;
    let (_, later) = system
        .send("/customers", json!({"name": "Bo", "credit_limit_cents": 1}))
        .await;
    let started = std::time::Instant::now();
    let response = system
        .query(&format!("/customers/{customer}?min_position={later}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "it waited for the timeout"
    );
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_position_beyond_the_newest_event_is_400_at_once(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, position) = system.register_customer(1).await;
    let (status, body) = system
        .read(&format!(
            "/customers/{customer}?min_position={}",
            position * 1_000
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("beyond")),
        "{body}"
    );
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn projections_show_every_subscription_with_lag_zero_when_quiet(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (_, position) = system.register_customer(1).await;
    system.wait_until_caught_up().await;
    let (status, body) = system.read("/projections").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["head_position"], position);
    let names: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    for name in read_models::names::READ_MODELS {
        assert!(names.contains(&name), "{name} missing from {body}");
    }
    for item in body["items"].as_array().expect("items") {
        assert_eq!(
            (item["lag_events"].clone(), item["status"].clone()),
            (json!(0), json!("live")),
            "{body}"
        );
        assert_eq!(item["position"], position, "{body}");
    }
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn projections_with_min_position_answers_once_every_read_model_has_it(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (_, position) = system.register_customer(1).await;
    let body = system.read_at("/projections", position).await;
    for item in body["items"].as_array().expect("items") {
        let name = item["name"].as_str().expect("name");
        if read_models::names::READ_MODELS.contains(&name) {
            assert!(
                item["position"].as_i64().expect("position") >= position,
                "{body}"
            );
        }
    }
    system.stop().await;
}
