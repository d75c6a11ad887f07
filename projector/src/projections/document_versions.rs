//! `document_versions`: the temporal read model. Every version of every order, product and
//! customer document, with the positions and times it was valid from and to, so the query-api
//! can answer "what did this look like at position P, or at time T" without reading the log.
//! Each version is folded by the same functions as the `lookups` documents (`OrderView::fold`,
//! which is the domain's `Order::evolve`, and the product and customer folds), so a version
//! here is exactly the document `lookups` held at that position.
//!
//! Idempotent like every read model: an event at or below the newest version's position is
//! skipped, a version already there is left alone, and `valid_to` is derived from the next
//! version, so a batch applied twice changes nothing.

use std::collections::HashMap;

use domain::{DomainEvent, StreamType};
use event_store::{PartitionKey, RecordedEvent};
use read_models::{CustomerView, EventMeta, OrderView, ProductView, tables};
use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{erasure, postgres::PgReadModel};
use crate::{ProjectionError, fold::stream_ids, metrics::Observed};

pub struct DocumentVersions;

impl PgReadModel for DocumentVersions {
    const NAME: &'static str = read_models::names::DOCUMENT_VERSIONS;
    const TABLE: &'static str = tables::DOCUMENT_VERSIONS;
    const STREAM_TYPES: &'static [StreamType] = &[];
    const KEY: PartitionKey = PartitionKey::Stream;

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        let table = tables::generation_table(Self::TABLE, generation);
        for kind in StreamType::ALL {
            let ids = stream_ids(events, kind);
            if ids.is_empty() {
                continue;
            }
            let versions = match kind {
                StreamType::Order => {
                    new_versions(conn, &table, kind, &ids, events, OrderView::fold).await?
                }
                StreamType::Product => {
                    new_versions(conn, &table, kind, &ids, events, ProductView::fold).await?
                }
                StreamType::Customer => {
                    new_versions(conn, &table, kind, &ids, events, CustomerView::fold).await?
                }
            };
            write_versions(conn, &table, kind, &ids, versions).await?;
        }
        // Versions written before an erasure in this batch or earlier ones hold the personal
        // data as it was; every version of a forgotten customer shows it erased.
        erasure::erase_document_versions(
            conn,
            &table,
            StreamType::Customer.as_str(),
            &erasure::forgotten_streams(events),
            CustomerView::PERSONAL_FIELDS,
        )
        .await?;
        Ok(Observed::default())
    }
}

/// One version of a document, valid from the event that made it.
struct Version {
    id: Uuid,
    version: i64,
    valid_from_position: i64,
    valid_from: chrono::DateTime<chrono::Utc>,
    document: serde_json::Value,
}

/// Folds the batch's events of `kind` one at a time onto the newest stored version of each
/// document, keeping every intermediate document as a version of its own.
async fn new_versions<V, E>(
    conn: &mut PgConnection,
    table: &str,
    kind: StreamType,
    ids: &[Uuid],
    events: &[RecordedEvent],
    fold: impl Fn(Option<V>, &EventMeta, &E) -> Option<V>,
) -> Result<Vec<Version>, ProjectionError>
where
    V: Serialize + DeserializeOwned,
    E: DomainEvent,
{
    let stored: Vec<(Uuid, i64, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT DISTINCT ON (id) id, valid_from_position, document FROM {table}
         WHERE kind = $1 AND id = ANY($2) AND valid_to_position IS NULL
         ORDER BY id, version DESC"
    ))
    .bind(kind.as_str())
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut newest: HashMap<Uuid, (i64, Option<V>)> = HashMap::with_capacity(stored.len());
    for (id, position, document) in stored {
        newest.insert(id, (position, Some(serde_json::from_value(document)?)));
    }
    let mut versions = Vec::new();
    for recorded in events.iter().filter(|e| e.stream_type == kind) {
        let (position, view) = newest.remove(&recorded.stream_id).unwrap_or((0, None));
        if position >= recorded.position {
            newest.insert(recorded.stream_id, (position, view));
            continue;
        }
        let event: E = recorded.decode()?;
        let meta = EventMeta {
            stream_id: recorded.stream_id,
            version: recorded.stream_version,
            recorded_at: recorded.recorded_at,
        };
        match fold(view, &meta, &event) {
            Some(view) => {
                versions.push(Version {
                    id: recorded.stream_id,
                    version: recorded.stream_version,
                    valid_from_position: recorded.position,
                    valid_from: recorded.recorded_at,
                    document: serde_json::to_value(&view)?,
                });
                newest.insert(recorded.stream_id, (recorded.position, Some(view)));
            }
            None => {
                newest.insert(recorded.stream_id, (position, None));
            }
        }
    }
    Ok(versions)
}

/// Inserts the new versions, then closes every open version that now has a successor: its
/// `valid_to` is where the next one starts. A document's versions are consecutive (every event
/// after the one that made it folds into a new version), so the successor is `version + 1`,
/// and only the open versions (one per document, plus the batch's) are visited.
async fn write_versions(
    conn: &mut PgConnection,
    table: &str,
    kind: StreamType,
    ids: &[Uuid],
    versions: Vec<Version>,
) -> Result<(), ProjectionError> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut version_ids = Vec::with_capacity(versions.len());
    let mut numbers = Vec::with_capacity(versions.len());
    let mut positions = Vec::with_capacity(versions.len());
    let mut times = Vec::with_capacity(versions.len());
    let mut documents = Vec::with_capacity(versions.len());
    for version in versions {
        version_ids.push(version.id);
        numbers.push(version.version);
        positions.push(version.valid_from_position);
        times.push(version.valid_from);
        documents.push(version.document);
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (kind, id, version, valid_from_position, valid_from, document)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::jsonb[])
         ON CONFLICT (kind, id, version) DO NOTHING"
    ))
    .bind(kind.as_str())
    .bind(version_ids)
    .bind(numbers)
    .bind(positions)
    .bind(times)
    .bind(documents)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE {table} t SET valid_to_position = n.valid_from_position, valid_to = n.valid_from
         FROM {table} n
         WHERE t.kind = $1 AND t.id = ANY($2) AND t.valid_to_position IS NULL
           AND n.kind = t.kind AND n.id = t.id AND n.version = t.version + 1"
    ))
    .bind(kind.as_str())
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
