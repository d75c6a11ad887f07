//! `Idempotency-Key` records: the first response to a key is stored in the transaction of the
//! events it appended, so a retry can be answered with it instead of appending again.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::{CommandError, StoreError};

#[derive(Debug, Clone)]
pub struct IdempotencyRequest {
    pub key: String,
    /// What identifies the request: a retry must match it exactly (method, path, body).
    pub fingerprint: serde_json::Value,
    /// How long the first response is kept; a key older than this is new again.
    pub retention: Duration,
}

/// A response as the idempotency record keeps it, to be replayed verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Serialises requests that share a key (the lock lasts until the transaction ends), then
/// answers with the stored response if there is one. A racing retry therefore waits for the
/// first request to commit and replays its answer instead of appending again.
pub(crate) async fn find_response(
    conn: &mut PgConnection,
    idempotency: &IdempotencyRequest,
) -> Result<Option<StoredResponse>, CommandError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7091))")
        .bind(&idempotency.key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from)?;
    let stored: Option<(serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT request, response FROM idempotency_keys
             WHERE key = $1 AND created_at > now() - make_interval(secs => $2)",
    )
    .bind(&idempotency.key)
    .bind(idempotency.retention.as_secs_f64())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    match stored {
        None => Ok(None),
        Some((request, _)) if request != idempotency.fingerprint => {
            Err(CommandError::IdempotencyKeyReused)
        }
        Some((_, response)) => serde_json::from_value(response).map(Some).map_err(|error| {
            CommandError::Store(StoreError::Corrupt(format!(
                "the stored response of Idempotency-Key {:?}: {error}",
                idempotency.key
            )))
        }),
    }
}

pub(crate) async fn store_response(
    conn: &mut PgConnection,
    idempotency: &IdempotencyRequest,
    response: &StoredResponse,
) -> Result<(), CommandError> {
    let response =
        serde_json::to_value(response).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    // An expired record of the same key (not yet purged) is replaced.
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request, response) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE
         SET request = EXCLUDED.request, response = EXCLUDED.response, created_at = now()",
    )
    .bind(&idempotency.key)
    .bind(&idempotency.fingerprint)
    .bind(response)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

/// Deletes idempotency records older than `retention`; returns how many.
pub async fn purge_idempotency_keys(pool: &PgPool, retention: Duration) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}
