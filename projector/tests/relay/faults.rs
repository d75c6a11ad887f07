//! The relay under faults: killed between a publish and its checkpoint, and a broker that is
//! stopped and started again while orders flow.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use async_nats::jetstream::{self, stream::Config};
use integration_events::headers;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{
    TestSystem, eventually,
    nats::{NatsServer, TestStream, shared_url},
};

use crate::{header, ids_and_types, public_events_in_log, relay_checkpoint, relay_status};

/// Makes every write of the relay's checkpoint fail, as if the process died right after the
/// broker acknowledged its batch; the relay keeps trying (and keeps failing) until it is dropped.
const BLOCK_RELAY_CHECKPOINT: &str = "
    CREATE FUNCTION test_block_relay_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'test: the relay dies before its checkpoint';
    END $$;
    CREATE TRIGGER test_block_relay_checkpoint BEFORE UPDATE ON projector.checkpoints
        FOR EACH ROW WHEN (NEW.name = 'nats_relay') EXECUTE FUNCTION test_block_relay_checkpoint();";

const UNBLOCK_RELAY_CHECKPOINT: &str = "
    DROP TRIGGER test_block_relay_checkpoint ON projector.checkpoints;
    DROP FUNCTION test_block_relay_checkpoint();";

#[sqlx::test(migrations = false)]
async fn killed_between_publish_and_checkpoint_it_publishes_nothing_twice(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let window = Duration::from_secs(1);
    let mut args = stream.projector_args();
    args.extend([
        "--nats-duplicate-window-secs".to_owned(),
        window.as_secs().to_string(),
    ]);
    let system = TestSystem::builder()
        .projector_args(args)
        .start(connect)
        .await;
    let (ada, _) = system.register_customer(100_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 100).await;
    system.wait_until_caught_up().await;

    sqlx::raw_sql(BLOCK_RELAY_CHECKPOINT)
        .execute(&system.pool)
        .await
        .expect("block the checkpoint");
    let (order, _) = system.place_order(ada, &[(tea, 1)]).await;
    let published = eventually(Duration::from_secs(30), || async {
        stream.messages().await.last().is_some_and(|last| {
            header(last, headers::EVENT_TYPE) == "order.approved"
                && header(last, headers::AGGREGATE_ID) == order.to_string()
        })
    })
    .await;
    assert!(published, "the approval never reached the stream");
    let last_id: i64 = header(
        stream.messages().await.last().expect("a message"),
        headers::MESSAGE_ID,
    )
    .parse()
    .expect("a position");
    assert!(
        relay_checkpoint(&system.pool).await < last_id,
        "the checkpoint moved past what the test meant to leave unacknowledged"
    );
    system.kill_projector().await;
    sqlx::raw_sql(UNBLOCK_RELAY_CHECKPOINT)
        .execute(&system.pool)
        .await
        .expect("unblock the checkpoint");
    // JetStream's de-duplication no longer covers those publishes: the relay must see them itself.
    wait_past_duplicate_window(&stream, window).await;

    system.start_projector().await;
    let (second, _) = system.place_order(ada, &[(tea, 2)]).await;
    system.settled_order(second).await;
    system.wait_until_caught_up().await;
    assert_eq!(
        ids_and_types(&stream.messages().await),
        public_events_in_log(&system.pool).await,
        "the stream must hold every public event once, in log order"
    );
    stream.delete().await;
    system.stop().await;
}

/// Returns once JetStream no longer drops a repeated `Nats-Msg-Id` published before the call,
/// for a stream with `window` (proved on a probe stream of the test's own).
async fn wait_past_duplicate_window(stream: &TestStream, window: Duration) {
    let jetstream = stream.jetstream().await;
    let probe = format!("{}_PROBE", stream.name);
    let subject = format!("{}.probe", stream.prefix);
    jetstream
        .create_stream(Config {
            name: probe.clone(),
            subjects: vec![subject.clone()],
            duplicate_window: window,
            ..Config::default()
        })
        .await
        .expect("a probe stream");
    // True when JetStream stored the message, false when it dropped it as a duplicate.
    let stored = |jetstream: jetstream::Context, subject: String| async move {
        !jetstream
            .send_publish(
                subject,
                jetstream::message::PublishMessage::build().message_id("probe"),
            )
            .await
            .expect("sent")
            .await
            .expect("acknowledged")
            .duplicate
    };
    assert!(stored(jetstream.clone(), subject.clone()).await);
    assert!(
        !stored(jetstream.clone(), subject.clone()).await,
        "no de-duplication at all"
    );
    let passed = eventually(window * 10, || stored(jetstream.clone(), subject.clone())).await;
    let _ = jetstream.delete_stream(&probe).await;
    assert!(passed, "the duplicate window did not pass");
}

#[sqlx::test(migrations = false)]
async fn with_the_broker_down_it_falls_behind_and_then_catches_up_losing_nothing(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut server = NatsServer::start().await;
    let stream = TestStream::new(&server.url);
    let system = TestSystem::builder()
        .projector_args(stream.projector_args())
        .start(connect)
        .await;
    let (ada, _) = system.register_customer(100_000_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 1_000_000).await;

    let outage_over = AtomicBool::new(false);
    let placed = AtomicUsize::new(0);
    let orders_flow = async {
        while !outage_over.load(Ordering::SeqCst) || placed.load(Ordering::SeqCst) < 30 {
            system.place_order(ada, &[(tea, 1)]).await;
            placed.fetch_add(1, Ordering::SeqCst);
        }
    };
    let outage = async {
        let flowing = eventually(Duration::from_secs(30), || async {
            stream.messages().await.len() >= 5
        })
        .await;
        assert!(flowing, "the relay published nothing before the outage");
        server.stop();
        let placed_at_stop = placed.load(Ordering::SeqCst);
        // Behind and failing in /projections, while the read models keep up without the broker.
        let behind = eventually(Duration::from_secs(30), || async {
            let relay = relay_status(&system).await;
            relay["status"] == "failing"
                && relay["lag_events"].as_i64().is_some_and(|lag| lag > 0)
                && relay["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("NATS"))
                && placed.load(Ordering::SeqCst) > placed_at_stop + 3
        })
        .await;
        assert!(
            behind,
            "the relay did not show as behind: {}",
            relay_status(&system).await
        );
        let (during, position) = system.place_order(ada, &[(tea, 1)]).await;
        let order = system.read_at(&format!("/orders/{during}"), position).await;
        assert_eq!(order["id"], json!(during));
        server.restart().await;
        outage_over.store(true, Ordering::SeqCst);
    };
    tokio::join!(orders_flow, outage);

    system.wait_until_caught_up().await;
    let messages = stream.messages().await;
    assert_eq!(
        ids_and_types(&messages),
        public_events_in_log(&system.pool).await,
        "after the outage the stream must hold every public event once, in log order"
    );
    assert!(messages.len() > 60, "only {} messages", messages.len());
    stream.delete().await;
    system.stop().await;
}
