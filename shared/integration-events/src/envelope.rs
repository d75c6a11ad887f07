//! The envelope every integration event travels in: the message payload, as JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{IntegrationEvent, SOURCE};

/// One integration event as published.
///
/// ```json
/// {
///   "id": "31347179520",
///   "type": "order.approved",
///   "version": 1,
///   "occurred_at": "2026-12-01T10:15:02.481913Z",
///   "source": "cqrs-shop",
///   "aggregate": { "type": "order", "id": "01a21022-08b7-7c1e-9a4e-2b1c0d5f6e7a", "version": 2 },
///   "correlation_id": "5d1c7a0e-3f5b-4c1a-8e7d-9b2f6a4c8e10",
///   "causation_id": "31341936640",
///   "data": { "order_id": "01a21022-08b7-7c1e-9a4e-2b1c0d5f6e7a",
///             "customer_id": "01a21022-078b-7d2f-8c3a-1e4b5f6a7c8d", "total_cents": 4100 }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event's global position in the shop's log, in decimal: unique, and increasing in the
    /// order events are published. It is also the message's `Nats-Msg-Id`, and what a consumer's
    /// inbox remembers. A string, since positions may outgrow the integers JSON parsers keep
    /// exactly.
    pub id: String,
    /// `<aggregate>.<event>`, e.g. `order.approved`; also the end of the subject.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The version of `data`'s shape for this type.
    pub version: u32,
    /// When the shop recorded the event.
    pub occurred_at: DateTime<Utc>,
    /// The publishing system: `cqrs-shop`.
    pub source: String,
    /// The aggregate the event belongs to.
    pub aggregate: Aggregate,
    /// The `X-Request-Id` of the request that started the chain of events, when known.
    pub correlation_id: Option<String>,
    /// The id of the event that caused this one (a saga step), when there is one.
    pub causation_id: Option<String>,
    /// The public shape of the event (see `IntegrationEvent`).
    pub data: serde_json::Value,
}

/// The aggregate an event belongs to. Events of one aggregate are published in the order they
/// happened; `version` increases with each of them (with gaps where an event is not public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// `customer`, `product` or `order`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Uuid,
    pub version: i64,
}

impl Envelope {
    /// Wraps `event`, the event at `position` of the log, of `aggregate`.
    pub fn new(
        position: i64,
        event: &IntegrationEvent,
        occurred_at: DateTime<Utc>,
        aggregate: Aggregate,
        correlation_id: Option<String>,
        causation_id: Option<String>,
    ) -> Self {
        let event_type = event.event_type();
        Self {
            id: position.to_string(),
            event_type: event_type.name.to_owned(),
            version: event_type.version,
            occurred_at,
            source: SOURCE.to_owned(),
            aggregate,
            correlation_id,
            causation_id,
            data: event.to_data(),
        }
    }
}
