//! `lookups`: one Redis document per order, product and customer, for lookups by id.
//!
//! Each document is a hash of `doc` (JSON) and `position` (of the last event in it). Writes go
//! through a Lua script that refuses to move a document backwards and refuses to write at all
//! unless the target generation is still the one its pointer names, so a replay never undoes
//! anything and a projector that lost a race with a rebuild cannot write into a dropped copy.
//! The checkpoint lives in Redis too: when Redis loses its data (flush, restart without
//! persistence) the live pointer vanishes with it, the projector notices on its next poll and
//! starts a fresh generation from position 0, with no human involved.

use std::collections::HashMap;

use redis::{Script, aio::ConnectionManager};
use shared::{
    event_store::RecordedEvent,
    read_model::{
        CustomerView, Document, OrderView, ProductView, RedisKeys, fold_documents, names,
        stream_ids,
    },
};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Projection, postgres::record_error};
use crate::ProjectionError;

/// Compares decimal positions exactly (Lua numbers are doubles, positions are 64-bit).
const NEWER: &str = r"
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
";

/// KEYS: document, generation pointer. ARGV: expected generation, position, doc.
/// Returns 1 written, 0 already as new, -1 generation no longer wanted.
fn write_document_script() -> Script {
    Script::new(&format!(
        "{NEWER}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local stored = redis.call('HGET', KEYS[1], 'position')
if stored and not newer(ARGV[2], stored) then return 0 end
redis.call('HSET', KEYS[1], 'position', ARGV[2], 'doc', ARGV[3])
return 1"
    ))
}

/// KEYS: checkpoint, generation pointer. ARGV: expected generation, position.
fn write_checkpoint_script() -> Script {
    Script::new(&format!(
        "{NEWER}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local stored = redis.call('GET', KEYS[1])
if stored and not newer(ARGV[2], stored) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1"
    ))
}

/// Which copy a `Lookups` writes: the live one, or the one a rebuild is filling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Building(i64),
}

pub struct Lookups {
    redis: ConnectionManager,
    keys: RedisKeys,
    pool: PgPool,
    target: Target,
    write_document: Script,
    write_checkpoint: Script,
}

const KINDS: [(&str, &str); 3] = [
    ("order", "order"),
    ("product", "product"),
    ("customer", "customer"),
];

impl Lookups {
    pub fn new(redis: ConnectionManager, keys: RedisKeys, pool: PgPool, target: Target) -> Self {
        Self {
            redis,
            keys,
            pool,
            target,
            write_document: write_document_script(),
            write_checkpoint: write_checkpoint_script(),
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
        let generation = new_generation(&mut redis, &self.keys).await?;
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
                "the Redis read models are missing (first start, or Redis lost its data): rebuilding them from position 0"
            );
            self.mirror_checkpoint(0).await;
            Ok(generation)
        } else {
            let live: i64 = redis::cmd("GET")
                .arg(self.keys.live_generation())
                .query_async(&mut redis)
                .await?;
            Ok(live)
        }
    }

    async fn mirror_checkpoint(&self, position: i64) {
        if self.target != Target::Live {
            return;
        }
        let mirrored = sqlx::query(
            "UPDATE projector.checkpoints SET position = $2, last_error = NULL, updated_at = now() WHERE name = $1",
        )
        .bind(names::LOOKUPS)
        .bind(position)
        .execute(&self.pool)
        .await;
        if let Err(error) = mirrored {
            tracing::debug!(%error, "cannot mirror the lookups checkpoint");
        }
    }

    /// Folds `events` into the documents of `generation` and moves its checkpoint. Returns
    /// false when the generation is no longer the one its pointer names.
    pub async fn write_batch(
        &self,
        generation: i64,
        events: &[RecordedEvent],
    ) -> Result<bool, ProjectionError> {
        let Some(last) = events.last() else {
            return Ok(true);
        };
        let mut redis = self.redis.clone();
        let pointer = self.pointer_key();
        let mut writes = redis::pipe();
        let mut written = 0;
        for (kind, stream_type) in KINDS {
            let ids = stream_ids(events, stream_type);
            if ids.is_empty() {
                continue;
            }
            let keys: Vec<String> = ids
                .iter()
                .map(|id| self.keys.document(generation, kind, *id))
                .collect();
            let changed = match kind {
                "order" => {
                    self.fold_into(
                        &mut redis,
                        &ids,
                        &keys,
                        events,
                        stream_type,
                        OrderView::fold,
                    )
                    .await?
                }
                "product" => {
                    self.fold_into(
                        &mut redis,
                        &ids,
                        &keys,
                        events,
                        stream_type,
                        ProductView::fold,
                    )
                    .await?
                }
                _ => {
                    self.fold_into(
                        &mut redis,
                        &ids,
                        &keys,
                        events,
                        stream_type,
                        CustomerView::fold,
                    )
                    .await?
                }
            };
            for (key, position, doc) in changed {
                writes.invoke_script(
                    self.write_document
                        .key(key)
                        .key(&pointer)
                        .arg(generation)
                        .arg(position)
                        .arg(doc),
                );
                written += 1;
            }
        }
        if written > 0 {
            // A pipeline only sends EVALSHA; after a Redis restart the script must be loaded again.
            self.write_document.load_async(&mut redis).await?;
            let outcomes: Vec<i64> = writes.query_async(&mut redis).await?;
            if outcomes.contains(&-1) {
                return Ok(false);
            }
        }
        let moved: i64 = self
            .write_checkpoint
            .key(self.keys.checkpoint(generation))
            .key(&pointer)
            .arg(generation)
            .arg(last.position)
            .invoke_async(&mut redis)
            .await?;
        Ok(moved >= 0)
    }

    /// Loads the documents, folds the batch into them, and returns the changed ones as
    /// (key, position, JSON).
    async fn fold_into<V, E>(
        &self,
        redis: &mut ConnectionManager,
        ids: &[Uuid],
        keys: &[String],
        events: &[RecordedEvent],
        stream_type: &str,
        fold: impl Fn(Option<V>, &RecordedEvent, &E) -> Option<V>,
    ) -> Result<Vec<(String, String, String)>, ProjectionError>
    where
        V: serde::Serialize + serde::de::DeserializeOwned,
        E: shared::domain::DomainEvent,
    {
        let mut reads = redis::pipe();
        for key in keys {
            reads.cmd("HMGET").arg(key).arg("doc").arg("position");
        }
        let stored: Vec<(Option<String>, Option<i64>)> = reads.query_async(redis).await?;
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
        let changed = fold_documents(&mut documents, events, stream_type, fold)?;
        let mut out = Vec::with_capacity(changed.len());
        for (id, key) in ids.iter().zip(keys) {
            if let (true, Some(document)) = (changed.contains(id), documents.get(id)) {
                out.push((
                    key.clone(),
                    document.last_position.to_string(),
                    serde_json::to_string(&document.view)?,
                ));
            }
        }
        Ok(out)
    }
}

/// Deletes every key of one generation.
pub async fn delete_generation(
    redis: &mut ConnectionManager,
    keys: &RedisKeys,
    generation: i64,
) -> Result<(), ProjectionError> {
    // SCAN patterns treat * ? [ ] \ specially: escape them in the configured prefix.
    let base = keys.generation_base(generation);
    let mut pattern = String::with_capacity(base.len() + 1);
    for c in base.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
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
    keys: &RedisKeys,
) -> Result<i64, ProjectionError> {
    // INCR, but never to a number at or below the live or building generation's: if the counter
    // was lost and those survived, the count must not come round to a copy in use.
    let allocate = Script::new(
        "local n = redis.call('INCR', KEYS[1])
         local live = tonumber(redis.call('GET', KEYS[2]) or '0')
         local building = tonumber(redis.call('GET', KEYS[3]) or '0')
         if n <= live or n <= building then
           n = math.max(live, building) + 1
           redis.call('SET', KEYS[1], n)
         end
         return n",
    );
    let generation: i64 = allocate
        .key(keys.generation_counter())
        .key(keys.live_generation())
        .key(keys.building_generation())
        .invoke_async(redis)
        .await?;
    delete_generation(redis, keys, generation).await?;
    redis::cmd("SET")
        .arg(keys.checkpoint(generation))
        .arg(0)
        .exec_async(redis)
        .await?;
    Ok(generation)
}

impl Projection for Lookups {
    fn name(&self) -> &'static str {
        names::LOOKUPS
    }

    async fn position(&self) -> Result<i64, ProjectionError> {
        let generation = self.generation().await?;
        let mut redis = self.redis.clone();
        let position: Option<i64> = redis::cmd("GET")
            .arg(self.keys.checkpoint(generation))
            .query_async(&mut redis)
            .await?;
        Ok(position.unwrap_or(0))
    }

    /// No re-read of the checkpoint is needed here: the write scripts refuse a generation that
    /// is no longer wanted, and never move a document or the checkpoint backwards, so a batch
    /// that another process already applied changes nothing.
    async fn apply(&self, _from: i64, events: &[RecordedEvent]) -> Result<bool, ProjectionError> {
        let generation = self.generation().await?;
        let applied = self.write_batch(generation, events).await?;
        if applied && let Some(last) = events.last() {
            self.mirror_checkpoint(last.position).await;
        }
        Ok(applied)
    }

    async fn record_error(&self, error: Option<&str>) {
        record_error(&self.pool, names::LOOKUPS, error).await;
    }
}
