//! `event_feed`: every event of the log, in position order, as readers outside the write side
//! may see it (its data upcast to the current schema; no metadata). The query-api cannot read
//! the event table, so the operator dashboard's newest events, its event rate and later the
//! live change feed read this copy instead. It is complete (no event is left out) and keyed by
//! position, so a reader can page through it from any position.

use domain::StreamType;
use event_store::RecordedEvent;
use read_models::tables;
use sqlx::PgConnection;

use super::{erasure, postgres::PgReadModel};
use crate::{ProjectionError, metrics::Observed};

pub struct EventFeed;

impl PgReadModel for EventFeed {
    const NAME: &'static str = read_models::names::EVENT_FEED;
    const TABLE: &'static str = tables::EVENT_FEED;
    const STREAM_TYPES: &'static [StreamType] = &[];

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        if events.is_empty() {
            return Ok(Observed::default());
        }
        let mut positions = Vec::with_capacity(events.len());
        let mut stream_types = Vec::with_capacity(events.len());
        let mut stream_ids = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut times = Vec::with_capacity(events.len());
        let mut data = Vec::with_capacity(events.len());
        for recorded in events {
            positions.push(recorded.position);
            stream_types.push(recorded.stream_type.as_str());
            stream_ids.push(recorded.stream_id);
            types.push(recorded.event_type.as_str());
            versions.push(recorded.stream_version);
            times.push(recorded.recorded_at);
            data.push(&recorded.data);
        }
        let table = tables::generation_table(Self::TABLE, generation);
        // A batch read again after a crash finds its rows there already.
        sqlx::query(&format!(
            "INSERT INTO {table} (position, stream_type, stream_id, type, version, recorded_at, data)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::bigint[],
                                  $6::timestamptz[], $7::jsonb[]) AS n(position)
             WHERE NOT EXISTS (SELECT 1 FROM {table} e WHERE e.position = n.position)"
        ))
        .bind(positions)
        .bind(stream_types)
        .bind(stream_ids)
        .bind(types)
        .bind(versions)
        .bind(times)
        .bind(data)
        .execute(&mut *conn)
        .await?;
        erasure::erase_event_rows(conn, &table, &erasure::forgotten_streams(events)).await?;
        Ok(Observed::default())
    }
}
