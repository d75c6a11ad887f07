//! The PostgreSQL event store: appends with optimistic concurrency, aggregate loading through
//! snapshots and upcasters, command execution with idempotency keys, and gap-free tailing.
//! The position scheme that makes tailing safe is explained in the first migration.

mod append;
mod command;
mod load;
mod snapshot;
mod tail;
pub mod upcast;

pub use append::{AppendedEvents, append_to_stream};
pub use command::{
    CommandError, CommandOptions, CommandReply, Executed, IdempotencyRequest, StoredResponse,
    UniqueClaim, backoff, execute_in_tx, purge_idempotency_keys, run_command,
};
pub use load::{Loaded, load_aggregate};
pub use tail::{
    TailBatch, count_events_after, ensure_positions_move_forward, head_position, read_after,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Decodes the (already upcast) data into the event type of its aggregate.
    pub fn decode<E: crate::domain::DomainEvent>(&self) -> Result<E, StoreError> {
        crate::domain::event_from_parts(&self.event_type, &self.data).map_err(|error| {
            StoreError::Corrupt(format!(
                "{} at position {}: {error}",
                self.event_type, self.position
            ))
        })
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.metadata
            .get("correlation_id")
            .and_then(serde_json::Value::as_str)
    }
}

/// Failures of the store itself, as opposed to refusals of a command.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since it was loaded.
    #[error("stream {stream_id} was changed concurrently")]
    VersionConflict { stream_id: Uuid },
    /// A stored event or snapshot cannot be decoded into the current types.
    #[error("stored data cannot be decoded: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// True for failures worth retrying as they are: a lost race, a dropped connection.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::VersionConflict { .. } => true,
            Self::Database(error) => is_transient_database_error(error),
            Self::Corrupt(_) => false,
        }
    }
}

/// Failures that pass with time: connection loss, pool exhaustion, serialization failures and
/// deadlocks, and the server's own trouble (too many connections, a cancelled statement, a
/// shutdown or failover). Data, integrity and syntax errors are deterministic and do not pass.
pub fn is_transient_database_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE classes: 08 connection, 40 rollback, 53 insufficient resources,
            // 55 object not in prerequisite state (lock not available), 57 operator
            // intervention, 58 system error; 25006 is a read-only (failed over) server.
            matches!(code.get(..2), Some("08" | "40" | "53" | "55" | "57" | "58"))
                || code == "25006"
        }),
        _ => false,
    }
}
