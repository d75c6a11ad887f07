//! The Redis key layout: the one place that spells a key. Every key starts with the configured
//! prefix. Documents live under a generation (`{prefix}g{n}:`) so a rebuild can fill generation
//! n+1 while n keeps serving; `{prefix}lookups:v2:live` names the live generation. When Redis
//! loses everything, that pointer is gone too, which is how the projector notices and rebuilds;
//! the generation it then replays carries the position it must reach before it is complete.
//!
//! A document key holds exactly the JSON the query-api answers, as a plain string, so a lookup
//! is one MGET (`LiveRead`) and the bytes go out as stored; the position each document was
//! written at, which only the writer needs, lives in one hash per generation (`positions`).
//! Layout 1 kept each document in a hash with its position, under the pointer `lookups:live`
//! (`legacy_live_generation`): a projector of this layout ignores that data, replays into a
//! generation of its own, and deletes the old one.
//!
//! Lua scripts that must find the live generation themselves get the two halves of a
//! generation's key base from `generation_base_parts`, so they never spell the layout either.

use domain::StreamType;
use uuid::Uuid;

/// The kinds of documents the `lookups` read model keeps, one per aggregate.
pub type DocumentKind = StreamType;

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
        format!("{}lookups:v2:live", self.prefix)
    }
    /// The live pointer of layout 1 (documents as hashes), which a projector deletes together
    /// with the generation it names once it has made a generation of this layout.
    pub fn legacy_live_generation(&self) -> String {
        format!("{}lookups:live", self.prefix)
    }
    /// The generation a rebuild is filling, while it runs.
    pub fn building_generation(&self) -> String {
        format!("{}lookups:v2:building", self.prefix)
    }
    pub fn generation_counter(&self) -> String {
        format!("{}lookups:next_generation", self.prefix)
    }
    /// All keys of one generation start with this.
    pub fn generation_base(&self, generation: i64) -> String {
        let (before, after) = self.generation_base_parts();
        format!("{before}{generation}{after}")
    }
    /// `generation_base(n)` is `before + n + after`: for scripts that learn `n` from Redis.
    pub fn generation_base_parts(&self) -> (String, &'static str) {
        (format!("{}g", self.prefix), ":")
    }
    /// Within a generation: the key of its checkpoint.
    pub const CHECKPOINT_SUFFIX: &'static str = "checkpoint";
    pub fn checkpoint(&self, generation: i64) -> String {
        format!(
            "{}{}",
            self.generation_base(generation),
            Self::CHECKPOINT_SUFFIX
        )
    }
    /// Within a generation made because Redis had none (a replay from position 0 while the
    /// query-api is answering): the key of the log's head position when the replay started.
    /// Until the generation's checkpoint reaches it, a missing document may just not be replayed
    /// yet. A generation without it (made by a rebuild, which goes live only once caught up) is
    /// complete from the start.
    pub const REPLAY_UNTIL_SUFFIX: &'static str = "replay_until";
    pub fn replay_until(&self, generation: i64) -> String {
        format!(
            "{}{}",
            self.generation_base(generation),
            Self::REPLAY_UNTIL_SUFFIX
        )
    }
    /// Within a generation: the hash of every document's position (of the last event folded
    /// in), by document suffix. Only the projector reads it, to fold and to never move a
    /// document backwards.
    pub const POSITIONS_SUFFIX: &'static str = "positions";
    pub fn positions(&self, generation: i64) -> String {
        format!(
            "{}{}",
            self.generation_base(generation),
            Self::POSITIONS_SUFFIX
        )
    }
    /// The keys of a generation that are not documents.
    pub const OWN_SUFFIXES: [&'static str; 3] = [
        Self::CHECKPOINT_SUFFIX,
        Self::REPLAY_UNTIL_SUFFIX,
        Self::POSITIONS_SUFFIX,
    ];
    /// Within a generation: the key of a document, a string holding its JSON exactly as the
    /// query-api answers it; also its field in `positions`.
    pub fn document_suffix(kind: DocumentKind, id: Uuid) -> String {
        format!("{kind}:{id}")
    }
    pub fn document(&self, generation: i64, kind: DocumentKind, id: Uuid) -> String {
        format!(
            "{}{}",
            self.generation_base(generation),
            Self::document_suffix(kind, id)
        )
    }
    /// Pub/sub channel on which the projector announces `"<name> <position>"` after each batch.
    pub fn progress_channel(&self) -> String {
        format!("{}projections:progress", self.prefix)
    }
    /// A SCAN pattern that matches every key of one generation and nothing else (the prefix may
    /// hold characters that SCAN treats as wildcards).
    pub fn generation_pattern(&self, generation: i64) -> String {
        let base = self.generation_base(generation);
        let mut pattern = String::with_capacity(base.len() + 1);
        for c in base.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_generation_shares_its_base_and_the_scripts_halves_agree() {
        let keys = RedisKeys::new("shop[1]:");
        let (before, after) = keys.generation_base_parts();
        assert_eq!(format!("{before}7{after}"), keys.generation_base(7));
        let id = Uuid::nil();
        assert!(
            keys.document(7, StreamType::Order, id)
                .starts_with(&keys.generation_base(7))
        );
        assert!(keys.checkpoint(7).starts_with(&keys.generation_base(7)));
        assert!(keys.replay_until(7).starts_with(&keys.generation_base(7)));
        assert!(keys.positions(7).starts_with(&keys.generation_base(7)));
        assert_ne!(keys.live_generation(), keys.legacy_live_generation());
        assert_eq!(keys.generation_pattern(7), "shop\\[1\\]:g7:*");
    }
}
