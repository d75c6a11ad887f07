//! The relay to NATS JetStream against the real nats-server: what it publishes, and how it
//! survives a crash between a publish and its checkpoint and a broker that goes away. Each test
//! has its own stream and subject prefix (deleted at the end); the broker-fault test runs a
//! nats-server of its own.

mod faults;
mod publishing;

use async_nats::jetstream::{self, message::StreamMessage};
use integration_events::headers;
use serde_json::Value;
use sqlx::PgPool;
use testkit::TestSystem;

/// The (position, public type) of every public event in the log, in log order: exactly what the
/// stream must hold. Written out here rather than taken from the relay, so the test checks it.
pub async fn public_events_in_log(pool: &PgPool) -> Vec<(String, String)> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT position, event_type FROM events ORDER BY position")
            .fetch_all(pool)
            .await
            .expect("the log");
    rows.into_iter()
        .filter_map(|(position, event_type)| {
            let public = match event_type.as_str() {
                "CustomerRegistered" => "customer.registered",
                "ProductAdded" => "product.added",
                "ProductRestocked" => "product.restocked",
                "OrderPlaced" => "order.placed",
                "OrderApproved" => "order.approved",
                "OrderRejected" => "order.rejected",
                "OrderCancelled" => "order.cancelled",
                "OrderShipped" => "order.shipped",
                _ => return None,
            };
            Some((position.to_string(), public.to_owned()))
        })
        .collect()
}

/// The (Nats-Msg-Id, Event-Type) of each message, in stream order.
pub fn ids_and_types(messages: &[StreamMessage]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|message| {
            (
                header(message, headers::MESSAGE_ID),
                header(message, headers::EVENT_TYPE),
            )
        })
        .collect()
}

pub fn header(message: &StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

/// The relay's item in `/projections`.
pub async fn relay_status(system: &TestSystem) -> Value {
    let (_, body) = system.read("/projections").await;
    body["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|item| item["name"] == projector::relay::NAME)
        })
        .cloned()
        .unwrap_or(Value::Null)
}

pub async fn relay_checkpoint(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT position FROM projector.checkpoints WHERE name = $1")
        .bind(projector::relay::NAME)
        .fetch_optional(pool)
        .await
        .expect("checkpoint")
        .unwrap_or(0)
}

pub async fn stream_config(
    jetstream: &jetstream::Context,
    name: &str,
) -> jetstream::stream::Config {
    let mut stream = jetstream.get_stream(name).await.expect("the stream exists");
    stream.info().await.expect("stream info").config.clone()
}
