//! An event as the log holds it, and the metadata every event carries.

use chrono::{DateTime, Utc};
use domain::{DomainEvent, StreamType, event_from_parts};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;

/// Who caused an event: carried in every event's metadata column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The `X-Request-Id` of the request that started the chain of commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the event that triggered this command (saga steps), as `position`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// An event as stored, its data already upcast to the current schema version.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Decodes the (already upcast) data into the event type of its aggregate.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, StoreError> {
        event_from_parts(&self.event_type, &self.data).map_err(|error| {
            StoreError::Corrupt(format!(
                "{} v{} of {} {} (position {}): {error}",
                self.event_type,
                self.stream_version,
                self.stream_type,
                self.stream_id,
                self.position
            ))
        })
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.metadata
            .get("correlation_id")
            .and_then(serde_json::Value::as_str)
    }

    /// The order an event concerns: its own stream for an order's events, else the `order_id`
    /// its data names (the saga's steps on products and customers).
    pub fn order_id(&self) -> Option<Uuid> {
        if self.stream_type == StreamType::Order {
            return Some(self.stream_id);
        }
        self.data.get("order_id")?.as_str()?.parse().ok()
    }
}
