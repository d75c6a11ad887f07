//! `document_versions`: the temporal read model. Every version of every order, product and
//! customer document, with the positions and times it was valid from and to, so the query-api
//! can answer "what did this look like at position P, or at time T" without reading the log.
//! Each version is folded by the same functions as the `lookups` documents (`OrderView::fold`,
//! which is the domain's `Order::evolve`, and the product and customer folds), so a version
//! here is exactly the document `lookups` held at that position.
//!
//! Idempotent like every read model: an event at or below the newest version's position is
//! skipped, a version already there is left alone, and a version is closed only while it is
//! open, so a batch applied twice changes nothing.
//!
//! Every read and write goes by primary key (kind, id, version), so a batch costs the same
//! however long the documents' histories grow.

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
        // One read of the newest stored versions and one write, for every kind at once.
        let mut stored = newest_stored(conn, &table, events).await?;
        let mut changes = Changes::default();
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
}

/// One version of a document, valid from the event that made it until the next version of
/// the same document in the batch (open when it is the newest).
struct Version {
    kind: StreamType,
    id: Uuid,
    version: i64,
    valid_from_position: i64,
    valid_from: chrono::DateTime<chrono::Utc>,
    valid_to: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    document: serde_json::Value,
}

/// A stored open version that a version of this batch succeeds.
struct Closing {
    kind: StreamType,
    id: Uuid,
    version: i64,
    valid_to_position: i64,
    valid_to: chrono::DateTime<chrono::Utc>,
}

/// What a batch writes for one kind of document.
#[derive(Default)]
struct Changes {
    versions: Vec<Version>,
    closings: Vec<Closing>,
}

/// Where a document's newest version is, while the batch is folded.
enum Open {
    /// None yet.
    Nowhere,
    /// Stored, with this version number.
    Stored(i64),
    /// Made by this batch, at this index of `Changes::versions`.
    New(usize),
}

/// The newest version of a document as the fold goes: the position it came from, its document
/// (`None` when it does not exist) and where it is kept.
struct Newest<V> {
    position: i64,
    view: Option<V>,
    open: Open,
}

/// The newest stored version of each document the batch's events concern, by kind: (id,
/// version, position it came from, document). One backward primary-key step per document: the
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
    let rows: Vec<(String, Uuid, i64, i64, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT newest.* FROM UNNEST($1::text[], $2::uuid[]) AS wanted(kind, id)
         CROSS JOIN LATERAL (
             SELECT kind, id, version, valid_from_position, document FROM {table}
             WHERE kind = wanted.kind AND id = wanted.id
             ORDER BY version DESC LIMIT 1
         ) newest"
    ))
    .bind(kinds)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut stored: HashMap<StreamType, Vec<StoredVersion>> = HashMap::new();
    for (kind, id, version, position, document) in rows {
        let kind = StreamType::parse(&kind).ok_or_else(|| {
            ProjectionError::Corrupt(format!("document_versions holds an unknown kind {kind:?}"))
        })?;
        stored
            .entry(kind)
            .or_default()
            .push((id, version, position, document));
    }
    Ok(stored)
}

/// A stored newest version: (id, version, position it came from, document).
type StoredVersion = (Uuid, i64, i64, serde_json::Value);

/// Folds the batch's events of `kind` one at a time onto the newest stored version of each
/// document (`stored`), keeping every intermediate document as a version of its own; each
/// version is closed by the next one, so `valid_to` is known before anything is written.
fn new_versions<V, E>(
    changes: &mut Changes,
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
    for (id, version, position, document) in stored {
        let view = Some(serde_json::from_value(document)?);
        newest.insert(
            id,
            Newest {
                position,
                view,
                open: Open::Stored(version),
            },
        );
    }
    for recorded in events.iter().filter(|e| e.stream_type == kind) {
        let current = newest.entry(recorded.stream_id).or_insert(Newest {
            position: 0,
            view: None,
            open: Open::Nowhere,
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
        let starts = (recorded.position, recorded.recorded_at);
        match current.open {
            Open::Nowhere => {}
            Open::Stored(version) => changes.closings.push(Closing {
                kind,
                id: recorded.stream_id,
                version,
                valid_to_position: starts.0,
                valid_to: starts.1,
            }),
            Open::New(index) => changes.versions[index].valid_to = Some(starts),
        }
        current.open = Open::New(changes.versions.len());
        changes.versions.push(Version {
            kind,
            id: recorded.stream_id,
            version: recorded.stream_version,
            valid_from_position: starts.0,
            valid_from: starts.1,
            valid_to: None,
            document: serde_json::to_value(&view)?,
        });
        current.position = recorded.position;
        current.view = Some(view);
    }
    Ok(())
}

/// Closes the stored versions the batch succeeded and inserts the new versions, each by
/// primary key. Applied again, the closings find their versions closed already and the
/// inserts find theirs there: nothing changes.
async fn write_versions(
    conn: &mut PgConnection,
    table: &str,
    changes: Changes,
) -> Result<(), ProjectionError> {
    let Changes { versions, closings } = changes;
    if !closings.is_empty() {
        let mut kinds = Vec::with_capacity(closings.len());
        let mut ids = Vec::with_capacity(closings.len());
        let mut numbers = Vec::with_capacity(closings.len());
        let mut positions = Vec::with_capacity(closings.len());
        let mut times = Vec::with_capacity(closings.len());
        for closing in closings {
            kinds.push(closing.kind.as_str());
            ids.push(closing.id);
            numbers.push(closing.version);
            positions.push(closing.valid_to_position);
            times.push(closing.valid_to);
        }
        sqlx::query(&format!(
            "UPDATE {table} t SET valid_to_position = c.position, valid_to = c.at
             FROM UNNEST($1::text[], $2::uuid[], $3::bigint[], $4::bigint[], $5::timestamptz[])
                  AS c(kind, id, version, position, at)
             WHERE t.kind = c.kind AND t.id = c.id AND t.version = c.version
               AND t.valid_to_position IS NULL"
        ))
        .bind(kinds)
        .bind(ids)
        .bind(numbers)
        .bind(positions)
        .bind(times)
        .execute(&mut *conn)
        .await?;
    }
    if versions.is_empty() {
        return Ok(());
    }
    let mut kinds = Vec::with_capacity(versions.len());
    let mut version_ids = Vec::with_capacity(versions.len());
    let mut numbers = Vec::with_capacity(versions.len());
    let mut positions = Vec::with_capacity(versions.len());
    let mut times = Vec::with_capacity(versions.len());
    let mut to_positions = Vec::with_capacity(versions.len());
    let mut to_times = Vec::with_capacity(versions.len());
    let mut documents = Vec::with_capacity(versions.len());
    for version in versions {
        kinds.push(version.kind.as_str());
        version_ids.push(version.id);
        numbers.push(version.version);
        positions.push(version.valid_from_position);
        times.push(version.valid_from);
        to_positions.push(version.valid_to.map(|(position, _)| position));
        to_times.push(version.valid_to.map(|(_, at)| at));
        documents.push(version.document);
    }
    sqlx::query(&format!(
        "INSERT INTO {table}
             (kind, id, version, valid_from_position, valid_from, valid_to_position, valid_to, document)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::bigint[], $4::bigint[], $5::timestamptz[],
                              $6::bigint[], $7::timestamptz[], $8::jsonb[])
         ON CONFLICT (kind, id, version) DO NOTHING"
    ))
    .bind(kinds)
    .bind(version_ids)
    .bind(numbers)
    .bind(positions)
    .bind(times)
    .bind(to_positions)
    .bind(to_times)
    .bind(documents)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
