//! `order_list`: one row per order, filterable by customer and status, newest first. It also
//! observes each order's decision for the saga-outcome metrics (`crate::metrics`): here the
//! decision and the time the order was placed meet.

use std::{cell::RefCell, collections::HashMap};

use domain::StreamType;
use event_store::{PartitionKey, RecordedEvent};
use read_models::{OrderView, tables};
use sqlx::PgConnection;
use uuid::Uuid;

use super::postgres::PgReadModel;
use crate::{
    ProjectionError,
    fold::{Document, fold_documents, stream_ids},
    metrics::Observed,
};

pub struct OrderList;

impl PgReadModel for OrderList {
    const NAME: &'static str = read_models::names::ORDER_LIST;
    const TABLE: &'static str = tables::ORDERS;
    const STREAM_TYPES: &'static [StreamType] = &[StreamType::Order];
    const KEY: PartitionKey = PartitionKey::Stream;

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        let ids = stream_ids(events, StreamType::Order);
        if ids.is_empty() {
            return Ok(Observed::default());
        }
        let table = tables::generation_table(Self::TABLE, generation);
        let stored: Vec<(Uuid, serde_json::Value, i64, i64)> = sqlx::query_as(&format!(
            "SELECT id, doc, placed_position, last_position FROM {table} WHERE id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut documents = HashMap::new();
        for (id, doc, first_position, last_position) in stored {
            documents.insert(
                id,
                Document {
                    view: serde_json::from_value(doc)?,
                    first_position,
                    last_position,
                },
            );
        }
        // Only events the documents have not seen yet reach the fold, so a batch read again
        // observes nothing twice.
        let observed = RefCell::new(Observed::default());
        let changed = fold_documents(
            &mut documents,
            events,
            StreamType::Order,
            |before: Option<OrderView>, meta, event| {
                let was = before.as_ref().map(|view| view.status);
                let after = OrderView::fold(before, meta, event)?;
                if let Some(was) = was {
                    observed.borrow_mut().order_changed(
                        was,
                        after.status,
                        after.rejection_reason,
                        after.created_at,
                        meta.recorded_at,
                    );
                }
                Some(after)
            },
        )?;
        let (mut ids, mut customers, mut statuses, mut placed, mut last, mut docs) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for id in changed {
            let Some(document) = documents.get(&id) else {
                continue;
            };
            ids.push(id);
            customers.push(document.view.customer_id);
            statuses.push(document.view.status.as_str());
            placed.push(document.first_position);
            last.push(document.last_position);
            docs.push(serde_json::to_value(&document.view)?);
        }
        sqlx::query(&format!(
            "INSERT INTO {table} AS t (id, customer_id, status, placed_position, last_position, doc)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::jsonb[])
             ON CONFLICT (id) DO UPDATE
             SET status = EXCLUDED.status, last_position = EXCLUDED.last_position, doc = EXCLUDED.doc
             WHERE t.last_position < EXCLUDED.last_position"
        ))
        .bind(ids)
        .bind(customers)
        .bind(statuses)
        .bind(placed)
        .bind(last)
        .bind(docs)
        .execute(&mut *conn)
        .await?;
        Ok(observed.into_inner())
    }
}
