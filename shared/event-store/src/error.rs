//! Failures of the store itself, as opposed to refusals of a command.

use domain::StreamType;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since it was loaded.
    #[error("stream {stream_id} was changed concurrently")]
    VersionConflict { stream_id: Uuid },
    /// A concurrent request with the same `Idempotency-Key` committed first: this one's work is
    /// rolled back, and run again it finds that request's response and replays it.
    #[error("a concurrent request with the same Idempotency-Key committed first")]
    IdempotencyKeyTaken,
    /// The stream exists but holds another kind of aggregate: for the aggregate asked for, the
    /// id names nothing.
    #[error("stream {stream_id} is a {found}, not a {expected}")]
    OtherStreamType {
        stream_id: Uuid,
        expected: StreamType,
        found: StreamType,
    },
    /// A stored event or snapshot cannot be decoded into the current types. The message names
    /// the stream and version (or position) so that the event can be found.
    #[error("stored data cannot be decoded: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// True for failures worth retrying as they are: a lost race, a dropped connection.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::VersionConflict { .. } | Self::IdempotencyKeyTaken => true,
            Self::Database(error) => database::is_transient(error),
            Self::Corrupt(_) | Self::OtherStreamType { .. } => false,
        }
    }

    /// True when no connection could be had at all: the pool already waited its whole acquire
    /// timeout for the database, so trying again at once would only wait as long again.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
        )
    }
}
