//! Loading an aggregate: its latest usable snapshot, then the events after it, each upcast to
//! its current schema before it is decoded.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{StoreError, snapshot, upcast};
use crate::domain::{Aggregate, event_from_parts};

#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The version of the last event folded into `state` (0 for a stream with no events).
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct StoredEventRow {
    stream_version: i64,
    event_type: String,
    schema_version: i32,
    data: serde_json::Value,
}

/// Loads `stream_id`, using a snapshot when `use_snapshot` is set and one of the current schema
/// exists. The result is the same either way; the snapshot only saves reading events.
pub async fn load_aggregate<A: Aggregate>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    use_snapshot: bool,
) -> Result<Loaded<A>, StoreError> {
    let start = if use_snapshot {
        snapshot::read::<A>(conn, stream_id).await?
    } else {
        None
    }
    .unwrap_or(Loaded {
        state: A::default(),
        version: 0,
    });

    let rows: Vec<StoredEventRow> = sqlx::query_as(
        "SELECT stream_version, event_type, schema_version, data FROM events
         WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version",
    )
    .bind(stream_id)
    .bind(start.version)
    .fetch_all(&mut *conn)
    .await?;

    let mut loaded = start;
    for row in rows {
        let data = upcast::upcast(&row.event_type, row.schema_version, row.data)
            .map_err(StoreError::Corrupt)?;
        let event = event_from_parts::<A::Event>(&row.event_type, &data).map_err(|error| {
            StoreError::Corrupt(format!(
                "{} v{} of {stream_id}: {error}",
                row.event_type, row.stream_version
            ))
        })?;
        loaded.state = loaded.state.evolve(&event);
        loaded.version = row.stream_version;
    }
    Ok(loaded)
}
