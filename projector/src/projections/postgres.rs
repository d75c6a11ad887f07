//! PostgreSQL read models. Each batch is written to the live generation's tables in the same
//! transaction that moves the checkpoint, so a crash anywhere either keeps both or neither: the
//! batch is simply read again. `SELECT … FOR UPDATE` on the checkpoint row also serialises
//! writers, so a second projector instance, or a rebuild switching over, can never interleave.

use std::future::Future;

use shared::event_store::RecordedEvent;
use sqlx::{PgConnection, PgPool};

use super::Projection;
use crate::ProjectionError;

/// A read model stored in `projection_store.<table>_g<generation>` and served through the view
/// `read_model.<table>`.
pub trait PgReadModel: Send + Sync + 'static {
    const NAME: &'static str;
    const TABLE: &'static str;

    /// Writes the effect of `events` into the tables of `generation`.
    fn apply_batch(
        conn: &mut PgConnection,
        generation: i32,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;
}

/// The table of one generation, e.g. `projection_store.orders_g2`.
pub fn table_name(table: &str, generation: i32) -> String {
    format!("projection_store.{table}_g{generation}")
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
        Ok(
            sqlx::query_scalar("SELECT position FROM projector.checkpoints WHERE name = $1")
                .bind(M::NAME)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    async fn apply(&self, from: i64, events: &[RecordedEvent]) -> Result<bool, ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(true);
        };
        let mut tx = self.pool.begin().await?;
        let (position, generation): (i64, i32) = sqlx::query_as(
            "SELECT position, generation FROM projector.checkpoints WHERE name = $1 FOR UPDATE",
        )
        .bind(M::NAME)
        .fetch_one(&mut *tx)
        .await?;
        if position != from {
            return Ok(false);
        }
        M::apply_batch(&mut tx, generation, events).await?;
        sqlx::query(
            "UPDATE projector.checkpoints SET position = $2, last_error = NULL, updated_at = now() WHERE name = $1",
        )
        .bind(M::NAME)
        .bind(last.position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_error(&self, error: Option<&str>) {
        record_error(&self.pool, M::NAME, error).await;
    }
}

/// Stores a subscription's last error for /projections (best effort: the database may be the
/// very thing that is failing).
pub async fn record_error(pool: &PgPool, name: &str, error: Option<&str>) {
    // An UPDATE only: a checkpoint row that is gone (a retired saga subscription) stays gone.
    let recorded = sqlx::query(
        "UPDATE projector.checkpoints SET last_error = $2, updated_at = now()
         WHERE name = $1 AND last_error IS DISTINCT FROM $2",
    )
    .bind(name)
    .bind(error)
    .execute(pool)
    .await;
    if let Err(failure) = recorded {
        tracing::debug!(%failure, name, "cannot record the subscription's error");
    }
}
