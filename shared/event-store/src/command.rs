//! Running one command against one aggregate: load, decide, append, snapshot, all in one
//! transaction. `run_command` adds what the HTTP side needs around it: the `Idempotency-Key`
//! record written in the same transaction as the events, unique claims, and retries of lost
//! races when the client did not pin a version with `If-Match`. A command that creates its
//! aggregate under an id made for it (`CommandOptions::new_stream`) reads nothing: the stream
//! cannot exist, so it decides on the empty aggregate and appends at version 1; when nothing is
//! to be written beside its events, that one INSERT is the whole transaction (no BEGIN, no
//! COMMIT: one round trip instead of three).

use std::time::Duration;

use domain::{Aggregate, DomainError, DomainEvent, StreamType, personal::personal_fields};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    IdempotencyRequest, Loaded, Metadata, StoreError, StoredResponse, UniqueClaim,
    append_to_stream, claims, idempotency, load_aggregate, personal, snapshot,
};

/// How often a command that lost a race (or hit a transient database error) is tried in all. A
/// database that cannot be reached at all is not retried here: each try would wait the pool's
/// whole acquire timeout, and the client is better told 503 (with Retry-After) at once.
const MAX_ATTEMPTS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// `If-Match` named a version the aggregate is no longer (or not yet) at.
    #[error("the {stream_type} is at version {actual}, not {expected}")]
    VersionMismatch {
        stream_type: StreamType,
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
    /// Erase this subject's personal data (`personal::forget`) in the same transaction as the
    /// command's events (the erasure event), so the two never part.
    pub forget_personal_data_of: Option<Uuid>,
    /// The stream id was just made for this command (a new order's UUIDv7), so the stream
    /// cannot exist yet: the command decides on the empty aggregate without loading it. Should
    /// the id be taken after all, the unique (stream, version) constraint refuses the append,
    /// and the command is a conflict, not retried.
    pub new_stream: bool,
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
    if options.new_stream {
        return execute_on_loaded(conn, stream_id, options, Loaded::default(), decide).await;
    }
    let loaded = match load_aggregate::<A>(conn, stream_id, options.snapshot_every > 0).await {
        Ok(loaded) => loaded,
        // The id names an aggregate of another kind: for this command it names nothing.
        Err(StoreError::OtherStreamType { .. }) => {
            return Err(DomainError::NotFound(A::STREAM_TYPE).into());
        }
        Err(error) => return Err(error.into()),
    };
    execute_on_loaded(conn, stream_id, options, loaded, decide).await
}

/// Decides on an aggregate the caller already loaded in this transaction, and appends.
pub async fn execute_on_loaded<A, D>(
    conn: &mut PgConnection,
    stream_id: Uuid,
    options: &CommandOptions,
    loaded: Loaded<A>,
    decide: D,
) -> Result<Executed<A>, CommandError>
where
    A: Aggregate,
    D: FnOnce(&A) -> Result<Vec<A::Event>, DomainError>,
{
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
            Err(CommandError::Store(StoreError::VersionConflict { .. })) if options.new_stream => {
                return Err(CommandError::Conflict(format!(
                    "a {} with this id exists already; try again",
                    A::STREAM_TYPE
                )));
            }
            // With an Idempotency-Key the conflict may be a racing request with the same key:
            // trying again replays its response, or finds the version moved (412 then).
            Err(CommandError::Store(StoreError::VersionConflict { .. }))
                if options.expected_version.is_some() && options.idempotency.is_none() =>
            {
                // The client pinned a version and a concurrent writer moved past it.
                let expected = options.expected_version.unwrap_or_default();
                let actual = current_version(pool, stream_id).await?;
                return Err(CommandError::VersionMismatch {
                    stream_type: A::STREAM_TYPE,
                    expected,
                    actual,
                });
            }
            Err(CommandError::Store(error))
                if error.is_transient() && !error.is_unreachable() && attempt < MAX_ATTEMPTS =>
            {
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
    if let Some(events) = events_to_append_alone::<A, _>(options, decide)? {
        return append_alone(pool, stream_id, options, events, respond).await;
    }
    // Announced as an event writer up front: sealing personal data writes its key first.
    let mut tx = crate::begin_appending(pool).await?;
    if let Some(idempotency) = &options.idempotency
        && let Some(stored) = idempotency::find_response(&mut tx, idempotency).await?
    {
        return Ok(CommandReply {
            response: stored,
            replayed: true,
        });
    }
    let executed = execute_in_tx::<A, _>(&mut tx, stream_id, options, decide).await?;
    for claim in &options.claims {
        claims::claim(&mut tx, claim, stream_id).await?;
    }
    if let Some(subject) = options.forget_personal_data_of {
        personal::forget(&mut tx, subject).await?;
    }
    let response = respond(&executed);
    if let Some(idempotency) = &options.idempotency {
        idempotency::store_response(&mut tx, idempotency, &response).await?;
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

/// The events of a command whose INSERT may commit alone, without a transaction around it:
/// on a new stream (nothing to load), with nothing to write beside its events (no idempotency
/// record, no claim, no snapshot due, no personal data and so no key). `None` when the command needs the transaction.
fn events_to_append_alone<A, D>(
    options: &CommandOptions,
    decide: &D,
) -> Result<Option<Vec<A::Event>>, CommandError>
where
    A: Aggregate,
    D: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
{
    if !options.new_stream || options.idempotency.is_some() || !options.claims.is_empty() {
        return Ok(None);
    }
    let events = decide(&A::default())?;
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    // Personal data is sealed with a key stored beside the events: key and events commit
    // together or not at all.
    let personal = events
        .iter()
        .any(|event| !personal_fields(event.event_type()).is_empty());
    let alone = count > 0 && !personal && !snapshot::is_due(0, count, options.snapshot_every);
    Ok(alone.then_some(events))
}

/// Appends the events of a new stream in autocommit: the INSERT is the whole transaction. An
/// error the server reports means it rolled back (and may be retried); a connection lost while
/// it ran leaves the outcome unknown, which is not retried (it could apply the command twice).
async fn append_alone<A, R>(
    pool: &PgPool,
    stream_id: Uuid,
    options: &CommandOptions,
    events: Vec<A::Event>,
    respond: &R,
) -> Result<CommandReply, CommandError>
where
    A: Aggregate,
    R: Fn(&Executed<A>) -> StoredResponse,
{
    let mut conn = pool.acquire().await.map_err(StoreError::from)?;
    let appended = append_to_stream(
        &mut conn,
        stream_id,
        A::STREAM_TYPE,
        0,
        &events,
        &options.metadata,
    )
    .await
    .map_err(|error| match error {
        StoreError::Database(sqlx::Error::Io(_) | sqlx::Error::Protocol(_)) => {
            tracing::warn!(%stream_id, %error, "append failed: the outcome is unknown");
            CommandError::OutcomeUnknown
        }
        error => error.into(),
    })?;
    let executed = Executed {
        loaded: Loaded {
            state: A::default().fold(&events),
            version: appended.version,
        },
        events,
        last_position: Some(appended.last_position),
    };
    Ok(CommandReply {
        response: respond(&executed),
        replayed: false,
    })
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
