//! Rebuilding a PostgreSQL read model: fill the next generation's tables from position 0 while
//! the live ones keep serving, then, holding the live checkpoint rows (which pauses every
//! partition of the live subscription), bring the new tables level with the furthest of them, repoint the `read_model` view, move the
//! checkpoint to the new generation, and commit; then drop the old tables.

use anyhow::{Context, bail};
use event_store::checkpoints;
use read_models::tables::generation_table;

use super::{Rebuilder, progress::Progress};
use crate::projections::postgres::PgReadModel;

impl Rebuilder {
    pub(super) async fn rebuild_postgres<M: PgReadModel>(&self) -> anyhow::Result<()> {
        let live_generation = checkpoints::layout(&self.pool, M::NAME)
            .await
            .with_context(|| format!("cannot read the layout of {}", M::NAME))?
            .with_context(|| {
                format!(
                    "{} has never run: start the projector once before rebuilding it",
                    M::NAME
                )
            })?
            .generation;
        let generation = live_generation + 1;
        let (live_table, new_table) = (
            generation_table(M::TABLE, live_generation),
            generation_table(M::TABLE, generation),
        );
        // A rebuild that died half-way (or just after switching) leaves tables of other
        // generations behind: only the live one is kept.
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT tablename FROM pg_tables
             WHERE schemaname = 'projection_store' AND tablename ~ ('^' || $1 || '_g[0-9]+$') AND tablename <> $2",
        )
        .bind(M::TABLE)
        .bind(format!("{}_g{live_generation}", M::TABLE))
        .fetch_all(&self.pool)
        .await?;
        for leftover in leftovers {
            sqlx::query(&format!(
                "DROP TABLE IF EXISTS projection_store.\"{leftover}\""
            ))
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(&format!(
            "CREATE TABLE {new_table} (LIKE {live_table} INCLUDING ALL)"
        ))
        .execute(&self.pool)
        .await?;

        let mut progress = Progress::start(M::NAME, &self.pool).await?;
        let mut position = 0;
        let mut batches = self.read_ahead(position);
        while let Some(events) = batches.recv().await {
            let events = events?;
            let Some(last) = events.last() else { break };
            let mut tx = self.pool.begin().await?;
            // A rebuild replays decisions already counted: what it observes is not new.
            drop(M::apply_batch(&mut tx, generation, &events).await?);
            tx.commit().await?;
            position = last.position;
            progress.advance(events.len());
        }

        let mut tx = self.pool.begin().await?;
        // Every partition of the live copy pauses on its row (their advances wait), so the
        // switch sees where the furthest of them is.
        let live_position = checkpoints::lock_all(&mut tx, M::NAME).await?.unwrap_or(0);
        let generation_now = checkpoints::layout(&mut *tx, M::NAME)
            .await?
            .map_or(live_generation, |layout| layout.generation);
        if generation_now != live_generation {
            bail!(
                "another rebuild of {} switched over first; nothing was changed",
                M::NAME
            );
        }
        // The live copy is paused on the row lock; bring the new copy at least as far.
        loop {
            let events = self.read(position).await?;
            let Some(last) = events.last() else {
                if position >= live_position {
                    break;
                }
                bail!(
                    "the log ends at {position} but the live copy is at {live_position}: the event table changed under the rebuild"
                );
            };
            drop(M::apply_batch(&mut tx, generation, &events).await?);
            position = last.position;
            progress.advance(events.len());
        }
        sqlx::query(&format!(
            "CREATE OR REPLACE VIEW read_model.{} AS {}",
            M::TABLE,
            M::view_query(&new_table)
        ))
        .execute(&mut *tx)
        .await?;
        checkpoints::set_all(&mut *tx, M::NAME, position).await?;
        checkpoints::switch_generation(&mut tx, M::NAME, generation).await?;
        tx.commit().await?;
        sqlx::query(&format!("DROP TABLE {live_table}"))
            .execute(&self.pool)
            .await?;
        progress.finish(position);
        Ok(())
    }
}
