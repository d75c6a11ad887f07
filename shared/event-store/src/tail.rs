//! Reading the log in global order without ever skipping an event.
//!
//! A position is `xid * 2^20 + index` of the transaction that wrote it (see the first
//! migration). `pg_snapshot_xmin(pg_current_snapshot())` is the oldest transaction still
//! running; every transaction below it has ended, and every running or future one writes above
//! `xmin * 2^20`. Reading only below that horizon, in position order, therefore sees every
//! event below the horizon, once, and never a later event before an earlier one: a slow append
//! transaction holds the horizon back (lag grows) instead of being skipped.

use chrono::{DateTime, Utc};
use domain::StreamType;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{RecordedEvent, StoreError, upcast};

const EVENT_COLUMNS: &str = "position, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at";

/// Reads up to `limit` events with `position > after`, in position order, upcast to the current
/// schema. Run it before the reading transaction writes anything: a transaction that holds an
/// xid holds the horizon at or below itself.
pub async fn read_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE position > $1
           AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)
         ORDER BY position
         LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(EventRow::into_recorded).collect()
}

/// The events at these positions (those that exist), in position order, upcast: for events
/// picked out by position, such as parked dead letters.
pub async fn read_positions<'e>(
    executor: impl PgExecutor<'e>,
    positions: &[i64],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position = ANY($1) ORDER BY position"
    ))
    .bind(positions)
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(EventRow::into_recorded).collect()
}

#[derive(sqlx::FromRow)]
struct EventRow {
    position: i64,
    stream_id: Uuid,
    stream_type: String,
    stream_version: i64,
    event_type: String,
    schema_version: i32,
    data: serde_json::Value,
    metadata: serde_json::Value,
    recorded_at: DateTime<Utc>,
}

impl EventRow {
    fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let Self {
            position,
            stream_id,
            stream_type,
            stream_version,
            event_type,
            schema_version,
            data,
            metadata,
            recorded_at,
        } = self;
        let whereabouts =
            || format!("{event_type} v{stream_version} of {stream_id} (position {position})");
        let stream_type = StreamType::parse(&stream_type).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{}: unknown stream type {stream_type:?}",
                whereabouts()
            ))
        })?;
        let data = upcast::to_current(&event_type, schema_version, data, whereabouts)?;
        Ok(RecordedEvent {
            position,
            stream_id,
            stream_type,
            stream_version,
            schema_version: upcast::current_schema_version(&event_type),
            event_type,
            data,
            metadata,
            recorded_at,
        })
    }
}

/// The position of the newest committed event (0 when the log is empty).
pub async fn head_position<'e>(executor: impl PgExecutor<'e>) -> Result<i64, StoreError> {
    let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(executor)
        .await?;
    Ok(head.unwrap_or(0))
}

/// How many committed events lie after `position`: a projection's lag in events.
pub async fn count_events_after<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM events WHERE position > $1")
            .bind(position)
            .fetch_one(executor)
            .await?,
    )
}

/// Transaction ids restart in a new cluster (e.g. after a logical dump and restore), which
/// would put new events below old positions and break every checkpoint. Refuse to run then.
pub async fn ensure_positions_move_forward<'e>(
    executor: impl PgExecutor<'e>,
) -> Result<(), StoreError> {
    let (newest_xid, current_xid): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT max(position) >> 20 FROM events),
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
    )
    .fetch_one(executor)
    .await?;
    match newest_xid {
        Some(newest) if newest >= current_xid => Err(StoreError::Corrupt(format!(
            "the events table holds positions from transaction {newest}, but this PostgreSQL cluster is only at \
             transaction {current_xid}: it was restored into a new cluster, so new positions would go backwards. \
             Advance the cluster's transaction ids past {newest} (e.g. pg_resetwal -x) before starting"
        ))),
        _ => Ok(()),
    }
}
