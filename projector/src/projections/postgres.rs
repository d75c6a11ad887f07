//! PostgreSQL read models. Each batch is written to the live generation's tables in the same
//! transaction that moves the checkpoint, so a crash anywhere either keeps both or neither: the
//! batch is simply read again. `SELECT … FOR UPDATE` on the checkpoint row also serialises
//! writers, so a second projector instance, or a rebuild switching over, can never interleave.

use std::future::Future;

use event_store::{RecordedEvent, checkpoints};
use sqlx::{PgConnection, PgPool};

use super::Projection;
use crate::{ProjectionError, metrics::Observed};

/// A read model stored in `projection_store.<table>_g<generation>` and served through the view
/// `read_model.<table>`.
pub trait PgReadModel: Send + Sync + 'static {
    const NAME: &'static str;
    const TABLE: &'static str;

    /// Writes the effect of `events` into the tables of `generation`, and returns what it
    /// observed for the metrics (recorded only once the live copy's batch has committed).
    fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<Observed, ProjectionError>> + Send;
}

pub struct PgProjection<M> {
    pool: PgPool,
    model: std::marker::PhantomData<M>,
}

impl<M: PgReadModel> PgProjection<M> {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            model: std::marker::PhantomData,
        }
    }
}

impl<M: PgReadModel> Projection for PgProjection<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    async fn position(&self) -> Result<i64, ProjectionError> {
        Ok(checkpoints::read(&self.pool, M::NAME)
            .await?
            .map_or(0, |checkpoint| checkpoint.position))
    }

    async fn apply(&self, from: i64, events: &[RecordedEvent]) -> Result<bool, ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(true);
        };
        let mut tx = self.pool.begin().await?;
        let Some(checkpoint) = checkpoints::lock(&mut tx, M::NAME).await? else {
            return Err(ProjectionError::Corrupt(format!(
                "the checkpoint of {} is missing; the migrations create it",
                M::NAME
            )));
        };
        if checkpoint.position != from {
            return Ok(false);
        }
        let observed = M::apply_batch(&mut tx, checkpoint.generation, events).await?;
        checkpoints::advance(&mut *tx, M::NAME, last.position).await?;
        tx.commit().await?;
        observed.record();
        Ok(true)
    }

    async fn record_error(&self, error: Option<&str>) {
        checkpoints::record_error(&self.pool, M::NAME, error).await;
    }
}
