//! The order saga: reserve stock for every line, reserve credit, approve; or compensate and
//! reject. Two interchangeable designs run inside the projector as subscriptions:
//! `orchestration` (one coordinator with a persisted instance per order) and `choreography`
//! (three handlers, one per aggregate, each reacting to the others' events).
//!
//! Both issue commands through the shared domain's `decide`, inside the transaction that also
//! moves their checkpoint: a step either happens once, with its checkpoint, or not at all.
//! Every command a saga step issues is visible (committed, or earlier in the same transaction)
//! before any later event is processed, so a cancel that races the saga is always processed
//! after whatever it must release.

pub mod choreography;
mod dead_letters;
pub mod orchestration;
mod step;
mod subscription;
mod unit_of_work;

pub use dead_letters::{dead_letter_counts, retry_dead_letters};
pub use step::Step;
pub use subscription::{SagaHandler, SagaSubscription};

use event_store::{CommandError, StoreError, checkpoints};

/// Which saga design runs (`SAGA_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SagaMode {
    #[default]
    Orchestration,
    Choreography,
}

/// The saga subscriptions of orchestration, then of choreography.
pub const ORCHESTRATION_SUBSCRIPTIONS: [&str; 1] = ["order_saga"];
pub const CHOREOGRAPHY_SUBSCRIPTIONS: [&str; 3] =
    ["stock_handler", "credit_handler", "order_handler"];

impl SagaMode {
    fn subscriptions(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Self::Orchestration => (&ORCHESTRATION_SUBSCRIPTIONS, &CHOREOGRAPHY_SUBSCRIPTIONS),
            Self::Choreography => (&CHOREOGRAPHY_SUBSCRIPTIONS, &ORCHESTRATION_SUBSCRIPTIONS),
        }
    }
}

/// Makes `mode`'s subscriptions the saga's, each in `partitions` partitions: a subscription
/// seen for the first time starts where every saga subscription already is (not at 0, which
/// would replay every old order as new; handling again an event the other mode handled is
/// harmless, every step being idempotent), and the other mode's subscriptions are retired so
/// /projections does not show them lagging forever. Choreography keeps no state, so a switch to
/// it may happen at any time; a switch to orchestration should happen while no order is
/// pending (its instances start at OrderPlaced).
pub async fn adopt_mode(
    pool: &sqlx::PgPool,
    mode: SagaMode,
    partitions: i32,
) -> Result<(), sqlx::Error> {
    let (active, retired) = mode.subscriptions();
    let all: Vec<&str> = active.iter().chain(retired).copied().collect();
    let mut tx = pool.begin().await?;
    // Processes starting at once adopt one after the other.
    sqlx::query("SELECT pg_advisory_xact_lock(7093, 0)")
        .execute(&mut *tx)
        .await?;
    let start = checkpoints::lowest(&mut *tx, &all).await?.unwrap_or(0);
    for name in active {
        checkpoints::ensure(&mut tx, name, partitions, start).await?;
    }
    let retired_rows = checkpoints::retire(&mut *tx, retired).await?;
    tx.commit().await?;
    if retired_rows > 0 {
        tracing::info!(saga_mode = ?mode, "the saga switched mode; the other mode's subscriptions are retired");
    }
    Ok(())
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
            Self::Database(error) => database::is_transient(error),
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

#[cfg(test)]
mod tests {
    use super::{CHOREOGRAPHY_SUBSCRIPTIONS, ORCHESTRATION_SUBSCRIPTIONS};

    /// The command-api's admission control watches the saga through event-store's list.
    #[test]
    fn the_event_stores_list_of_saga_subscriptions_is_both_modes() {
        let both: Vec<&str> = ORCHESTRATION_SUBSCRIPTIONS
            .iter()
            .chain(&CHOREOGRAPHY_SUBSCRIPTIONS)
            .copied()
            .collect();
        assert_eq!(
            both,
            event_store::subscriptions::SAGA_SUBSCRIPTIONS.to_vec()
        );
    }
}
