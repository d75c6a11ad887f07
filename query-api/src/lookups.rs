//! Single-resource lookups from the Redis documents. One script call reads the live generation,
//! the document and the generation's checkpoint together, so the position reported with a
//! document is one the document is known to reflect. The document is answered as stored: it is
//! already the JSON the API documents, so it is neither decoded nor encoded again.
//!
//! A missing document means "no such thing" only once the live generation is complete: while
//! the projector replays the log into a generation it made because Redis lost its data, the
//! document may simply not be replayed yet, and the answer is 503 (retry), never 404.

use read_models::{DocumentKind, LookupScripts, RedisKeys};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Lookups {
    redis: ConnectionManager,
    scripts: LookupScripts,
}

impl Lookups {
    pub fn new(redis: ConnectionManager, keys: RedisKeys) -> Self {
        Self {
            redis,
            scripts: LookupScripts::new(keys),
        }
    }

    /// The stored JSON document of `kind` with this id (if any), and the position the read
    /// model had reached; `Rebuilding` while the read model cannot tell whether it exists.
    pub async fn find(
        &self,
        kind: DocumentKind,
        id: Uuid,
    ) -> Result<(Option<String>, i64), ApiError> {
        let mut redis = self.redis.clone();
        let found: Option<(i64, Option<String>, i64)> = self
            .scripts
            .read_live_document(kind, id)
            .invoke_async(&mut redis)
            .await?;
        match found {
            Some((_, None, 0)) | None => Err(ApiError::Rebuilding),
            Some((position, document, _)) => Ok((document, position)),
        }
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await?;
        Ok(())
    }
}
