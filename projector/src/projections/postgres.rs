//! PostgreSQL read models. Each batch is written to the live generation's tables in the same
//! transaction that moves the partition's checkpoint, under its lease: a crash anywhere either
//! keeps both or neither (the batch is simply read again), and a process that lost the
//! partition cannot commit. Rows are keyed by the partition key, so the partitions of one read
//! model never write the same row.

use std::future::Future;

use domain::StreamType;
use event_store::{Batch, PartitionKey, RecordedEvent, checkpoints, checkpoints::Lease};
use sqlx::{PgConnection, PgPool};

use crate::{ProjectionError, metrics::Observed, subscription::Subscription};

/// A read model stored in `projection_store.<table>_g<generation>` and served through the view
/// `read_model.<table>`.
pub trait PgReadModel: Send + Sync + 'static {
    const NAME: &'static str;
    const TABLE: &'static str;
    /// The streams whose events it folds.
    const STREAM_TYPES: &'static [StreamType];
    /// What its rows are keyed by (and so its partitions).
    const KEY: PartitionKey;

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

impl<M: PgReadModel> Subscription for PgProjection<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn stream_types(&self) -> Vec<StreamType> {
        M::STREAM_TYPES.to_vec()
    }

    fn partition_key(&self) -> PartitionKey {
        M::KEY
    }

    async fn position(&self, lease: &Lease) -> Result<i64, ProjectionError> {
        Ok(checkpoints::position(&self.pool, M::NAME, lease.partition)
            .await?
            .unwrap_or(0))
    }

    async fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        let mut tx = self.pool.begin().await?;
        let mut observed = Observed::default();
        if !batch.events.is_empty() {
            let generation = checkpoints::layout(&mut *tx, M::NAME)
                .await?
                .map_or(1, |layout| layout.generation);
            observed = M::apply_batch(&mut tx, generation, &batch.events).await?;
        }
        if !checkpoints::advance_fenced(&mut *tx, lease, from, batch.read_to).await? {
            return Ok(false);
        }
        tx.commit().await?;
        observed.record();
        Ok(true)
    }
}
