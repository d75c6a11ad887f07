//! Read-your-writes. A request with `min_position=P` waits until every projection it reads has
//! applied every event at or below P. It does not poll the database in a loop: the projector
//! announces each batch on Redis pub/sub, one listener task turns those announcements into a
//! `watch` signal, and waiting requests re-check their projection's checkpoint only when woken
//! (or, should an announcement be lost, every 250 ms). After the timeout (5 s by default) the
//! answer is 503 with `Retry-After`.
//!
//! Waiting requests are few by design (a client waits for its own write), but a flood of them
//! would keep the pool busy re-reading checkpoints and starve every other request: at most
//! `max_waits` wait at once, and a request that would wait beyond that gets a 503 with
//! `Retry-After` at once. A request whose position is already reached never waits, so it is
//! never refused.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use read_models::{LookupScripts, RedisKeys, names};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::{Semaphore, watch};

use crate::error::ApiError;

pub const WAITS: &str = "query_api_min_position_waits_total";
pub const TIMEOUTS: &str = "query_api_min_position_timeouts_total";
pub const WAIT_DURATION: &str = "query_api_min_position_wait_seconds";

/// Gives the `min_position` metrics their `# HELP` lines (after the recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!(
        WAITS,
        metrics::Unit::Count,
        "Requests whose min_position was not reached yet when they arrived, so they waited, by read_model"
    );
    metrics::describe_counter!(
        TIMEOUTS,
        metrics::Unit::Count,
        "min_position waits that ran out (CONSISTENCY_TIMEOUT_MS) and answered 503, by read_model"
    );
    metrics::describe_histogram!(
        WAIT_DURATION,
        metrics::Unit::Seconds,
        "How long requests waited for min_position, by read_model and outcome (reached, timed_out)"
    );
}

/// How long a waiting request sleeps when no announcement wakes it.
const FALLBACK_RECHECK: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Consistency {
    pool: PgPool,
    redis: ConnectionManager,
    scripts: LookupScripts,
    progress: watch::Receiver<u64>,
    timeout: Duration,
    /// One permit per request allowed to wait.
    waits: Arc<Semaphore>,
    /// The newest event's position as last read: the head only grows, so a position at or
    /// below it needs no look at the log to be known to exist.
    known_head: Arc<AtomicI64>,
}

impl Consistency {
    pub fn new(
        pool: PgPool,
        redis: ConnectionManager,
        keys: RedisKeys,
        progress: watch::Receiver<u64>,
        timeout: Duration,
        max_waits: usize,
    ) -> Self {
        Self {
            pool,
            redis,
            scripts: LookupScripts::new(keys),
            progress,
            timeout,
            waits: Arc::new(Semaphore::new(max_waits)),
            known_head: Arc::new(AtomicI64::new(0)),
        }
    }

    /// A receiver that changes whenever the projector announces progress (the live feed waits
    /// on it too).
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }

    /// The position `projection` has applied everything up to.
    pub async fn position(&self, projection: &'static str) -> Result<i64, ApiError> {
        if projection == names::LOOKUPS {
            let mut redis = self.redis.clone();
            let position: Option<i64> = self
                .scripts
                .read_live_checkpoint()
                .invoke_async(&mut redis)
                .await?;
            return Ok(position.unwrap_or(0));
        }
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM read_model.projection_checkpoints WHERE name = $1",
        )
        .bind(projection)
        .fetch_optional(&self.pool)
        .await?;
        Ok(position.unwrap_or(0))
    }

    /// Waits until `projection` reaches `min_position` (no wait without one) and returns the
    /// position the answer will reflect.
    pub async fn reach(
        &self,
        projection: &'static str,
        min_position: Option<i64>,
    ) -> Result<i64, ApiError> {
        let Some(wanted) = min_position else {
            return self.position(projection).await;
        };
        // Subscribe before the first read, so that an announcement right after it still wakes us.
        let mut progress = self.progress.clone();
        progress.borrow_and_update();
        let mut reached = self.position(projection).await?;
        if reached >= wanted {
            return Ok(reached);
        }
        // A position a command answered is committed, so it is never beyond the newest event.
        if wanted > self.known_head.load(Ordering::Relaxed) {
            let head: i64 =
                sqlx::query_scalar("SELECT head_position FROM read_model.event_log_head")
                    .fetch_one(&self.pool)
                    .await?;
            self.known_head.fetch_max(head, Ordering::Relaxed);
            if wanted > head {
                return Err(ApiError::BadRequest(format!(
                    "min_position {wanted} is beyond the newest event ({head}): pass a position a command answered"
                )));
            }
        }
        let _waiting = self
            .waits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyWaits)?;
        let started = Instant::now();
        metrics::counter!(WAITS, "read_model" => projection).increment(1);
        let waited = |outcome: &'static str| {
            metrics::histogram!(WAIT_DURATION, "read_model" => projection, "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
        };
        let deadline = started + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                waited("timed_out");
                metrics::counter!(TIMEOUTS, "read_model" => projection).increment(1);
                return Err(ApiError::NotYetConsistent {
                    projection,
                    wanted,
                    reached,
                });
            }
            // `changed` marks the announcement seen; a timeout means re-check anyway. Without an
            // announcer (its task gone) fall back to the timer alone.
            let pause = left.min(FALLBACK_RECHECK);
            if let Ok(Err(_)) = tokio::time::timeout(pause, progress.changed()).await {
                tokio::time::sleep(pause).await;
            }
            reached = self.position(projection).await?;
            if reached >= wanted {
                waited("reached");
                return Ok(reached);
            }
        }
    }
}

/// Subscribes to the projector's progress announcements, reconnecting as needed; the returned
/// receiver changes on every announcement.
pub fn listen_for_progress(redis_url: String, keys: &RedisKeys) -> watch::Receiver<u64> {
    let channel = keys.progress_channel();
    http_kit::wakeup::spawn_reconnecting_listener("projector progress (Redis pub/sub)", move || {
        let (redis_url, channel) = (redis_url.clone(), channel.clone());
        async move {
            let client = redis::Client::open(redis_url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub.into_on_message().map(Ok))
        }
    })
}
