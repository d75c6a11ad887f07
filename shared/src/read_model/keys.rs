//! The Redis key layout. Every key starts with the configured prefix. Documents live under a
//! generation (`{prefix}g{n}:`) so a rebuild can fill generation n+1 while n keeps serving;
//! `{prefix}lookups:live` names the live generation. When Redis loses everything, that pointer
//! is gone too, which is how the projector notices and rebuilds.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The live generation's number.
    pub fn live_generation(&self) -> String {
        format!("{}lookups:live", self.prefix)
    }
    /// The generation a rebuild is filling, while it runs.
    pub fn building_generation(&self) -> String {
        format!("{}lookups:building", self.prefix)
    }
    pub fn generation_counter(&self) -> String {
        format!("{}lookups:next_generation", self.prefix)
    }
    /// All keys of one generation start with this.
    pub fn generation_base(&self, generation: i64) -> String {
        format!("{}g{generation}:", self.prefix)
    }
    pub fn checkpoint(&self, generation: i64) -> String {
        format!("{}checkpoint", self.generation_base(generation))
    }
    /// A document: a hash with `doc` (JSON) and `position` (of the last event folded in).
    pub fn document(&self, generation: i64, kind: &str, id: uuid::Uuid) -> String {
        format!("{}{kind}:{id}", self.generation_base(generation))
    }
    /// Pub/sub channel on which the projector announces `"<name> <position>"` after each batch.
    pub fn progress_channel(&self) -> String {
        format!("{}projections:progress", self.prefix)
    }
}
