//! `document_versions`: the temporal read model. Every version of every order, product and
//! customer document, with the positions and times it was valid from and to, so the query-api
//! can answer "what did this look like at position P, or at time T" without reading the log.
//! Each version is folded by the same functions as the `lookups` documents (`OrderView::fold`,
//! which is the domain's `Order::evolve`, and the product and customer folds), so a version
//! here is exactly the document `lookups` held at that position.
//!
//! A version is written once and never changed: when it stopped being valid is when the next
//! version of the document starts, which the view `read_model.document_versions` finds by
//! primary key (`valid_to_position`, `valid_to`). Closing each version with an UPDATE of its
//! row was a second copy of every document in the WAL.
//!
//! Idempotent like every read model: an event at or below the newest version's position is
//! skipped, so a batch applied twice adds nothing. Every read goes by primary key (kind, id,
//! version), so a batch costs the same however long the documents' histories grow.

use std::collections::HashMap;

use domain::{DomainEvent, StreamType};
use event_store::RecordedEvent;
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

    async fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> Result<Observed, ProjectionError> {
        let table = tables::generation_table(Self::TABLE, generation);
        // One read of the newest stored versions and one write, for every kind at once.
        let mut stored = newest_stored(conn, &table, events).await?;
        let mut changes = Vec::new();
        for kind in StreamType::ALL {
            let stored = stored.remove(&kind).unwrap_or_default();
            match kind {
                StreamType::Order => {
                    new_versions(&mut changes, kind, stored, events, OrderView::fold)?
                }
                StreamType::Product => {
                    new_versions(&mut changes, kind, stored, events, ProductView::fold)?
                }
                StreamType::Customer => {
                    new_versions(&mut changes, kind, stored, events, CustomerView::fold)?
                }
            }
        }
        write_versions(conn, &table, changes).await?;
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

    /// Each version with the start of the next one as its end (open while it is the newest).
    fn view_query(generation_table: &str) -> String {
        format!(
            "SELECT v.kind, v.id, v.version, v.valid_from_position,
                    next.valid_from_position AS valid_to_position, v.valid_from,
                    next.valid_from AS valid_to, v.document
             FROM {generation_table} v
             LEFT JOIN LATERAL (
                 SELECT n.valid_from_position, n.valid_from FROM {generation_table} n
                 WHERE n.kind = v.kind AND n.id = v.id AND n.version > v.version
                 ORDER BY n.version LIMIT 1
             ) next ON true"
        )
    }
}

/// One version of a document, valid from the event that made it (until the next version of the
/// same document, which the view `read_model.document_versions` finds by primary key).
struct Version {
    kind: StreamType,
    id: Uuid,
    version: i64,
    valid_from_position: i64,
    valid_from: chrono::DateTime<chrono::Utc>,
    document: serde_json::Value,
}

/// The newest version of a document as the fold goes: the position it came from and its
/// document (`None` when it does not exist).
struct Newest<V> {
    position: i64,
    view: Option<V>,
}

/// The newest stored version of each document the batch's events concern, by kind: (id,
/// position it came from, document). One backward primary-key step per document: the
/// open-version filter would visit every open version of a kind (and every dead index entry an
/// update left behind) under a write load.
async fn newest_stored(
    conn: &mut PgConnection,
    table: &str,
    events: &[RecordedEvent],
) -> Result<HashMap<StreamType, Vec<StoredVersion>>, ProjectionError> {
    let (mut kinds, mut ids) = (Vec::new(), Vec::new());
    for kind in StreamType::ALL {
        for id in stream_ids(events, kind) {
            kinds.push(kind.as_str());
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Uuid, i64, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT newest.* FROM UNNEST($1::text[], $2::uuid[]) AS wanted(kind, id)
         CROSS JOIN LATERAL (
             SELECT kind, id, valid_from_position, document FROM {table}
             WHERE kind = wanted.kind AND id = wanted.id
             ORDER BY version DESC LIMIT 1
         ) newest"
    ))
    .bind(kinds)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut stored: HashMap<StreamType, Vec<StoredVersion>> = HashMap::new();
    for (kind, id, position, document) in rows {
        let kind = StreamType::parse(&kind).ok_or_else(|| {
            ProjectionError::Corrupt(format!("document_versions holds an unknown kind {kind:?}"))
        })?;
        stored
            .entry(kind)
            .or_default()
            .push((id, position, document));
    }
    Ok(stored)
}

/// A stored newest version: (id, position it came from, document).
type StoredVersion = (Uuid, i64, serde_json::Value);

/// Folds the batch's events of `kind` one at a time onto the newest stored version of each
/// document (`stored`), keeping every intermediate document as a version of its own.
fn new_versions<V, E>(
    versions: &mut Vec<Version>,
    kind: StreamType,
    stored: Vec<StoredVersion>,
    events: &[RecordedEvent],
    fold: impl Fn(Option<V>, &EventMeta, &E) -> Option<V>,
) -> Result<(), ProjectionError>
where
    V: Serialize + DeserializeOwned,
    E: DomainEvent,
{
    let mut newest: HashMap<Uuid, Newest<V>> = HashMap::with_capacity(stored.len());
    for (id, position, document) in stored {
        let view = Some(serde_json::from_value(document)?);
        newest.insert(id, Newest { position, view });
    }
    for recorded in events.iter().filter(|e| e.stream_type == kind) {
        let current = newest.entry(recorded.stream_id).or_insert(Newest {
            position: 0,
            view: None,
        });
        if current.position >= recorded.position {
            continue;
        }
        let event: E = recorded.decode()?;
        let meta = EventMeta {
            stream_id: recorded.stream_id,
            version: recorded.stream_version,
            recorded_at: recorded.recorded_at,
        };
        let Some(view) = fold(current.view.take(), &meta, &event) else {
            continue;
        };
        versions.push(Version {
            kind,
            id: recorded.stream_id,
            version: recorded.stream_version,
            valid_from_position: recorded.position,
            valid_from: recorded.recorded_at,
            document: serde_json::to_value(&view)?,
        });
        current.position = recorded.position;
        current.view = Some(view);
    }
    Ok(())
}

/// Inserts the new versions, in one statement. Only versions after the newest stored one are
/// made (the fold skips the events it holds), and the batch's partition is fenced, so a plain
/// INSERT suffices: no speculative insertion, one WAL record a row.
async fn write_versions(
    conn: &mut PgConnection,
    table: &str,
    versions: Vec<Version>,
) -> Result<(), ProjectionError> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::with_capacity(versions.len());
    let mut version_ids = Vec::with_capacity(versions.len());
    let mut numbers = Vec::with_capacity(versions.len());
    let mut positions = Vec::with_capacity(versions.len());
    let mut times = Vec::with_capacity(versions.len());
    let mut documents = Vec::with_capacity(versions.len());
    for version in versions {
        kinds.push(version.kind.as_str());
        version_ids.push(version.id);
        numbers.push(version.version);
        positions.push(version.valid_from_position);
        times.push(version.valid_from);
        documents.push(version.document);
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (kind, id, version, valid_from_position, valid_from, document)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::bigint[], $4::bigint[], $5::timestamptz[],
                              $6::jsonb[])"
    ))
    .bind(kinds)
    .bind(version_ids)
    .bind(numbers)
    .bind(positions)
    .bind(times)
    .bind(documents)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
