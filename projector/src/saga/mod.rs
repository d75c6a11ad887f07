//! The order saga: reserve stock for every line, reserve credit, approve; or compensate and
//! reject. Two interchangeable designs run inside the projector as subscriptions:
//! `orchestration` (one coordinator with a persisted instance per order) and `choreography`
//! (three handlers, one per aggregate, each reacting to the others' events).
//!
//! Both issue commands through the shared domain's `decide`, inside the transaction that also
//! moves their checkpoint: a step either happens once, with its checkpoint, or not at all.
//! Every command a saga step issues is committed before any later event is processed, so a
//! cancel that races the saga is always processed after whatever it must release.

pub mod choreography;
mod dead_letters;
mod issuer;
pub mod orchestration;
mod subscription;

pub use dead_letters::retry_dead_letters;
pub use issuer::Issuer;
pub use subscription::{SagaHandler, SagaSubscription};

use shared::event_store::{CommandError, StoreError};

/// Which saga design runs (`SAGA_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SagaMode {
    #[default]
    Orchestration,
    Choreography,
}

/// Why a saga step failed.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Corrupt(String),
}

impl From<serde_json::Error> for SagaError {
    fn from(error: serde_json::Error) -> Self {
        Self::Corrupt(error.to_string())
    }
}

impl SagaError {
    /// Lost races and connection trouble pass with a retry; anything else needs a person.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Command(CommandError::Store(error)) | Self::Store(error) => error.is_transient(),
            Self::Database(error) => shared::event_store::is_transient_database_error(error),
            Self::Command(_) | Self::Corrupt(_) => false,
        }
    }
}

impl From<SagaError> for crate::ProjectionError {
    fn from(error: SagaError) -> Self {
        match error {
            SagaError::Store(error) | SagaError::Command(CommandError::Store(error)) => {
                Self::Store(error)
            }
            SagaError::Database(error) => Self::Database(error),
            other => Self::Corrupt(other.to_string()),
        }
    }
}
