//! Single-resource lookups from the Redis documents: one plain MGET (`read_models::LiveRead`)
//! reads the document with the checkpoint of its generation, so the position reported with a
//! document is one the document is known to reflect. The document is answered as stored: it is
//! already the JSON the API documents, so it is neither decoded nor encoded again.
//!
//! The live generation is remembered between lookups, and the MGET reads the live pointer too:
//! when a rebuild has switched generations, the answer says so and the lookup reads again in the
//! new one. A missing document means "no such thing" only once the live generation is complete:
//! while the projector replays the log into a generation it made because Redis lost its data,
//! the document may simply not be replayed yet, and the answer is 503 (retry), never 404.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use actix_web::web::Bytes;
use read_models::{DocumentKind, LiveDocument, LiveRead, RedisKeys};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::error::ApiError;

/// Reads in a row that may find the generation switched: a rebuild switches once, so a third
/// read that still finds another generation means switches faster than reads.
const MAX_READS: usize = 3;

#[derive(Clone)]
pub struct Lookups {
    redis: ConnectionManager,
    keys: RedisKeys,
    /// The generation last seen live (0 before the first lookup: no generation has number 0).
    live: Arc<AtomicI64>,
}

impl Lookups {
    pub fn new(redis: ConnectionManager, keys: RedisKeys) -> Self {
        Self {
            redis,
            keys,
            live: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The stored JSON document of `kind` with this id (if any), and the position the read
    /// model had reached; `Rebuilding` while the read model cannot tell whether it exists.
    pub async fn find(
        &self,
        kind: DocumentKind,
        id: Uuid,
    ) -> Result<(Option<Bytes>, i64), ApiError> {
        let mut redis = self.redis.clone();
        let mut generation = self.live.load(Ordering::Relaxed);
        for _ in 0..MAX_READS {
            match LiveRead::new(&self.keys, generation, kind, id)
                .run(&mut redis)
                .await?
            {
                LiveDocument::Read { document, position } => {
                    return Ok((document.map(Bytes::from), position));
                }
                LiveDocument::Moved(live) => {
                    self.live.store(live, Ordering::Relaxed);
                    generation = live;
                }
                LiveDocument::Unknown => return Err(ApiError::Rebuilding),
            }
        }
        Err(ApiError::Rebuilding)
    }

    pub async fn ping(&self) -> Result<(), ApiError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut redis).await?;
        Ok(())
    }
}
