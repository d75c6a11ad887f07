//! Reading the log in global order without ever skipping an event.
//!
//! A position is `xid * 2^20 + index` of the transaction that wrote it (see the first
//! migration). Readers read only below the safe horizon, `events_safe_horizon()` (migration
//! `20261201190000`): the oldest transaction still running among those that append events, or,
//! when none is, the first transaction id not yet completed. Every event below it has committed
//! or rolled back, and every running or future append lies above it. Reading below it, in
//! position order, therefore sees every event once and never a later event before an earlier
//! one: a slow append transaction holds the horizon back (lag grows) instead of being skipped,
//! while a slow read-model transaction, which appends nothing, holds back nobody.
//!
//! The horizon is computed by one statement and the events are read by the next: the read's
//! snapshot must start after the horizon's look at the running writers.

use chrono::{DateTime, Utc};
use domain::StreamType;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::{RecordedEvent, StoreError, personal, upcast};

/// What an event is keyed by when a subscription is split into partitions. Events of one key
/// always land in the same partition, so they are applied in log order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKey {
    /// The event's own stream: a read model of one document per aggregate.
    Stream,
    /// The order the event concerns: an order's own events and the saga's steps on products
    /// and customers that name it (`data.order_id`). Events that concern no order belong to
    /// no partition.
    Order,
}

impl PartitionKey {
    /// The partition (of `count`) a key belongs to: its last byte, which is random in every id
    /// the system makes (UUID v4 and v7), modulo the count. Kept equal to the SQL of
    /// `events_read_batch()`.
    pub fn partition_of(key: Uuid, count: i32) -> i32 {
        i32::from(key.as_bytes()[15]) % count.max(1)
    }
}

/// One partition of a subscription split `count` ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionFilter {
    pub key: PartitionKey,
    pub count: i32,
    pub index: i32,
}

/// Which events a subscription (or one partition of it) reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSelection {
    /// Only events of these streams (all when empty).
    pub stream_types: Vec<StreamType>,
    /// Only events of these types (all when empty).
    pub event_types: Vec<&'static str>,
    /// Only the events of one partition (all when `None`).
    pub partition: Option<PartitionFilter>,
}

/// The next events of a selection after a checkpoint, and how far the log was read for them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    /// Every event of the selection at or below this position is in this batch or was before
    /// `after`: where the checkpoint moves once the batch is applied. Equal to `after` when
    /// there was nothing new.
    pub read_to: i64,
}

/// Reads up to `limit` events of `selection` after `after`, in position order, below the safe
/// horizon, upcast. `read_to` also covers the events the selection skipped, so a partition whose
/// events are rare still moves its checkpoint as the log grows. One round trip: the horizon and
/// the read are two statements of `events_read_batch()` (migration `20261204190000`), which
/// reads with a snapshot taken after the horizon's, as the module's documentation requires.
pub async fn read_batch(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
    selection: &EventSelection,
) -> Result<Batch, StoreError> {
    let stream_types: Vec<&str> = selection
        .stream_types
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    let rows: Vec<BatchRow> =
        sqlx::query_as("SELECT * FROM events_read_batch($1, $2, $3, $4, $5, $6, $7)")
            .bind(after)
            .bind(limit)
            .bind(stream_types)
            .bind(&selection.event_types)
            .bind(selection.partition.map_or(1, |p| p.count))
            .bind(selection.partition.map_or(0, |p| p.index))
            .bind(selection.partition.map(|p| p.key) == Some(PartitionKey::Order))
            .fetch_all(&mut *conn)
            .await?;
    let reached = rows.first().and_then(|row| row.reached).unwrap_or(after);
    let events = revealed(
        conn,
        rows.into_iter().filter_map(BatchRow::into_event).collect(),
    )
    .await?;
    let full = events.len() as i64 >= limit;
    let read_to = match events.last() {
        Some(last) if full => last.position,
        _ => reached.max(after),
    };
    Ok(Batch { events, read_to })
}

/// A row of `read_batch`: how far the log reaches below the horizon, and an event (or none).
#[derive(sqlx::FromRow)]
struct BatchRow {
    reached: Option<i64>,
    position: Option<i64>,
    stream_id: Option<Uuid>,
    stream_type: Option<String>,
    stream_version: Option<i64>,
    event_type: Option<String>,
    schema_version: Option<i32>,
    data: Option<serde_json::Value>,
    metadata: Option<serde_json::Value>,
    recorded_at: Option<DateTime<Utc>>,
}

impl BatchRow {
    fn into_event(self) -> Option<EventRow> {
        Some(EventRow {
            position: self.position?,
            stream_id: self.stream_id?,
            stream_type: self.stream_type?,
            stream_version: self.stream_version?,
            event_type: self.event_type?,
            schema_version: self.schema_version?,
            data: self.data?,
            metadata: self.metadata?,
            recorded_at: self.recorded_at?,
        })
    }
}

const EVENT_COLUMNS: &str = "position, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at";

/// Reads up to `limit` events with `position > after`, in position order, upcast to the current
/// schema. Outside a transaction, or in a READ COMMITTED one: the read needs a snapshot newer
/// than the horizon's.
pub async fn read_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let horizon = safe_horizon(conn).await?;
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE position > $1 AND position < $3
         ORDER BY position
         LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .bind(horizon)
    .fetch_all(&mut *conn)
    .await?;
    revealed(conn, rows).await
}

/// The safe horizon: every event below this position has committed or rolled back, and no
/// running or future transaction can append below it. Read events below it with a later
/// statement (see the module's documentation).
pub async fn safe_horizon(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT events_safe_horizon()")
        .fetch_one(conn)
        .await?)
}

/// Begins a transaction that will append events, announced as an event writer before anything
/// is written (in the `BEGIN`'s own round trip), so that the safe horizon waits for it. A
/// transaction whose first write is its events needs no announcing (the `events` table's
/// statement trigger does it); one that writes anything else first must begin this way, or its
/// events are refused.
pub async fn begin_appending(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    Ok(pool
        .begin_with("BEGIN; SELECT events_begin_append()")
        .await?)
}

/// The events at these positions (those that exist), in position order, upcast: for events
/// picked out by position, such as parked dead letters.
pub async fn read_positions(
    conn: &mut PgConnection,
    positions: &[i64],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position = ANY($1) ORDER BY position"
    ))
    .bind(positions)
    .fetch_all(&mut *conn)
    .await?;
    revealed(conn, rows).await
}

/// Rows read from the log as recorded events: upcast, with their personal data revealed (or
/// erased).
async fn revealed(
    conn: &mut PgConnection,
    rows: Vec<EventRow>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut events = rows
        .into_iter()
        .map(EventRow::into_recorded)
        .collect::<Result<Vec<_>, _>>()?;
    personal::reveal_recorded(conn, &mut events).await?;
    Ok(events)
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
