//! `order_history`: every event that concerns an order, in position order: its own events and
//! the saga's steps on products and customers (which name the order in their data).

use domain::StreamType;
use event_store::RecordedEvent;
use read_models::tables;
use sqlx::PgConnection;

use super::postgres::PgReadModel;
use crate::{ProjectionError, metrics::Observed};

pub struct OrderHistory;

impl PgReadModel for OrderHistory {
    const NAME: &'static str = read_models::names::ORDER_HISTORY;
    const TABLE: &'static str = tables::ORDER_HISTORY;
    const STREAM_TYPES: &'static [StreamType] = &[];

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        let (
            mut orders,
            mut positions,
            mut stream_types,
            mut versions,
            mut types,
            mut times,
            mut data,
        ) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for recorded in events {
            let Some(order_id) = recorded.order_id() else {
                continue;
            };
            orders.push(order_id);
            positions.push(recorded.position);
            stream_types.push(recorded.stream_type.as_str());
            versions.push(recorded.stream_version);
            types.push(recorded.event_type.as_str());
            times.push(recorded.recorded_at);
            data.push(&recorded.data);
        }
        if orders.is_empty() {
            return Ok(Observed::default());
        }
        let table = tables::generation_table(Self::TABLE, generation);
        sqlx::query(&format!(
            "INSERT INTO {table} (order_id, position, stream_type, version, type, recorded_at, data)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
                                  $6::timestamptz[], $7::jsonb[]) AS n(order_id, position)
             WHERE NOT EXISTS (
                 SELECT 1 FROM {table} h WHERE h.order_id = n.order_id AND h.position = n.position
             )"
        ))
        .bind(orders)
        .bind(positions)
        .bind(stream_types)
        .bind(versions)
        .bind(types)
        .bind(times)
        .bind(data)
        .execute(&mut *conn)
        .await?;
        Ok(Observed::default())
    }
}
