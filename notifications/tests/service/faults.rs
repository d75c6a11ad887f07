//! The service killed and restarted, and the broker stopped and restarted while orders flow.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use async_nats::jetstream::consumer::PullConsumer;
use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{
    eventually,
    nats::{NatsServer, TestStream, shared_url},
};

use crate::{
    RunningService, dropped_copies, events_to_notify, notified_events, shop,
    wait_until_all_notified,
};

#[sqlx::test(migrations = false)]
async fn killed_and_restarted_it_resumes_from_its_durable_consumer(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let system = shop(connect.clone(), &stream).await;
    let service = RunningService::start(&connect, &stream).await;
    let (ada, _) = system.register_customer(1_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000).await;
    for _ in 0..5 {
        system.place_order(ada, &[(tea, 1)]).await;
    }
    system.wait_until_caught_up().await;
    let before = wait_until_all_notified(&system.pool).await;
    let jetstream = stream.jetstream().await;
    let mut consumer: PullConsumer = jetstream
        .get_consumer_from_stream("notifications", &stream.name)
        .await
        .expect("the service's durable consumer");
    let all_acknowledged = eventually(Duration::from_secs(10), || {
        let consumer = consumer.clone();
        async move {
            let mut consumer = consumer;
            consumer
                .info()
                .await
                .is_ok_and(|info| info.num_ack_pending == 0 && info.num_pending == 0)
        }
    })
    .await;
    assert!(all_acknowledged, "the service left messages unacknowledged");
    service.kill(&system.pool).await;

    // Orders go on while it is down: they wait for it in its durable consumer.
    for _ in 0..5 {
        let (order, _) = system.place_order(ada, &[(tea, 1)]).await;
        system.settled_order(order).await;
    }
    let waiting = consumer.info().await.expect("consumer info").num_pending;
    assert!(
        waiting >= 10,
        "only {waiting} messages wait for the service"
    );

    let service = RunningService::start(&connect, &stream).await;
    let after = wait_until_all_notified(&system.pool).await;
    assert!(after.len() >= before.len() + 5);
    assert_eq!(
        notified_events(&system.pool).await,
        after,
        "each outcome once"
    );
    // It went on from where it was: nothing it had acknowledged came again.
    assert_eq!(dropped_copies(&system.pool).await, 0);
    service.stop().await;
    stream.delete().await;
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn with_the_broker_stopped_and_restarted_while_orders_flow_each_message_arrives_once(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut server = NatsServer::start().await;
    let stream = TestStream::new(&server.url);
    let system = shop(connect.clone(), &stream).await;
    let service = RunningService::start(&connect, &stream).await;
    let (ada, _) = system.register_customer(100_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000_000).await;

    let outage_over = AtomicBool::new(false);
    let placed = AtomicUsize::new(0);
    let orders_flow = async {
        while !outage_over.load(Ordering::SeqCst) || placed.load(Ordering::SeqCst) < 30 {
            let (order, _) = system.place_order(ada, &[(tea, 1)]).await;
            if placed.fetch_add(1, Ordering::SeqCst).is_multiple_of(3) {
                system.cancel(order).await;
            }
        }
    };
    let outage = async {
        let flowing = eventually(Duration::from_secs(30), || async {
            notified_events(&system.pool).await.len() >= 3
        })
        .await;
        assert!(flowing, "nothing was notified before the outage");
        server.stop();
        let placed_at_stop = placed.load(Ordering::SeqCst);
        let noticed = eventually(Duration::from_secs(30), || async {
            let (status, _) = service.get("/readyz").await;
            let (_, projections) = system.read("/projections").await;
            let relay_failing = projections["items"].as_array().is_some_and(|items| {
                items.iter().any(|item| {
                    item["name"] == projector::relay::NAME
                        && item["status"] == "failing"
                        && item["lag_events"].as_i64().is_some_and(|lag| lag > 0)
                })
            });
            status == StatusCode::SERVICE_UNAVAILABLE
                && relay_failing
                && placed.load(Ordering::SeqCst) > placed_at_stop + 3
        })
        .await;
        assert!(
            noticed,
            "neither the relay nor the service noticed the broker was gone"
        );
        server.restart().await;
        outage_over.store(true, Ordering::SeqCst);
    };
    tokio::join!(orders_flow, outage);

    system.wait_until_caught_up().await;
    let expected = wait_until_all_notified(&system.pool).await;
    assert_eq!(
        notified_events(&system.pool).await,
        expected,
        "every outcome notified exactly once"
    );
    assert_eq!(expected, events_to_notify(&system.pool).await);
    let (status, _) = service.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    service.stop().await;
    stream.delete().await;
    system.stop().await;
}
