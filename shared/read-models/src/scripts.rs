//! Every Lua script that touches the Redis read models. A script runs atomically, which is what
//! each one is for: compare-and-write a document or checkpoint, allocate or switch a generation,
//! read the live checkpoint. Keys come in as KEYS (or, where the live generation is only known
//! inside the script, as the halves from `RedisKeys::generation_base_parts`), so no script
//! spells the key layout. A lookup needs no script: it is one plain MGET (`LiveRead`).

use redis::{Script, ScriptInvocation};
use uuid::Uuid;

use crate::{DocumentKind, RedisKeys};

/// The scripts of the `lookups` read model, compiled once, with the key layout they work on.
/// Each method returns the invocation with its keys and arguments in place.
#[derive(Clone)]
pub struct LookupScripts {
    keys: RedisKeys,
    write_document: Script,
    write_checkpoint: Script,
    allocate_generation: Script,
    switch_generation: Script,
    read_live_checkpoint: Script,
}

impl LookupScripts {
    pub fn new(keys: RedisKeys) -> Self {
        Self {
            keys,
            write_document: write_document(),
            write_checkpoint: write_checkpoint(),
            allocate_generation: allocate_generation(),
            switch_generation: switch_generation(),
            read_live_checkpoint: read_live_checkpoint(),
        }
    }

    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    /// Writes `doc` at `position` as document `kind` `id` of `generation`, unless the pointer
    /// no longer names that generation (-1) or the document is already as new (0); 1 written.
    pub fn write_document(
        &self,
        pointer: &str,
        generation: i64,
        (kind, id): (DocumentKind, Uuid),
        position: i64,
        doc: &str,
    ) -> ScriptInvocation<'_> {
        let mut invocation = self
            .write_document
            .key(self.keys.document(generation, kind, id));
        invocation
            .key(pointer)
            .key(self.keys.positions(generation))
            .arg(generation)
            .arg(position.to_string())
            .arg(doc)
            .arg(RedisKeys::document_suffix(kind, id));
        invocation
    }

    /// Loads `write_document` into Redis: a pipeline only sends EVALSHA, and after a Redis
    /// restart the script must be loaded again.
    pub async fn prepare_write_document(
        &self,
        redis: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<()> {
        self.write_document.load_async(redis).await.map(drop)
    }

    /// Moves the checkpoint of `generation` to `position`, for a batch of the events after
    /// `from` (same answers as `write_document`; -1 also when the checkpoint is below `from`:
    /// the generation was made afresh after the batch was read, so moving it would leave a gap).
    pub fn write_checkpoint(
        &self,
        pointer: &str,
        generation: i64,
        from: i64,
        position: i64,
    ) -> ScriptInvocation<'_> {
        let mut invocation = self.write_checkpoint.key(self.keys.checkpoint(generation));
        invocation
            .key(pointer)
            .arg(generation)
            .arg(position.to_string())
            .arg(from.to_string());
        invocation
    }

    /// A fresh generation number.
    pub fn allocate_generation(&self) -> ScriptInvocation<'_> {
        let mut invocation = self.allocate_generation.key(self.keys.generation_counter());
        invocation
            .key(self.keys.live_generation())
            .key(self.keys.building_generation());
        invocation
    }

    /// Makes `generation` live if it has caught up with the live one: the old generation (0 if
    /// none), or -1 while the live copy is ahead.
    pub fn switch_generation(&self, generation: i64) -> ScriptInvocation<'_> {
        let (before, after) = self.keys.generation_base_parts();
        let mut invocation = self.switch_generation.key(self.keys.live_generation());
        invocation
            .key(self.keys.checkpoint(generation))
            .arg(generation)
            .arg(before)
            .arg(after)
            .arg(RedisKeys::CHECKPOINT_SUFFIX);
        invocation
    }

    /// The live generation's checkpoint, or nil while there is none.
    pub fn read_live_checkpoint(&self) -> ScriptInvocation<'_> {
        let (before, after) = self.keys.generation_base_parts();
        let mut invocation = self.read_live_checkpoint.key(self.keys.live_generation());
        invocation
            .arg(before)
            .arg(after)
            .arg(RedisKeys::CHECKPOINT_SUFFIX);
        invocation
    }
}

/// Compares decimal positions exactly (Lua numbers are doubles, positions are 64-bit).
const NEWER: &str = r"
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
";

/// KEYS: document, generation pointer, the generation's positions. ARGV: expected generation,
/// position, doc, the document's field in positions.
/// Returns 1 written, 0 already as new, -1 generation no longer wanted.
fn write_document() -> Script {
    Script::new(&format!(
        "{NEWER}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local stored = redis.call('HGET', KEYS[3], ARGV[4])
if stored and not newer(ARGV[2], stored) then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[2])
return 1"
    ))
}

/// KEYS: checkpoint, generation pointer. ARGV: expected generation, position, the position the
/// batch follows. Returns 1 moved, 0 already as far, -1 generation no longer wanted or not yet
/// at the batch's start.
fn write_checkpoint() -> Script {
    Script::new(&format!(
        "{NEWER}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local stored = redis.call('GET', KEYS[1]) or '0'
if newer(ARGV[3], stored) then return -1 end
if not newer(ARGV[2], stored) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1"
    ))
}

/// KEYS: counter, live pointer, building pointer. Returns a fresh generation number: INCR, but
/// never to a number at or below the live or building generation's (if the counter was lost
/// and those survived, the count must not come round to a copy in use).
fn allocate_generation() -> Script {
    Script::new(
        "local n = redis.call('INCR', KEYS[1])
         local live = tonumber(redis.call('GET', KEYS[2]) or '0')
         local building = tonumber(redis.call('GET', KEYS[3]) or '0')
         if n <= live or n <= building then
           n = math.max(live, building) + 1
           redis.call('SET', KEYS[1], n)
         end
         return n",
    )
}

/// KEYS: live pointer, new generation's checkpoint. ARGV: new generation, generation base
/// halves (before, after), checkpoint suffix. Returns the old generation (0 if none) after
/// switching, or -1 while the live copy is ahead.
fn switch_generation() -> Script {
    Script::new(&format!(
        "{NEWER}
local live = redis.call('GET', KEYS[1])
if live then
  local live_position = redis.call('GET', ARGV[2] .. live .. ARGV[3] .. ARGV[4]) or '0'
  local new_position = redis.call('GET', KEYS[2]) or '0'
  if newer(live_position, new_position) then return -1 end
end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(live or '0')"
    ))
}

/// KEYS: live pointer. ARGV: generation base halves (before, after), checkpoint suffix.
/// Returns the live generation's checkpoint, or false when there is none.
fn read_live_checkpoint() -> Script {
    Script::new(
        "local live = redis.call('GET', KEYS[1])
         if not live then return false end
         return redis.call('GET', ARGV[1] .. live .. ARGV[2] .. ARGV[3]) or '0'",
    )
}
