//! The domain: aggregates as pure functions. `decide(state, command) -> events` holds every
//! business rule; `evolve(state, event) -> state` only folds facts. No I/O lives here (no
//! database, no HTTP, no OpenAPI types), so the command-api and the saga share one copy of every
//! rule and the tests need no database.

pub mod customer;
pub mod order;
pub mod personal;
pub mod product;
mod stream;
mod values;

pub use stream::StreamType;
pub use values::{Cents, FieldError, MAX_CENTS, MAX_QUANTITY, Name, Quantity, Sku};

use serde::{Serialize, de::DeserializeOwned};

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Well-formed input that breaks a validation rule (HTTP 422).
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    /// A business rule forbids the command in the aggregate's current state (HTTP 409).
    #[error("{0}")]
    RuleViolated(String),
    /// The command addresses an aggregate that does not exist (HTTP 404).
    #[error("no such {0}")]
    NotFound(StreamType),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// An event type of one aggregate, stored as (type name, schema version, JSON data).
pub trait DomainEvent:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync
{
    /// The name stored in `events.event_type`.
    fn event_type(&self) -> &'static str;
}

/// An event-sourced aggregate: its state is the fold of its events.
pub trait Aggregate: Default + Clone + Serialize + DeserializeOwned + Send + Sync {
    /// Stored in `events.stream_type`; also names the aggregate in errors ("no such product").
    const STREAM_TYPE: StreamType;
    /// Bumped whenever the serialized state changes shape, so old snapshots are ignored.
    const SNAPSHOT_SCHEMA: i32;
    type Event: DomainEvent;
    type Command;

    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, DomainError>;
    fn evolve(self, event: &Self::Event) -> Self;
    /// True once the aggregate's creation event has been applied.
    fn exists(&self) -> bool;

    fn fold<'a>(self, events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(self, Self::evolve)
    }
}

/// Serializes an event as the store keeps it: its type name and its data object.
pub fn event_to_parts<E: DomainEvent>(event: &E) -> (String, serde_json::Value) {
    let mut tagged = serde_json::to_value(event).unwrap_or_default();
    let data = tagged
        .get_mut("data")
        .map(serde_json::Value::take)
        .unwrap_or_else(|| serde_json::json!({}));
    (event.event_type().to_owned(), data)
}

/// Rebuilds an event from its stored type name and (upcast) data.
pub fn event_from_parts<E: DomainEvent>(
    event_type: &str,
    data: &serde_json::Value,
) -> Result<E, serde_json::Error> {
    serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
}
