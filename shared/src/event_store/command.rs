//! Running one command against one aggregate: load, decide, append, snapshot, all in one
//! transaction. `run_command` adds what the HTTP side needs around it: the `Idempotency-Key`
//! record written in the same transaction as the events, unique claims, and retries of lost
//! races when the client did not pin a version with `If-Match`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Loaded, Metadata, StoreError, append_to_stream, load_aggregate, snapshot};
use crate::domain::{Aggregate, DomainError};

/// How often a command that lost a race (or hit a transient database error) is tried in all.
const MAX_ATTEMPTS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// `If-Match` named a version the aggregate is no longer (or not yet) at.
    #[error("the {stream_type} is at version {actual}, not {expected}")]
    VersionMismatch {
        stream_type: &'static str,
        expected: i64,
        actual: i64,
    },
    /// A concurrent write won, or a unique value is taken.
    #[error("{0}")]
    Conflict(String),
    /// The connection failed while committing: the command may or may not have been applied, so
    /// it is not retried blindly (that could apply it twice).
    #[error(
        "the database connection failed while committing; the command may or may not have been applied"
    )]
    OutcomeUnknown,
    /// The `Idempotency-Key` was first used with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a command is run with besides the decision itself.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    pub metadata: Metadata,
    /// From `If-Match`: append only if the aggregate is still at this version.
    pub expected_version: Option<i64>,
    pub idempotency: Option<IdempotencyRequest>,
    /// Values to claim for this aggregate in the same transaction (e.g. its SKU).
    pub claims: Vec<UniqueClaim>,
    /// Snapshot the aggregate whenever its version crosses a multiple of this (0: never).
    pub snapshot_every: i64,
}

#[derive(Debug, Clone)]
pub struct IdempotencyRequest {
    pub key: String,
    /// What identifies the request: a retry must match it exactly (method, path, body).
    pub fingerprint: serde_json::Value,
    /// How long the first response is kept; a key older than this is new again.
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct UniqueClaim {
    pub kind: &'static str,
    pub value: String,
    /// The message of the 409 when the value is taken.
    pub taken_message: String,
}

/// A response as the idempotency record keeps it, to be replayed verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommandReply {
    pub response: StoredResponse,
    /// True when the response is the stored answer to an earlier request with the same key.
    pub replayed: bool,
}

/// The aggregate after a command, and where its events landed.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    pub loaded: Loaded<A>,
    pub events: Vec<A::Event>,
    /// Position of the last appended event; `None` when the command appended nothing.
    pub last_position: Option<i64>,
}

/// Loads the aggregate, decides, and appends inside the caller's transaction. The saga calls
/// this directly so that its step, its own state and its checkpoint commit together.
pub async fn execute_in_tx<A, D>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    options: &CommandOptions,
    decide: D,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    D: FnOnce(&A) -> Result<Vec<A::Event>, DomainError>,
{
    let loaded = load_aggregate::<A>(conn, stream_id, options.snapshot_every > 0).await?;
    if let Some(expected) = options.expected_version
        && loaded.state.exists()
        && expected != loaded.version
    {
        return Err(CommandError::VersionMismatch {
            stream_type: A::STREAM_TYPE,
            expected,
            actual: loaded.version,
        });
    }
    let events = decide(&loaded.state)?;
    if events.is_empty() {
        return Ok(Executed {
            loaded,
            events,
            last_position: None,
        });
    }
    let version_before = loaded.version;
    let appended = append_to_stream(
        conn,
        stream_id,
        A::STREAM_TYPE,
        version_before,
        &events,
        &options.metadata,
    )
    .await?;
    let loaded = Loaded {
        state: loaded.state.fold(&events),
        version: appended.version,
    };
    if snapshot::is_due(version_before, appended.version, options.snapshot_every) {
        snapshot::write(conn, stream_id, &loaded).await?;
    }
    Ok(Executed {
        loaded,
        events,
        last_position: Some(appended.last_position),
    })
}

/// Runs a command in its own transaction, with idempotency, claims and retries, and returns
/// the response that `respond` builds from its outcome (or the stored one, on a replay).
pub async fn run_command<A, D, R>(
    pool: &PgPool,
    stream_id: Uuid,
    options: &CommandOptions,
    decide: D,
    respond: R,
) -> Result<CommandReply, CommandError>
where
    A: Aggregate,
    D: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    R: Fn(&Executed<A>) -> StoredResponse,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_once(pool, stream_id, options, &decide, &respond).await {
            Err(CommandError::Store(StoreError::VersionConflict { .. }))
                if options.expected_version.is_some() =>
            {
                // The client pinned a version and a concurrent writer moved past it.
                let actual = current_version(pool, stream_id).await?;
                let expected = options.expected_version.unwrap_or_default();
                return Err(CommandError::VersionMismatch {
                    stream_type: A::STREAM_TYPE,
                    expected,
                    actual,
                });
            }
            Err(CommandError::Store(error)) if error.is_transient() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(%stream_id, attempt, %error, "retrying a command");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(CommandError::Store(StoreError::VersionConflict { .. })) => {
                return Err(CommandError::Conflict(format!(
                    "the {} is being changed by other requests; try again",
                    A::STREAM_TYPE
                )));
            }
            other => return other,
        }
    }
}

async fn try_once<A, D, R>(
    pool: &PgPool,
    stream_id: Uuid,
    options: &CommandOptions,
    decide: &D,
    respond: &R,
) -> Result<CommandReply, CommandError>
where
    A: Aggregate,
    D: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    R: Fn(&Executed<A>) -> StoredResponse,
{
    let mut tx = pool.begin().await.map_err(StoreError::from)?;
    if let Some(idempotency) = &options.idempotency
        && let Some(stored) = find_idempotent_response(&mut tx, idempotency).await?
    {
        return Ok(CommandReply {
            response: stored,
            replayed: true,
        });
    }
    let executed = execute_in_tx::<A, _>(&mut tx, stream_id, options, decide).await?;
    for claim in &options.claims {
        claim_unique(&mut tx, claim, stream_id).await?;
    }
    let response = respond(&executed);
    if let Some(idempotency) = &options.idempotency {
        store_idempotent_response(&mut tx, idempotency, &response).await?;
    }
    tx.commit().await.map_err(|error| {
        tracing::warn!(%stream_id, %error, "commit failed: the outcome is unknown");
        CommandError::OutcomeUnknown
    })?;
    Ok(CommandReply {
        response,
        replayed: false,
    })
}

/// Serialises requests that share a key (the lock lasts until the transaction ends), then
/// answers with the stored response if there is one. A racing retry therefore waits for the
/// first request to commit and replays its answer instead of appending again.
async fn find_idempotent_response(
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
        Some((_, response)) => serde_json::from_value(response)
            .map(Some)
            .map_err(|error| CommandError::Store(StoreError::Corrupt(error.to_string()))),
    }
}

async fn store_idempotent_response(
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

/// Claims a unique value; a concurrent claim of the same value waits for this transaction and
/// then finds the value taken, so of two racing creates exactly one succeeds.
async fn claim_unique(
    conn: &mut PgConnection,
    claim: &UniqueClaim,
    stream_id: Uuid,
) -> Result<(), CommandError> {
    let inserted = sqlx::query(
        "INSERT INTO unique_claims (kind, value, stream_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(claim.kind)
    .bind(&claim.value)
    .bind(stream_id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if inserted == 0 {
        Err(CommandError::Conflict(claim.taken_message.clone()))
    } else {
        Ok(())
    }
}

async fn current_version(pool: &PgPool, stream_id: Uuid) -> Result<i64, CommandError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from)?;
    Ok(version.unwrap_or(0))
}

/// Exponential backoff with jitter, so racing writers do not collide again in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let base_ms = 2u64.saturating_pow(attempt.min(8)).min(200);
    Duration::from_millis(base_ms + fastrand::u64(0..=base_ms))
}
