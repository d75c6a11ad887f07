//! `lookups`: one Redis document per order, product and customer, for lookups by id.
//!
//! Each document is a string of its JSON, exactly as the query-api answers it, and the
//! generation's `positions` hash keeps the position of the last event in each. Writes go
//! through a Lua script that refuses to move a document backwards and refuses to write at all
//! unless the target generation is still the one its pointer names, so a replay never undoes
//! anything and a projector that lost a race with a rebuild cannot write into a dropped copy.
//! The checkpoint lives in Redis too: when Redis loses its data (flush, restart without
//! persistence) the live pointer vanishes with it, the projector notices on its next poll and
//! starts a fresh generation from position 0, with no human involved. That generation records
//! the log's head as it starts (`RedisKeys::replay_until`): until its checkpoint gets there, the
//! query-api answers a missing document with 503, not 404, since it may just not be replayed yet.
//! A batch read before the loss cannot move the fresh generation's checkpoint past the events it
//! has not replayed: the checkpoint script refuses a batch that does not follow its checkpoint.

use std::collections::HashMap;

use domain::{DomainEvent, StreamType};
use event_store::{Batch, PartitionKey, RecordedEvent, checkpoints, checkpoints::Lease};
use read_models::{
    CustomerView, EventMeta, LookupScripts, OrderView, ProductView, RedisKeys, names,
};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    ProjectionError,
    fold::{Document, fold_documents, stream_ids},
    subscription::Subscription,
};

/// Which copy a `Lookups` writes: the live one, or the one a rebuild is filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Building(i64),
}

pub struct Lookups {
    redis: ConnectionManager,
    keys: RedisKeys,
    scripts: LookupScripts,
    pool: PgPool,
    target: Target,
}

impl Lookups {
    pub fn new(redis: ConnectionManager, keys: RedisKeys, pool: PgPool, target: Target) -> Self {
        Self {
            redis,
            scripts: LookupScripts::new(keys.clone()),
            keys,
            pool,
            target,
        }
    }

    fn pointer_key(&self) -> String {
        match self.target {
            Target::Live => self.keys.live_generation(),
            Target::Building(_) => self.keys.building_generation(),
        }
    }

    /// The generation this instance writes, creating a fresh live one when Redis has none
    /// (first start, or Redis lost its data).
    pub async fn generation(&self) -> Result<i64, ProjectionError> {
        if let Target::Building(generation) = self.target {
            return Ok(generation);
        }
        let mut redis = self.redis.clone();
        let live: Option<i64> = redis::cmd("GET")
            .arg(self.keys.live_generation())
            .query_async(&mut redis)
            .await?;
        if let Some(generation) = live {
            return Ok(generation);
        }
        // Read before the generation exists: every event committed by then is at or below it.
        let replay_until = event_store::head_position(&self.pool).await?;
        let generation = new_generation(&mut redis, &self.scripts).await?;
        redis::cmd("SET")
            .arg(self.keys.replay_until(generation))
            .arg(replay_until)
            .exec_async(&mut redis)
            .await?;
        let claimed: bool = redis::cmd("SET")
            .arg(self.keys.live_generation())
            .arg(generation)
            .arg("NX")
            .query_async::<Option<String>>(&mut redis)
            .await?
            .is_some();
        if claimed {
            tracing::warn!(
                generation,
                replay_until,
                "the Redis read models are missing (first start, or Redis lost its data): rebuilding them from position 0"
            );
            self.restart_mirror().await;
            self.delete_legacy_layout(&mut redis, generation).await?;
            Ok(generation)
        } else {
            let live: i64 = redis::cmd("GET")
                .arg(self.keys.live_generation())
                .query_async(&mut redis)
                .await?;
            Ok(live)
        }
    }

    /// Deletes what the previous key layout left (its pointer and the generation it named):
    /// nothing reads it any more once a generation of this layout is live.
    async fn delete_legacy_layout(
        &self,
        redis: &mut ConnectionManager,
        live: i64,
    ) -> Result<(), ProjectionError> {
        let pointer = self.keys.legacy_live_generation();
        let legacy: Option<i64> = redis::cmd("GET").arg(&pointer).query_async(redis).await?;
        if let Some(legacy) = legacy {
            // The counter is shared, so the number is another generation's only if it was lost.
            if legacy != live {
                delete_generation(redis, &self.keys, legacy).await?;
            }
            redis::cmd("DEL").arg(&pointer).exec_async(redis).await?;
            tracing::info!(
                legacy,
                "deleted the Redis read models of the previous key layout"
            );
        }
        Ok(())
    }

    async fn checkpoint_of(&self, generation: i64) -> Result<i64, ProjectionError> {
        let mut redis = self.redis.clone();
        let position: Option<i64> = redis::cmd("GET")
            .arg(self.keys.checkpoint(generation))
            .query_async(&mut redis)
            .await?;
        Ok(position.unwrap_or(0))
    }

    /// The PostgreSQL row mirrors the Redis checkpoint for /projections (a fresh generation
    /// starts at 0).
    async fn restart_mirror(&self) {
        if self.target != Target::Live {
            return;
        }
        if let Err(error) = checkpoints::set_all(&self.pool, names::LOOKUPS, 0).await {
            tracing::debug!(%error, "cannot mirror the lookups checkpoint");
        }
    }

    /// Folds `events` (all after `from`) into the documents of `generation` and moves its
    /// checkpoint to `read_to`. Returns false, with the checkpoint left where it is, when the
    /// generation is no longer the one its pointer names, or its checkpoint is not at `from`
    /// (Redis lost its data after the batch was read, and a generation of the same number was
    /// made afresh: moving it would leave a gap).
    pub async fn write_batch(
        &self,
        generation: i64,
        from: i64,
        events: &[RecordedEvent],
        read_to: i64,
    ) -> Result<bool, ProjectionError> {
        let mut redis = self.redis.clone();
        let pointer = self.pointer_key();
        let mut writes = redis::pipe();
        let mut written = 0;
        for kind in StreamType::ALL {
            let ids = stream_ids(events, kind);
            if ids.is_empty() {
                continue;
            }
            let stored = self
                .read_documents(&mut redis, generation, kind, &ids)
                .await?;
            let changed = match kind {
                StreamType::Order => fold_into(&ids, stored, events, kind, OrderView::fold)?,
                StreamType::Product => fold_into(&ids, stored, events, kind, ProductView::fold)?,
                StreamType::Customer => fold_into(&ids, stored, events, kind, CustomerView::fold)?,
            };
            for (id, position, doc) in changed {
                writes.invoke_script(&self.scripts.write_document(
                    &pointer,
                    generation,
                    (kind, id),
                    position,
                    &doc,
                ));
                written += 1;
            }
        }
        if written > 0 {
            self.scripts.prepare_write_document(&mut redis).await?;
            let outcomes: Vec<i64> = writes.query_async(&mut redis).await?;
            if outcomes.contains(&-1) {
                return Ok(false);
            }
        }
        let moved: i64 = self
            .scripts
            .write_checkpoint(&pointer, generation, from, read_to)
            .invoke_async(&mut redis)
            .await?;
        Ok(moved >= 0)
    }
}

impl Lookups {
    /// The stored JSON and position of each of these documents of `generation` (both `None`
    /// for one not written yet), in two commands of one round trip.
    async fn read_documents(
        &self,
        redis: &mut ConnectionManager,
        generation: i64,
        kind: StreamType,
        ids: &[Uuid],
    ) -> Result<Vec<(Option<String>, Option<i64>)>, ProjectionError> {
        let mut documents = redis::cmd("MGET");
        let mut positions = redis::cmd("HMGET");
        positions.arg(self.keys.positions(generation));
        for id in ids {
            documents.arg(self.keys.document(generation, kind, *id));
            positions.arg(RedisKeys::document_suffix(kind, *id));
        }
        let (documents, positions): (Vec<Option<String>>, Vec<Option<i64>>) = redis::pipe()
            .add_command(documents)
            .add_command(positions)
            .query_async(redis)
            .await?;
        Ok(documents.into_iter().zip(positions).collect())
    }
}

/// Folds the batch into the stored documents (`stored`, in the order of `ids`) and returns the
/// changed ones as (id, position, JSON).
fn fold_into<V, E>(
    ids: &[Uuid],
    stored: Vec<(Option<String>, Option<i64>)>,
    events: &[RecordedEvent],
    kind: StreamType,
    fold: impl Fn(Option<V>, &EventMeta, &E) -> Option<V>,
) -> Result<Vec<(Uuid, i64, String)>, ProjectionError>
where
    V: serde::Serialize + serde::de::DeserializeOwned,
    E: DomainEvent,
{
    let mut documents = HashMap::new();
    for (id, (doc, position)) in ids.iter().zip(stored) {
        if let (Some(doc), Some(last_position)) = (doc, position) {
            let view = serde_json::from_str(&doc)?;
            documents.insert(
                *id,
                Document {
                    view,
                    first_position: 0,
                    last_position,
                },
            );
        }
    }
    let changed = fold_documents(&mut documents, events, kind, fold)?;
    let mut out = Vec::with_capacity(changed.len());
    for id in ids {
        if let (true, Some(document)) = (changed.contains(id), documents.get(id)) {
            out.push((
                *id,
                document.last_position,
                serde_json::to_string(&document.view)?,
            ));
        }
    }
    Ok(out)
}

/// Deletes every key of one generation.
pub async fn delete_generation(
    redis: &mut ConnectionManager,
    keys: &RedisKeys,
    generation: i64,
) -> Result<(), ProjectionError> {
    let pattern = keys.generation_pattern(generation);
    let mut cursor = 0u64;
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(redis)
            .await?;
        if !found.is_empty() {
            redis::cmd("UNLINK").arg(&found).exec_async(redis).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Allocates a generation number and makes sure nothing is stored under it: after a partial loss
/// (the counter evicted, old generations kept) a number may come round again.
pub async fn new_generation(
    redis: &mut ConnectionManager,
    scripts: &LookupScripts,
) -> Result<i64, ProjectionError> {
    let generation: i64 = scripts.allocate_generation().invoke_async(redis).await?;
    delete_generation(redis, scripts.keys(), generation).await?;
    redis::cmd("SET")
        .arg(scripts.keys().checkpoint(generation))
        .arg(0)
        .exec_async(redis)
        .await?;
    Ok(generation)
}

/// Lookups run as one partition: a whole batch is one pipelined round trip to Redis, so a
/// second partition would add no throughput, and the query-api reads one checkpoint atomically
/// with each document. Several processes still share the work: each subscription's partitions
/// go to different processes.
///
/// No fence is needed in Redis: a document moves only forward (to a newer position) and holds
/// the deterministic fold of the log up to it, so a process that lost this partition can only
/// write what the new owner would write, or be refused as older.
impl Subscription for Lookups {
    fn name(&self) -> &'static str {
        names::LOOKUPS
    }

    fn stream_types(&self) -> Vec<StreamType> {
        Vec::new()
    }

    fn partition_key(&self) -> PartitionKey {
        PartitionKey::Stream
    }

    fn fixed_partitions(&self) -> Option<i32> {
        Some(1)
    }

    async fn position(&self, _lease: &Lease) -> Result<i64, ProjectionError> {
        let generation = self.generation().await?;
        self.checkpoint_of(generation).await
    }

    /// No re-read of the checkpoint is needed here: the write scripts refuse a generation that
    /// is no longer wanted, never move a document or the checkpoint backwards, and never move
    /// the checkpoint across events the batch does not hold, so a batch that another process
    /// already applied changes nothing.
    async fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        let generation = self.generation().await?;
        // A generation made since `from` was read (Redis lost its data) starts at 0: folding
        // this batch alone into it would fold documents it replayed only in part.
        if self.checkpoint_of(generation).await? != from {
            return Ok(false);
        }
        if !self
            .write_batch(generation, from, &batch.events, batch.read_to)
            .await?
        {
            return Ok(false);
        }
        // The mirror also tells whether this process still holds the partition.
        Ok(checkpoints::mirror_fenced(&self.pool, lease, batch.read_to).await?)
    }
}
