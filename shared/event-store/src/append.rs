//! Appending events to one stream with an expected-version check. The unique constraint on
//! (stream_id, stream_version) is the concurrency check: of two writers that loaded the same
//! version, the second insert fails, so exactly one wins and nothing is half-written.

use domain::{DomainEvent, StreamType, event_to_parts};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Metadata, StoreError,
    personal::{self, PersonalData},
    upcast,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedEvents {
    /// The stream's version after the append.
    pub version: i64,
    /// The global position of the last appended event.
    pub last_position: i64,
}

/// Appends `events` after `current_version`, inside the caller's transaction.
pub async fn append_to_stream<E: DomainEvent>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    stream_type: StreamType,
    current_version: i64,
    events: &[E],
    metadata: &Metadata,
) -> Result<AppendedEvents, StoreError> {
    let mut versions = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut schema_versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    for (offset, event) in (1i64..).zip(events) {
        let (event_type, data) = event_to_parts(event);
        versions.push(current_version + offset);
        schema_versions.push(upcast::current_schema_version(&event_type));
        types.push(event_type);
        payloads.push(data);
    }
    let metadata =
        serde_json::to_value(metadata).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    personal::seal(
        conn,
        payloads
            .iter_mut()
            .zip(&types)
            .map(|(data, event_type)| PersonalData {
                subject: stream_id,
                event_type,
                data,
            })
            .collect(),
    )
    .await?;
    let positions: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_type, schema_version, data, metadata)
         SELECT $1, $2, e.version, e.event_type, e.schema_version, e.data, $3
         FROM UNNEST($4::bigint[], $5::text[], $6::integer[], $7::jsonb[])
              WITH ORDINALITY AS e(version, event_type, schema_version, data, ordinal)
         ORDER BY e.ordinal
         RETURNING position",
    )
    .bind(stream_id)
    .bind(stream_type.as_str())
    .bind(metadata)
    .bind(&versions)
    .bind(&types)
    .bind(&schema_versions)
    .bind(&payloads)
    .fetch_all(&mut *conn)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("events_stream_version_unique") => {
            StoreError::VersionConflict { stream_id }
        }
        _ => StoreError::Database(error),
    })?;
    Ok(AppendedEvents {
        version: current_version + events.len() as i64,
        last_position: positions.into_iter().max().unwrap_or_default(),
    })
}

/// One event to append in `append_many`, already encoded, with the version it takes in its
/// stream.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    pub version: i64,
    pub event_type: String,
    pub data: serde_json::Value,
    pub metadata: serde_json::Value,
}

impl NewEvent {
    pub fn new<E: DomainEvent>(
        stream_id: Uuid,
        stream_type: StreamType,
        version: i64,
        event: &E,
        metadata: &Metadata,
    ) -> Result<Self, StoreError> {
        let (event_type, data) = event_to_parts(event);
        Ok(Self {
            stream_id,
            stream_type,
            version,
            event_type,
            data,
            metadata: serde_json::to_value(metadata)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        })
    }
}

/// Appends events of any number of streams in one statement, in the order given (which becomes
/// their log order), inside the caller's transaction. A version already taken in its stream (a
/// concurrent writer won) fails the whole statement with `VersionConflict`.
pub async fn append_many(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<Vec<i64>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut stream_types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut schema_versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for event in events {
        ids.push(event.stream_id);
        stream_types.push(event.stream_type.as_str());
        versions.push(event.version);
        schema_versions.push(upcast::current_schema_version(&event.event_type));
        types.push(event.event_type.as_str());
        payloads.push(event.data.clone());
        metadata.push(&event.metadata);
    }
    personal::seal(
        conn,
        payloads
            .iter_mut()
            .zip(events)
            .map(|(data, event)| PersonalData {
                subject: event.stream_id,
                event_type: &event.event_type,
                data,
            })
            .collect(),
    )
    .await?;
    sqlx::query_scalar(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_type, schema_version, data, metadata)
         SELECT e.stream_id, e.stream_type, e.version, e.event_type, e.schema_version, e.data, e.metadata
         FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[])
              WITH ORDINALITY AS e(stream_id, stream_type, version, event_type, schema_version, data, metadata, ordinal)
         ORDER BY e.ordinal
         RETURNING position",
    )
    .bind(&ids)
    .bind(&stream_types)
    .bind(&versions)
    .bind(&types)
    .bind(&schema_versions)
    .bind(&payloads)
    .bind(&metadata)
    .fetch_all(&mut *conn)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("events_stream_version_unique") => {
            StoreError::VersionConflict {
                stream_id: Uuid::nil(),
            }
        }
        _ => StoreError::Database(error),
    })
}
