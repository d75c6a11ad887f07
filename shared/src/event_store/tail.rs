//! Reading the log in global order without ever skipping an event.
//!
//! A position is `xid * 2^20 + index` of the transaction that wrote it (see the first
//! migration). `pg_snapshot_xmin(pg_current_snapshot())` is the oldest transaction still
//! running; every transaction below it has ended, and every running or future one writes above
//! `xmin * 2^20`. Reading only below that horizon, in position order, therefore sees every
//! event below the horizon, once, and never a later event before an earlier one: a slow append
//! transaction holds the horizon back (lag grows) instead of being skipped.

use sqlx::{PgConnection, PgExecutor};

use super::{RecordedEvent, StoreError, upcast};

/// The next events after a checkpoint, all below the safe horizon.
#[derive(Debug, Clone)]
pub struct TailBatch {
    pub events: Vec<RecordedEvent>,
}

/// Reads up to `limit` events with `position > after`, in position order, upcast to the current
/// schema. Run it before the reading transaction writes anything: a transaction that holds an
/// xid holds the horizon at or below itself.
pub async fn read_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<TailBatch, StoreError> {
    let mut events: Vec<RecordedEvent> = sqlx::query_as(
        "SELECT position, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at
         FROM events
         WHERE position > $1
           AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)
         ORDER BY position
         LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    for event in &mut events {
        let data = std::mem::take(&mut event.data);
        event.data = upcast::upcast(&event.event_type, event.schema_version, data)
            .map_err(StoreError::Corrupt)?;
        event.schema_version = upcast::current_schema_version(&event.event_type);
    }
    Ok(TailBatch { events })
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
