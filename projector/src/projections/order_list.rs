//! `order_list`: one row per order, filterable by customer and status, newest first. It also
//! observes each order's decision for the saga-outcome metrics (`crate::metrics`): here the
//! decision and the time the order was placed meet.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
};

use domain::StreamType;
use event_store::RecordedEvent;
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
        let mut stored_ids = Vec::with_capacity(stored.len());
        for (id, doc, first_position, last_position) in stored {
            stored_ids.push(id);
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
        let stored: HashSet<Uuid> = stored_ids.into_iter().collect();
        let mut rows = Rows::default();
        for id in changed {
            let Some(document) = documents.get(&id) else {
                continue;
            };
            rows.ids.push(id);
            rows.stored.push(stored.contains(&id));
            rows.customers.push(document.view.customer_id);
            rows.statuses.push(document.view.status.as_str());
            rows.placed.push(document.first_position);
            rows.last.push(document.last_position);
            rows.docs.push(serde_json::to_value(&document.view)?);
        }
        // Stored rows are updated and new ones inserted, in one statement: a plain INSERT where
        // the batch knows the row is new (no speculative insertion: one WAL record a row), and an
        // UPDATE that never moves a row backwards.
        sqlx::query(&format!(
            "WITH changed AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::boolean[], $3::uuid[], $4::text[], $5::bigint[],
                                      $6::bigint[], $7::jsonb[])
                     AS c(id, stored, customer_id, status, placed_position, last_position, doc)
             ), updated AS (
                 UPDATE {table} AS t
                 SET status = c.status, last_position = c.last_position, doc = c.doc
                 FROM changed c
                 WHERE c.stored AND t.id = c.id AND t.last_position < c.last_position
             )
             INSERT INTO {table} (id, customer_id, status, placed_position, last_position, doc)
             SELECT id, customer_id, status, placed_position, last_position, doc
             FROM changed WHERE NOT stored"
        ))
        .bind(rows.ids)
        .bind(rows.stored)
        .bind(rows.customers)
        .bind(rows.statuses)
        .bind(rows.placed)
        .bind(rows.last)
        .bind(rows.docs)
        .execute(&mut *conn)
        .await?;
        Ok(observed.into_inner())
    }
}

/// The changed orders of a batch, column by column.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    /// Whether the row exists already (it was read before the fold).
    stored: Vec<bool>,
    customers: Vec<Uuid>,
    statuses: Vec<&'a str>,
    placed: Vec<i64>,
    last: Vec<i64>,
    docs: Vec<serde_json::Value>,
}
