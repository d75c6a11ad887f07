//! Rebuilding the Redis read model: fill a new generation from position 0 while the live one
//! keeps serving, then flip the live pointer with a script that refuses while the live copy is
//! still ahead, and delete the old generation.

use anyhow::bail;
use event_store::{RecordedEvent, checkpoints};
use read_models::{LookupScripts, names};

use super::{Rebuilder, progress::Progress};
use crate::projections::lookups::{Lookups, Target, delete_generation, new_generation};

impl Rebuilder {
    pub(super) async fn rebuild_lookups(&self) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let scripts = LookupScripts::new(self.keys.clone());
        let generation = new_generation(&mut redis, &scripts).await?;
        let switched = self.fill_and_switch_lookups(&scripts, generation).await;
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.keys.building_generation())
            .exec_async(&mut redis)
            .await;
        let (old_generation, position, progress) = match switched {
            Ok(switched) => switched,
            Err(error) => {
                // Leave nothing behind: a copy that did not go live is of no use. (If only the
                // switch's reply was lost, it may have gone live: then it stays.)
                let live: Option<i64> = redis::cmd("GET")
                    .arg(self.keys.live_generation())
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(Some(generation));
                if live != Some(generation) {
                    let _ = delete_generation(&mut redis, &self.keys, generation).await;
                }
                return Err(error);
            }
        };
        if old_generation > 0 {
            delete_generation(&mut redis, &self.keys, old_generation).await?;
        }
        checkpoints::set_all(&self.pool, names::LOOKUPS, position).await?;
        progress.finish(position);
        Ok(())
    }

    /// Fills `generation` from position 0 and makes it live once it has caught up with the live
    /// copy; returns the generation it replaced, the position reached, and the progress display.
    async fn fill_and_switch_lookups(
        &self,
        scripts: &LookupScripts,
        generation: i64,
    ) -> anyhow::Result<(i64, i64, Progress)> {
        let mut redis = self.redis.clone();
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.building_generation())
            .arg(generation)
            .ignore()
            .cmd("SET")
            .arg(self.keys.checkpoint(generation))
            .arg(0)
            .ignore()
            .exec_async(&mut redis)
            .await?;
        let copy = Lookups::new(
            self.redis.clone(),
            self.keys.clone(),
            self.pool.clone(),
            Target::Building(generation),
        );
        let mut progress = Progress::start(names::LOOKUPS, &self.pool).await?;
        let mut position = 0;
        // Most of the log first, read ahead of the writes; then batch by batch until the copy
        // can switch.
        let mut batches = self.read_ahead(position);
        while let Some(events) = batches.recv().await {
            fill(&copy, generation, &mut position, &events?, &mut progress).await?;
        }
        let old_generation = loop {
            let events = self.read(position).await?;
            if !events.is_empty() {
                fill(&copy, generation, &mut position, &events, &mut progress).await?;
                continue;
            }
            // Caught up: switch if the live copy is not ahead, else read on.
            let switched: i64 = scripts
                .switch_generation(generation)
                .invoke_async(&mut redis)
                .await?;
            if switched >= 0 {
                break switched;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        Ok((old_generation, position, progress))
    }
}

/// Writes a batch read after `position` into the copy being built, and moves `position` on.
async fn fill(
    copy: &Lookups,
    generation: i64,
    position: &mut i64,
    events: &[RecordedEvent],
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    if !copy
        .write_batch(generation, *position, events, last.position)
        .await?
    {
        bail!("another rebuild of lookups took over; this one stopped");
    }
    *position = last.position;
    progress.advance(events.len());
    Ok(())
}
