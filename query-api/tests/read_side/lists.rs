use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;
use uuid::Uuid;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

#[sqlx::test(migrations = false)]
async fn orders_list_newest_first_with_filters_and_keyset_pages(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (ada, _) = system.register_customer(1_000_000).await;
    let (bo, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;
    let mut placed = Vec::new();
    let mut last = 0;
    for customer in [ada, bo, ada, ada, bo] {
        let (order, position) = system.place_order(customer, &[(tea, 1)]).await;
        placed.push((customer, order));
        last = position;
    }
    let (cancelled, position) = system
        .send(
            &format!("/orders/{}/cancel", placed[0].1),
            serde_json::json!({}),
        )
        .await;
    last = last.max(position);

    let newest_first: Vec<String> = placed
        .iter()
        .rev()
        .map(|(_, order)| order.to_string())
        .collect();
    let first = system.read_at("/orders?limit=2", last).await;
    assert_eq!(ids(&first), newest_first[..2]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = system
        .read_at(&format!("/orders?limit=2&cursor={cursor}"), last)
        .await;
    assert_eq!(ids(&second), newest_first[2..4]);
    let cursor = second["next_cursor"].as_str().expect("a last page");
    let third = system
        .read_at(&format!("/orders?limit=2&cursor={cursor}"), last)
        .await;
    assert_eq!(ids(&third), newest_first[4..]);
    assert!(third["next_cursor"].is_null());

    let adas = system
        .read_at(&format!("/orders?customer_id={ada}"), last)
        .await;
    assert_eq!(ids(&adas).len(), 3);
    let cancelled_orders = system.read_at("/orders?status=cancelled", last).await;
    assert_eq!(ids(&cancelled_orders), [cancelled.to_string()]);
    let bos_cancelled = system
        .read_at(&format!("/orders?customer_id={bo}&status=cancelled"), last)
        .await;
    assert!(ids(&bos_cancelled).is_empty());
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn malformed_or_out_of_range_parameters_are_400_never_clamped(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    for path in [
        "/orders?limit=0",
        "/orders?limit=101",
        "/orders?limit=ten",
        "/orders?cursor=garbled",
        "/orders?status=lost",
        "/orders?customer_id=nope",
        "/orders?colour=blue",
        "/products?limit=0",
        "/products?cursor=%%%",
        "/customers/0193a5c4-8f00-7000-8000-000000000001?min_position=-1",
        "/products?q=nul%00byte",
        "/projections?colour=blue",
        "/products?cursor=WyJcdTAwMDAiLCAiMDE5M2E1YzQtOGYwMC03MDAwLTgwMDAtMDAwMDAwMDAwMDAxIl0",
    ] {
        let (status, body) = system.read(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["status"], 400, "{path}: {body}");
    }
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn products_are_searched_by_name_ignoring_case_in_name_order(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let mut last = 0;
    for (sku, name) in [
        ("T1", "Green Tea"),
        ("T2", "black TEA"),
        ("C1", "Coffee"),
        ("T3", "Teapot 100%"),
    ] {
        last = system.add_product(sku, name, 100, 1).await.1;
    }
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let tea = system.read_at("/products?q=tEa", last).await;
    assert_eq!(names(&tea), ["black TEA", "Green Tea", "Teapot 100%"]);
    let literal_percent = system.read_at("/products?q=0%25", last).await;
    assert_eq!(names(&literal_percent), ["Teapot 100%"]);
    let first = system.read_at("/products?limit=3", last).await;
    assert_eq!(names(&first), ["black TEA", "Coffee", "Green Tea"]);
    let cursor = first["next_cursor"].as_str().expect("next page");
    let rest = system
        .read_at(&format!("/products?limit=3&cursor={cursor}"), last)
        .await;
    assert_eq!(names(&rest), ["Teapot 100%"]);
    assert!(rest["next_cursor"].is_null());
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn history_lists_the_orders_events_in_order(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(1_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 10).await;
    let (order, _) = system.place_order(customer, &[(tea, 1)]).await;
    let (_, position) = system
        .send(
            &format!("/orders/{order}/cancel"),
            serde_json::json!({"reason": "test"}),
        )
        .await;
    let history = system
        .read_at(&format!("/orders/{order}/history"), position)
        .await;
    let items = history["items"].as_array().expect("items");
    let order_events: Vec<&Value> = items
        .iter()
        .filter(|item| item["stream_type"] == "order")
        .collect();
    assert_eq!(order_events[0]["type"], "OrderPlaced");
    assert_eq!(
        order_events.last().expect("events")["type"],
        "OrderCancelled"
    );
    assert_eq!(
        order_events.last().expect("events")["data"]["reason"],
        "test"
    );
    let positions: Vec<i64> = items
        .iter()
        .map(|item| item["position"].as_i64().expect("position"))
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn unknown_ids_are_404_as_problem_json(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    system.wait_until_caught_up().await;
    let unknown = Uuid::new_v4();
    for path in [
        format!("/orders/{unknown}"),
        format!("/orders/{unknown}/history"),
        format!("/products/{unknown}"),
        format!("/customers/{unknown}"),
        "/customers/not-a-uuid".to_owned(),
        "/nowhere".to_owned(),
    ] {
        let response = system.query(&path).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    system.stop().await;
}
