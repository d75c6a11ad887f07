//! Single-resource lookups from the Redis documents. One Lua call reads the live generation, the
//! document and the generation's checkpoint together, so the position reported with a document
//! is one the document is known to reflect.

use redis::{Script, aio::ConnectionManager};
use serde::de::DeserializeOwned;
use shared::read_model::RedisKeys;
use uuid::Uuid;

use crate::problem::ApiError;

#[derive(Clone)]
pub struct Lookups {
    redis: ConnectionManager,
    keys: RedisKeys,
    read: Script,
}

impl Lookups {
    pub fn new(redis: ConnectionManager, keys: RedisKeys) -> Self {
        let read = Script::new(
            "local live = redis.call('GET', KEYS[1])
             if not live then return false end
             local base = ARGV[1] .. 'g' .. live .. ':'
             return {redis.call('GET', base .. 'checkpoint') or '0', redis.call('HGET', base .. ARGV[2], 'doc')}",
        );
        Self { redis, keys, read }
    }

    /// The document of `kind` (order, product, customer) with this id, and the position the
    /// read model had reached.
    pub async fn find<V: DeserializeOwned>(
        &self,
        kind: &str,
        id: Uuid,
    ) -> Result<(Option<V>, i64), ApiError> {
        let mut redis = self.redis.clone();
        let found: Option<(i64, Option<String>)> = self
            .read
            .key(self.keys.live_generation())
            .arg(self.keys.prefix())
            .arg(format!("{kind}:{id}"))
            .invoke_async(&mut redis)
            .await?;
        let (position, doc) = found.ok_or(ApiError::Rebuilding)?;
        let view = doc.map(|doc| serde_json::from_str(&doc)).transpose()?;
        Ok((view, position))
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await?;
        Ok(())
    }
}
