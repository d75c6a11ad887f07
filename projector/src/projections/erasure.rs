//! Erasure in the PostgreSQL read models that keep copies of events or documents. When a batch
//! holds an erasure event (`domain::personal::ERASURE_EVENT`), the rows of that stream written
//! before it still hold the personal data as it was revealed then: they are overwritten with
//! `domain::personal::ERASED`, in the batch's own transaction. Events read after the erasure
//! already come out of the store erased, so a rebuild writes the same rows directly.

use domain::personal::{ERASED, ERASURE_EVENT, PERSONAL_FIELDS};
use event_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ProjectionError;

/// The streams whose personal data the batch erases.
pub fn forgotten_streams(events: &[RecordedEvent]) -> Vec<Uuid> {
    let mut streams: Vec<Uuid> = events
        .iter()
        .filter(|event| event.event_type == ERASURE_EVENT)
        .map(|event| event.stream_id)
        .collect();
    streams.sort_unstable();
    streams.dedup();
    streams
}

/// Overwrites the personal fields in the `data` of the event rows of `streams` in `table`
/// (which has `stream_id`, `type` and `data` columns, like `event_feed`).
pub async fn erase_event_rows(
    conn: &mut PgConnection,
    table: &str,
    streams: &[Uuid],
) -> Result<(), ProjectionError> {
    if streams.is_empty() {
        return Ok(());
    }
    for (event_type, fields) in PERSONAL_FIELDS {
        for field in *fields {
            sqlx::query(&format!(
                "UPDATE {table} SET data = jsonb_set(data, ARRAY[$1], to_jsonb($2::text))
                 WHERE stream_id = ANY($3) AND type = $4 AND data ? $1"
            ))
            .bind(field)
            .bind(ERASED)
            .bind(streams)
            .bind(event_type)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Overwrites `fields` of every stored version of the documents of `kind` with these ids in
/// `table` (`document_versions`).
pub async fn erase_document_versions(
    conn: &mut PgConnection,
    table: &str,
    kind: &str,
    ids: &[Uuid],
    fields: &[&str],
) -> Result<(), ProjectionError> {
    if ids.is_empty() {
        return Ok(());
    }
    for field in fields {
        sqlx::query(&format!(
            "UPDATE {table} SET document = jsonb_set(document, ARRAY[$1], to_jsonb($2::text))
             WHERE kind = $3 AND id = ANY($4) AND document ? $1"
        ))
        .bind(field)
        .bind(ERASED)
        .bind(kind)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
