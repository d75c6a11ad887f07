//! Why a subscription could not apply a batch.

use event_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Corrupt(String),
    /// The message broker did not take a publish (the relay): down, unreachable, or refusing.
    #[error("NATS: {0}")]
    Broker(String),
    /// The subscription's checkpoint was retired (another projector switched the saga mode).
    #[error("the {0} subscription was retired")]
    Retired(&'static str),
}

impl ProjectionError {
    /// Connection trouble passes; a corrupt event does not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(error) => error.is_transient(),
            Self::Database(error) => database::is_transient(error),
            Self::Redis(_) | Self::Broker(_) => true,
            Self::Corrupt(_) | Self::Retired(_) => false,
        }
    }
}

impl From<serde_json::Error> for ProjectionError {
    fn from(error: serde_json::Error) -> Self {
        Self::Corrupt(error.to_string())
    }
}
