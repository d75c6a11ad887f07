//! What customers are told, over HTTP, and that every copy of an event is dropped.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{
    eventually,
    nats::{TestStream, shared_url},
};

use crate::{
    RunningService, dropped_copies, events_to_notify, notified_events, shop,
    wait_until_all_notified,
};

#[sqlx::test(migrations = false)]
async fn customers_are_told_when_orders_are_approved_rejected_cancelled_or_shipped(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let system = shop(connect.clone(), &stream).await;
    let service = RunningService::start(&connect, &stream).await;
    let (ada, _) = system.register_customer(10_000).await;
    let (bob, _) = system.register_customer(100).await;
    let (tea, _) = system.add_product("TEA", "Tea", 450, 5).await;
    let (shipped, _) = system.place_order(ada, &[(tea, 2)]).await;
    let (cancelled, _) = system.place_order(ada, &[(tea, 1)]).await;
    let (no_stock, _) = system.place_order(ada, &[(tea, 9)]).await;
    let (no_credit, _) = system.place_order(bob, &[(tea, 1)]).await;
    system.wait_until_caught_up().await;
    assert_eq!(system.ship(shipped).await.status(), StatusCode::OK);
    system.cancel(cancelled).await;
    wait_until_all_notified(&system.pool).await;

    let kinds_of = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["kind"].as_str().expect("kind").to_owned())
            .collect()
    };
    let (status, body) = service
        .get(&format!("/orders/{shipped}/notifications"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kinds_of(&body), ["approved", "shipped"], "{body}");
    let approval = &body["items"][0];
    assert_eq!(approval["customer_id"], json!(ada));
    assert_eq!(approval["subject"], "Your order is confirmed");
    assert!(
        approval["body"]
            .as_str()
            .is_some_and(|text| text.contains("9.00")),
        "{approval}"
    );
    let (_, body) = service
        .get(&format!("/orders/{cancelled}/notifications"))
        .await;
    assert_eq!(kinds_of(&body), ["approved", "cancelled"], "{body}");
    let (_, body) = service
        .get(&format!("/orders/{no_stock}/notifications"))
        .await;
    assert_eq!(kinds_of(&body), ["rejected"], "{body}");
    assert!(
        body["items"][0]["body"]
            .as_str()
            .is_some_and(|t| t.contains("out of stock")),
        "{body}"
    );
    let (_, body) = service
        .get(&format!("/orders/{no_credit}/notifications"))
        .await;
    assert!(
        body["items"][0]["body"]
            .as_str()
            .is_some_and(|t| t.contains("credit")),
        "{body}"
    );

    // A customer's notifications, newest first, a page at a time.
    let (_, page) = service
        .get(&format!("/customers/{ada}/notifications?limit=3"))
        .await;
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, rest) = service
        .get(&format!(
            "/customers/{ada}/notifications?limit=3&cursor={cursor}"
        ))
        .await;
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let both: Vec<Value> = [&page, &rest]
        .iter()
        .flat_map(|body| body["items"].as_array().expect("items").clone())
        .collect();
    let ids: Vec<i64> = both
        .iter()
        .map(|item| {
            item["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .expect("an id")
        })
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "not newest first: {ids:?}"
    );
    let mut kinds = [kinds_of(&page), kinds_of(&rest)].concat();
    kinds.sort();
    assert_eq!(
        kinds,
        ["approved", "approved", "cancelled", "rejected", "shipped"]
    );
    let (_, nobody) = service
        .get(&format!(
            "/customers/{}/notifications",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(nobody["items"], json!([]));
    for bad in ["limit=0", "limit=101", "cursor=garbage", "colour=blue"] {
        let (status, problem) = service
            .get(&format!("/customers/{ada}/notifications?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    let (status, _) = service.get("/orders/not-a-uuid/notifications").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = service.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        notified_events(&system.pool).await,
        events_to_notify(&system.pool).await
    );
    assert_eq!(dropped_copies(&system.pool).await, 0);
    service.stop().await;
    stream.delete().await;
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn copies_of_handled_events_are_dropped_by_the_inbox_whenever_they_come(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let system = shop(connect.clone(), &stream).await;
    let service = RunningService::start(&connect, &stream).await;
    let (ada, _) = system.register_customer(10_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 5).await;
    for _ in 0..3 {
        system.place_order(ada, &[(tea, 1)]).await;
    }
    // Every order decided and relayed first: waiting for the notifications alone could return
    // after the first decision, and a later one would then arrive as new, not as a copy.
    system.wait_until_caught_up().await;
    let notified = wait_until_all_notified(&system.pool).await;
    service.stop().await;
    system.kill_projector().await;

    // An operator replays the stream for this service: the durable consumer is deleted and made
    // again from the first message, long after JetStream's duplicate window.
    let jetstream = stream.jetstream().await;
    let mut consumer: PullConsumer = jetstream
        .get_consumer_from_stream("notifications", &stream.name)
        .await
        .expect("the service's durable consumer");
    assert_eq!(
        consumer
            .info()
            .await
            .expect("consumer info")
            .num_ack_pending,
        0,
        "everything was acknowledged"
    );
    jetstream
        .delete_consumer_from_stream("notifications", &stream.name)
        .await
        .expect("deleted");
    // And a copy of the last message is published again under another message id.
    let last = stream.messages().await.pop().expect("a message");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "replayed-by-hand");
    jetstream
        .publish_with_headers(last.subject.to_string(), headers, last.payload.clone())
        .await
        .expect("sent")
        .await
        .expect("stored");

    let service = crate::RunningService::start(&connect, &stream).await;
    let order_events = stream
        .envelopes()
        .await
        .iter()
        .filter(|envelope| envelope.aggregate.kind == "order")
        .count() as i64;
    let dropped = eventually(Duration::from_secs(30), || async {
        dropped_copies(&system.pool).await == order_events
    })
    .await;
    assert!(
        dropped,
        "{} copies dropped; {order_events} expected (every order message again, and the copy)",
        dropped_copies(&system.pool).await
    );
    assert_eq!(
        notified_events(&system.pool).await,
        notified,
        "a copy made a second notification"
    );
    service.stop().await;
    stream.delete().await;
    system.stop().await;
}
