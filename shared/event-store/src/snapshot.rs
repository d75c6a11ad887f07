//! Aggregate snapshots. A snapshot is only an optimisation: one whose schema version differs
//! from the aggregate's current `SNAPSHOT_SCHEMA`, or that no longer decodes, is ignored and
//! the aggregate is folded from its events instead.

use sqlx::PgConnection;
use uuid::Uuid;

use domain::Aggregate;

use crate::{Loaded, StoreError};

/// Decodes a stored snapshot; `None` (logged) when it no longer decodes, so that the caller
/// folds from the first event instead.
pub(crate) fn decode<A: Aggregate>(
    stream_id: Uuid,
    version: i64,
    state: serde_json::Value,
) -> Option<Loaded<A>> {
    match serde_json::from_value::<A>(state) {
        Ok(state) => Some(Loaded { state, version }),
        Err(error) => {
            tracing::warn!(%stream_id, %error, "ignoring a snapshot that no longer decodes");
            None
        }
    }
}

/// True when appending moved the stream across a multiple of `every`: time for a snapshot.
pub fn is_due(version_before: i64, version_after: i64, every: i64) -> bool {
    every > 0 && version_before / every != version_after / every
}

pub async fn write<A: Aggregate>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    loaded: &Loaded<A>,
) -> Result<(), StoreError> {
    let state = serde_json::to_value(&loaded.state)
        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
    sqlx::query(
        "INSERT INTO snapshots (stream_id, stream_type, stream_version, schema_version, state)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (stream_id) DO UPDATE
         SET stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version,
             state = EXCLUDED.state, taken_at = now()
         WHERE snapshots.stream_version < EXCLUDED.stream_version",
    )
    .bind(stream_id)
    .bind(A::STREAM_TYPE.as_str())
    .bind(loaded.version)
    .bind(A::SNAPSHOT_SCHEMA)
    .bind(state)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_due;

    #[test]
    fn a_snapshot_is_due_when_a_multiple_of_every_is_crossed() {
        assert!(is_due(99, 100, 100));
        assert!(is_due(98, 101, 100));
        assert!(!is_due(100, 101, 100));
        assert!(!is_due(1, 2, 0));
    }
}
