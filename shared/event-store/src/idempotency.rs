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

/// The stored response to this key, if a request with it has committed. Two racing requests
/// with one key may both find none and both run: the second's `store_response` then waits for
/// the first to commit and fails with `IdempotencyKeyTaken`, which rolls its work back; run
/// again, it finds the first one's response here and replays it. (No lock is taken first: the
/// unique key itself serialises them, without a round trip of its own.)
pub(crate) async fn find_response(
    conn: &mut PgConnection,
    idempotency: &IdempotencyRequest,
) -> Result<Option<StoredResponse>, CommandError> {
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
    // An expired record of the same key (not yet purged) is replaced; a live one was stored
    // by a racing request since `find_response` (the insert waited for it to commit).
    let stored = sqlx::query(
        "INSERT INTO idempotency_keys (key, request, response) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE
         SET request = EXCLUDED.request, response = EXCLUDED.response, created_at = now()
         WHERE idempotency_keys.created_at <= now() - make_interval(secs => $4)",
    )
    .bind(&idempotency.key)
    .bind(&idempotency.fingerprint)
    .bind(response)
    .bind(idempotency.retention.as_secs_f64())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if stored == 0 {
        return Err(StoreError::IdempotencyKeyTaken.into());
    }
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
