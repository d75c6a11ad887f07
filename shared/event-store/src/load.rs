//! Loading aggregates: the latest usable snapshot, then the events after it, each upcast to its
//! current schema before it is decoded. Any number of streams, of any kinds, load in one round
//! trip (`load_streams`): a command that needs a customer and ten products, or a saga batch that
//! touches fifty aggregates, does not pay a query per aggregate.
//!
//! A stream is loaded *as* a kind: an id whose stream holds another kind of aggregate is
//! `StoreError::OtherStreamType`, which commands turn into "no such <kind>", never into a
//! decoding failure.

use domain::{Aggregate, StreamType, event_from_parts};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    StoreError,
    personal::{self, PersonalData},
    snapshot, upcast,
};

#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The version of the last event folded into `state` (0 for a stream with no events).
    pub version: i64,
}

impl<A: Default> Default for Loaded<A> {
    fn default() -> Self {
        Self {
            state: A::default(),
            version: 0,
        }
    }
}

/// One stream to load, as the kind of aggregate the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    pub stream_id: Uuid,
    pub stream_type: StreamType,
    /// The snapshot schema to accept, or `None` to fold from the first event.
    pub snapshot_schema: Option<i32>,
    /// Only the events after this version: for a caller that holds the state up to it.
    pub after_version: i64,
}

impl StreamRequest {
    pub fn of<A: Aggregate>(stream_id: Uuid, use_snapshot: bool) -> Self {
        Self {
            stream_id,
            stream_type: A::STREAM_TYPE,
            snapshot_schema: use_snapshot.then_some(A::SNAPSHOT_SCHEMA),
            after_version: 0,
        }
    }

    /// The events of an `A` after `version`, to bring a state held in memory up to date.
    pub fn after<A: Aggregate>(stream_id: Uuid, version: i64) -> Self {
        Self {
            stream_id,
            stream_type: A::STREAM_TYPE,
            snapshot_schema: None,
            after_version: version,
        }
    }
}

/// What the store holds of one stream: its snapshot (if one was asked for and exists) and the
/// events after it, not yet decoded.
#[derive(Debug, Default)]
pub struct StoredStream {
    request: Option<StreamRequest>,
    snapshot: Option<(i64, serde_json::Value)>,
    events: Vec<StoredEventRow>,
}

#[derive(Debug, sqlx::FromRow)]
struct StoredEventRow {
    /// Which request (1-based) the row answers.
    request: i64,
    is_event: bool,
    /// NULL on the snapshot row.
    stream_type: Option<String>,
    stream_version: i64,
    event_type: Option<String>,
    schema_version: Option<i32>,
    data: serde_json::Value,
}

/// Loads `stream_id` as an `A`, using a snapshot when `use_snapshot` is set and one of the
/// current schema exists. The result is the same either way; the snapshot only saves reading
/// events.
pub async fn load_aggregate<A: Aggregate>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    use_snapshot: bool,
) -> Result<Loaded<A>, StoreError> {
    let request = StreamRequest::of::<A>(stream_id, use_snapshot);
    let stored = load_streams(conn, &[request])
        .await?
        .pop()
        .unwrap_or_default();
    stored.fold::<A>(conn).await
}

/// Reads every requested stream (snapshot plus later events) in one query, and answers one
/// `StoredStream` per request, in the order asked. Fold each with `StoredStream::fold`; a
/// stream with no events comes back empty.
pub async fn load_streams(
    conn: &mut PgConnection,
    requests: &[StreamRequest],
) -> Result<Vec<StoredStream>, StoreError> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.stream_id).collect();
    let types: Vec<&str> = requests.iter().map(|r| r.stream_type.as_str()).collect();
    let schemas: Vec<Option<i32>> = requests.iter().map(|r| r.snapshot_schema).collect();
    let after: Vec<i64> = requests.iter().map(|r| r.after_version).collect();
    let rows: Vec<StoredEventRow> = sqlx::query_as(
        "WITH wanted AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::bigint[])
                 WITH ORDINALITY AS w(stream_id, stream_type, snapshot_schema, after_version, request)
         ), snapshot AS (
             SELECT w.request, s.stream_version, s.state FROM wanted w
             JOIN snapshots s ON s.stream_id = w.stream_id AND s.stream_type = w.stream_type
                             AND s.schema_version = w.snapshot_schema
         )
         SELECT request, NULL::text AS stream_type, stream_version, NULL::text AS event_type,
                NULL::integer AS schema_version, state AS data, false AS is_event
         FROM snapshot
         UNION ALL
         SELECT w.request, e.stream_type, e.stream_version, e.event_type, e.schema_version, e.data,
                true AS is_event
         FROM wanted w
         JOIN events e ON e.stream_id = w.stream_id
          AND e.stream_version > coalesce((SELECT s.stream_version FROM snapshot s WHERE s.request = w.request), w.after_version)
         ORDER BY request, is_event, stream_version",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&schemas)
    .bind(&after)
    .fetch_all(&mut *conn)
    .await?;
    let mut streams = unfilled(requests);
    let mut rows = rows;
    personal::reveal(
        conn,
        rows.iter_mut()
            .filter(|row| row.is_event)
            .filter_map(|row| {
                let index = usize::try_from(row.request - 1).ok()?;
                Some(PersonalData {
                    subject: *ids.get(index)?,
                    event_type: row.event_type.as_deref()?,
                    data: &mut row.data,
                })
            })
            .collect(),
    )
    .await?;
    for row in rows {
        let Some(stream) = requested(&mut streams, row.request) else {
            continue;
        };
        if row.is_event {
            stream.events.push(row);
        } else {
            stream.snapshot = Some((row.stream_version, row.data));
        }
    }
    Ok(streams)
}

/// Reads only the first event of each requested stream, in one query (snapshots and
/// `after_version` are ignored). For the facts a first event fixes for good, such as whether an
/// aggregate exists: the rest of a stream, which for a popular product grows with every order,
/// is never read. Personal data is withheld (it reads as `domain::personal::ERASED`), so no key
/// is read either. Fold each with `StoredStream::fold_onto(Loaded::default())`.
pub async fn load_first_events(
    conn: &mut PgConnection,
    requests: &[StreamRequest],
) -> Result<Vec<StoredStream>, StoreError> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.stream_id).collect();
    let rows: Vec<StoredEventRow> = sqlx::query_as(
        "SELECT w.request, e.stream_type, e.stream_version, e.event_type, e.schema_version,
                e.data, true AS is_event
         FROM unnest($1::uuid[]) WITH ORDINALITY AS w(stream_id, request)
         JOIN events e ON e.stream_id = w.stream_id AND e.stream_version = 1",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut streams = unfilled(requests);
    for mut row in rows {
        if let Some(event_type) = &row.event_type {
            personal::withhold(event_type, &mut row.data);
        }
        if let Some(stream) = requested(&mut streams, row.request) {
            stream.events.push(row);
        }
    }
    Ok(streams)
}

impl StoredStream {
    /// Folds the stream into an `A`. A snapshot that no longer decodes is ignored: the stream is
    /// then read again from its first event (on `conn`), so the answer is always the same.
    pub async fn fold<A: Aggregate>(
        self,
        conn: &mut PgConnection,
    ) -> Result<Loaded<A>, StoreError> {
        let request = self.request;
        match self.fold_loaded::<A>() {
            Err(FoldError::UnusableSnapshot) => {
                let Some(request) = request else {
                    return Ok(Loaded::default());
                };
                let request = StreamRequest {
                    snapshot_schema: None,
                    ..request
                };
                let stored = load_streams(conn, &[request])
                    .await?
                    .pop()
                    .unwrap_or_default();
                stored
                    .fold_loaded::<A>()
                    .map_err(FoldError::into_store_error)
            }
            other => other.map_err(FoldError::into_store_error),
        }
    }

    /// Folds the events read after a version onto the state held at that version (see
    /// `StreamRequest::after`).
    pub fn fold_onto<A: Aggregate>(self, held: Loaded<A>) -> Result<Loaded<A>, StoreError> {
        self.fold_from::<A>(held)
            .map_err(FoldError::into_store_error)
    }

    fn fold_loaded<A: Aggregate>(self) -> Result<Loaded<A>, FoldError> {
        self.fold_from(Loaded::default())
    }

    fn fold_from<A: Aggregate>(self, held: Loaded<A>) -> Result<Loaded<A>, FoldError> {
        let stream_id = self.request.map(|r| r.stream_id).unwrap_or_default();
        let mut loaded = match self.snapshot {
            Some((version, state)) => match snapshot::decode::<A>(stream_id, version, state) {
                Some(loaded) => loaded,
                None => return Err(FoldError::UnusableSnapshot),
            },
            None => held,
        };
        for row in self.events {
            let found = row.stream_type.as_deref().and_then(StreamType::parse);
            match found {
                Some(found) if found == A::STREAM_TYPE => {}
                Some(found) => {
                    return Err(FoldError::Store(StoreError::OtherStreamType {
                        stream_id,
                        expected: A::STREAM_TYPE,
                        found,
                    }));
                }
                None => {
                    return Err(FoldError::Store(StoreError::Corrupt(format!(
                        "stream {stream_id} v{} has an unknown stream type {:?}",
                        row.stream_version, row.stream_type
                    ))));
                }
            }
            let event_type = row.event_type.unwrap_or_default();
            let whereabouts = || format!("{event_type} v{} of {stream_id}", row.stream_version);
            let data = upcast::to_current(
                &event_type,
                row.schema_version.unwrap_or(1),
                row.data,
                whereabouts,
            )
            .map_err(FoldError::Store)?;
            let event = event_from_parts::<A::Event>(&event_type, &data).map_err(|error| {
                FoldError::Store(StoreError::Corrupt(format!("{}: {error}", whereabouts())))
            })?;
            loaded.state = loaded.state.evolve(&event);
            loaded.version = row.stream_version;
        }
        Ok(loaded)
    }
}

enum FoldError {
    UnusableSnapshot,
    Store(StoreError),
}

impl FoldError {
    fn into_store_error(self) -> StoreError {
        match self {
            Self::Store(error) => error,
            Self::UnusableSnapshot => {
                StoreError::Corrupt("a snapshot no longer decodes; load without snapshots".into())
            }
        }
    }
}

/// One empty stream per request, in request order, to be filled from rows naming their request
/// by its 1-based ordinal.
fn unfilled(requests: &[StreamRequest]) -> Vec<StoredStream> {
    requests
        .iter()
        .map(|request| StoredStream {
            request: Some(*request),
            ..StoredStream::default()
        })
        .collect()
}

/// The stream of the request with this 1-based ordinal (`None` for one out of range).
fn requested(streams: &mut [StoredStream], request: i64) -> Option<&mut StoredStream> {
    streams.get_mut(usize::try_from(request - 1).ok()?)
}
