//! What the relay publishes, where, and with which settings.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, StorageType};
use integration_events::{Envelope, IntegrationEvent, headers, subjects};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{
    TestSystem, eventually,
    nats::{TestStream, shared_url},
};

use crate::{header, ids_and_types, public_events_in_log, relay_status, stream_config};

#[sqlx::test(migrations = false)]
async fn every_public_event_reaches_the_stream_once_in_log_order_with_its_metadata(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let jetstream = stream.jetstream().await;
    // A stream of that name from an older setup: the relay brings it to the documented settings.
    jetstream
        .create_stream(Config {
            name: stream.name.clone(),
            subjects: vec![subjects::all(&stream.prefix)],
            duplicate_window: Duration::from_secs(10),
            max_age: Duration::from_secs(3_600),
            ..Config::default()
        })
        .await
        .expect("an older stream");
    let system = TestSystem::builder()
        .projector_args(stream.projector_args())
        .start(connect)
        .await;

    let response = system
        .command("/customers")
        .header("X-Request-Id", "relay-test-ada")
        .json(&json!({ "name": "Ada", "credit_limit_cents": 100_000 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (tea, _) = system.add_product("TEA", "Tea", 450, 3).await;
    let ada = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT stream_id FROM events WHERE event_type = 'CustomerRegistered'",
    )
    .fetch_one(&system.pool)
    .await
    .expect("Ada");
    system
        .send(
            &format!("/products/{tea}/restock"),
            json!({ "quantity": 2 }),
        )
        .await;
    let (shipped, _) = system.place_order(ada, &[(tea, 2)]).await;
    let (cancelled, _) = system.place_order(ada, &[(tea, 1)]).await;
    let (rejected, _) = system.place_order(ada, &[(tea, 50)]).await;
    system.wait_until_caught_up().await;
    assert_eq!(system.ship(shipped).await.status(), StatusCode::OK);
    assert_eq!(
        system.cancel(cancelled).await.status(),
        StatusCode::ACCEPTED
    );
    system.wait_until_caught_up().await;

    let config = stream_config(&jetstream, &stream.name).await;
    assert_eq!(config.subjects, vec![format!("{}.events.>", stream.prefix)]);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    assert_eq!(config.max_age, Duration::from_secs(7 * 24 * 3_600));
    assert_eq!(config.storage, StorageType::File);
    assert!(config.deny_delete);

    // Exactly the public events of the log, each once, in log order.
    let messages = stream.messages().await;
    let expected = public_events_in_log(&system.pool).await;
    assert_eq!(ids_and_types(&messages), expected);
    let types: Vec<&str> = expected.iter().map(|(_, t)| t.as_str()).collect();
    for public in [
        "customer.registered",
        "product.added",
        "product.restocked",
        "order.placed",
        "order.approved",
        "order.rejected",
        "order.cancelled",
        "order.shipped",
    ] {
        assert!(types.contains(&public), "no {public} in {types:?}");
    }

    for message in &messages {
        let envelope: Envelope = serde_json::from_slice(&message.payload).expect("an envelope");
        assert_eq!(
            message.subject.as_str(),
            format!("{}.events.{}", stream.prefix, envelope.event_type)
        );
        assert_eq!(header(message, headers::MESSAGE_ID), envelope.id);
        assert_eq!(header(message, headers::EVENT_VERSION), "1");
        assert_eq!(
            header(message, headers::AGGREGATE_ID),
            envelope.aggregate.id.to_string()
        );
        assert_eq!(
            header(message, headers::AGGREGATE_VERSION),
            envelope.aggregate.version.to_string()
        );
        assert_eq!(header(message, headers::CONTENT_TYPE), "application/json");
        assert_eq!(envelope.source, "cqrs-shop");
        let event = IntegrationEvent::decode(&envelope)
            .expect("the public shape")
            .expect("a known type");
        match event {
            IntegrationEvent::CustomerRegistered(customer) => {
                assert_eq!(header(message, headers::CORRELATION_ID), "relay-test-ada");
                assert_eq!(
                    (customer.customer_id, customer.credit_limit_cents),
                    (ada, 100_000)
                );
            }
            IntegrationEvent::OrderRejected(order) => {
                assert_eq!((order.order_id, order.customer_id), (rejected, ada));
                assert_eq!(
                    (order.total_cents, order.reason.as_str()),
                    (22_500, "insufficient_stock")
                );
                // The saga's rejection names the event that caused it.
                assert!(!header(message, headers::CAUSATION_ID).is_empty());
            }
            IntegrationEvent::OrderShipped(order) => {
                assert_eq!(
                    (order.order_id, order.customer_id, order.total_cents),
                    (shipped, ada, 900)
                );
            }
            IntegrationEvent::OrderCancelled(order) => {
                assert_eq!((order.order_id, order.total_cents), (cancelled, 450));
            }
            _ => {}
        }
    }
    let relay = relay_status(&system).await;
    assert_eq!(
        (relay["status"].clone(), relay["lag_events"].clone()),
        (json!("live"), json!(0)),
        "{relay}"
    );

    stream.delete().await;
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_stream_written_by_another_system_is_refused(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let jetstream = stream.jetstream().await;
    jetstream
        .create_stream(Config {
            name: stream.name.clone(),
            subjects: vec![subjects::all(&stream.prefix)],
            ..Config::default()
        })
        .await
        .expect("a stream");
    // Another shop's relay got there first: its last event is not one of this log.
    let mut foreign = async_nats::HeaderMap::new();
    foreign.insert(headers::MESSAGE_ID, "987654321");
    jetstream
        .publish_with_headers(
            format!("{}.events.order.placed", stream.prefix),
            foreign,
            "{}".into(),
        )
        .await
        .expect("sent")
        .await
        .expect("stored");
    let system = TestSystem::builder()
        .projector_args(stream.projector_args())
        .start(connect)
        .await;
    system.register_customer(1).await;
    let refused = eventually(Duration::from_secs(20), || async {
        let relay = relay_status(&system).await;
        relay["status"] == "failing"
            && relay["last_error"]
                .as_str()
                .is_some_and(|error| error.contains("another system publishes"))
    })
    .await;
    assert!(refused, "{}", relay_status(&system).await);
    assert_eq!(
        stream.messages().await.len(),
        1,
        "the relay published into a foreign stream"
    );
    stream.delete().await;
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_name_erased_before_it_is_relayed_is_published_erased(
    _pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let stream = TestStream::new(&shared_url());
    let system = TestSystem::builder()
        .projector_args(stream.projector_args())
        .start(connect)
        .await;
    let (kept, _) = system
        .send(
            "/customers",
            json!({ "name": "Kept Kim", "credit_limit_cents": 100 }),
        )
        .await;
    system.wait_until_caught_up().await;
    // The relay is down while a customer registers and is erased: it reads the registration
    // only after the key is gone.
    system.kill_projector().await;
    let (erased, _) = system
        .send(
            "/customers",
            json!({ "name": "Secret Sam", "credit_limit_cents": 100 }),
        )
        .await;
    let forgotten = system
        .client
        .delete(format!(
            "{}/customers/{erased}/personal-data",
            system.command_base
        ))
        .bearer_auth(testkit::TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(forgotten.status(), StatusCode::OK);
    system.start_projector().await;
    system.wait_until_caught_up().await;

    let mut names = Vec::new();
    for envelope in stream.envelopes().await {
        if let Some(IntegrationEvent::CustomerRegistered(customer)) =
            IntegrationEvent::decode(&envelope).expect("the public shape")
        {
            names.push((customer.customer_id, customer.name));
        }
    }
    assert_eq!(
        names,
        [
            (kept, "Kept Kim".to_owned()),
            (erased, "[erased]".to_owned())
        ]
    );
    stream.delete().await;
    system.stop().await;
}
