//! `product_catalog`: one row per product, searched by name (case-insensitive) and listed in
//! name order.

use std::collections::{HashMap, HashSet};

use domain::StreamType;
use event_store::RecordedEvent;
use read_models::{ProductView, tables};
use sqlx::PgConnection;
use uuid::Uuid;

use super::postgres::PgReadModel;
use crate::{
    ProjectionError,
    fold::{Document, fold_documents, stream_ids},
    metrics::Observed,
};

pub struct ProductCatalog;

impl PgReadModel for ProductCatalog {
    const NAME: &'static str = read_models::names::PRODUCT_CATALOG;
    const TABLE: &'static str = tables::PRODUCTS;
    const STREAM_TYPES: &'static [StreamType] = &[StreamType::Product];

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        let ids = stream_ids(events, StreamType::Product);
        if ids.is_empty() {
            return Ok(Observed::default());
        }
        let table = tables::generation_table(Self::TABLE, generation);
        let stored: Vec<(Uuid, serde_json::Value, i64)> = sqlx::query_as(&format!(
            "SELECT id, doc, last_position FROM {table} WHERE id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut documents = HashMap::new();
        let mut stored_ids = HashSet::with_capacity(stored.len());
        for (id, doc, last_position) in stored {
            stored_ids.insert(id);
            documents.insert(
                id,
                Document {
                    view: serde_json::from_value(doc)?,
                    first_position: 0,
                    last_position,
                },
            );
        }
        let changed = fold_documents(
            &mut documents,
            events,
            StreamType::Product,
            ProductView::fold,
        )?;
        let (mut ids, mut stored, mut name_keys, mut last, mut docs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for id in changed {
            let Some(document) = documents.get(&id) else {
                continue;
            };
            ids.push(id);
            stored.push(stored_ids.contains(&id));
            name_keys.push(document.view.name.to_lowercase());
            last.push(document.last_position);
            docs.push(serde_json::to_value(&document.view)?);
        }
        // As in `order_list`: stored rows updated, new ones inserted plainly, in one statement.
        sqlx::query(&format!(
            "WITH changed AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::boolean[], $3::text[], $4::bigint[], $5::jsonb[])
                     AS c(id, stored, name_key, last_position, doc)
             ), updated AS (
                 UPDATE {table} AS t
                 SET name_key = c.name_key, last_position = c.last_position, doc = c.doc
                 FROM changed c
                 WHERE c.stored AND t.id = c.id AND t.last_position < c.last_position
             )
             INSERT INTO {table} (id, name_key, last_position, doc)
             SELECT id, name_key, last_position, doc FROM changed WHERE NOT stored"
        ))
        .bind(ids)
        .bind(stored)
        .bind(name_keys)
        .bind(last)
        .bind(docs)
        .execute(&mut *conn)
        .await?;
        Ok(Observed::default())
    }
}
