//! Announces each subscription's new position on Redis pub/sub after every batch, so that
//! query-api requests waiting for `min_position` wake at once instead of polling.

use read_models::RedisKeys;
use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct ProgressAnnouncer {
    redis: ConnectionManager,
    channel: String,
}

impl ProgressAnnouncer {
    pub fn new(redis: ConnectionManager, keys: &RedisKeys) -> Self {
        Self {
            redis,
            channel: keys.progress_channel(),
        }
    }

    /// Best effort: waiting readers also re-check on their own.
    pub async fn announce(&self, name: &str, partition: i32, position: i64) {
        let mut redis = self.redis.clone();
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(format!("{name} {partition} {position}"))
            .query_async(&mut redis)
            .await;
        if let Err(error) = published {
            tracing::debug!(%error, name, "cannot announce progress");
        }
    }
}
