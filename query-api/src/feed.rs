//! The live change feed: server-sent events of every change after a position, in log order.
//!
//! It reads the `event_feed` read model (every event of the log, keyed by position), never the
//! log itself. The feed only ever serves rows at or below that read model's checkpoint (the
//! lowest of its partitions): below it every event is applied, so a row can never turn up later
//! below a position the feed already passed, and a client that resumes after the last id it saw
//! (`Last-Event-ID`) misses nothing and gets nothing twice. When it has caught up, a feed waits
//! for the projector's progress announcements (the same Redis pub/sub wake-up as
//! `min_position`), never a polling loop; a heartbeat comment keeps idle connections (and
//! proxies) alive, and doubles as a re-check should an announcement be lost.
//!
//! Each open feed holds one PostgreSQL query at a time and one permit of a bounded semaphore:
//! beyond `FEED_MAX_CONNECTIONS` a new feed is refused with 503 and `Retry-After`.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use read_models::names;
use serde::Serialize;
use sqlx::{PgPool, QueryBuilder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use uuid::Uuid;

use crate::{consistency::Consistency, error::ApiError};

/// Rows read per query; a client far behind gets them page by page.
const PAGE: i64 = 256;
/// How soon a client reconnects after the stream ends (the `retry` field).
const RECONNECT_MS: u64 = 1_000;

/// One change as the feed sends it: the event as `event_feed` keeps it (data upcast, personal
/// data erased where it was forgotten, no metadata).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Change {
    /// Also the SSE `id`: send it back as `Last-Event-ID` (or `after`) to resume.
    pub position: i64,
    /// `order`, `product` or `customer`.
    pub stream_type: String,
    pub stream_id: Uuid,
    /// Also the SSE `event` name, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// The event's version in its stream.
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// Which changes a feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everything,
    /// The events of one order's stream.
    Order(Uuid),
}

#[derive(Clone)]
pub struct Feeds {
    pool: PgPool,
    consistency: Consistency,
    connections: Arc<Semaphore>,
    heartbeat: Duration,
}

impl Feeds {
    pub fn new(
        pool: PgPool,
        consistency: Consistency,
        max_connections: usize,
        heartbeat: Duration,
    ) -> Self {
        Self {
            pool,
            consistency,
            connections: Arc::new(Semaphore::new(max_connections)),
            heartbeat,
        }
    }

    /// Whether the order's stream has any event in the read model.
    pub async fn order_exists(&self, order: Uuid) -> Result<bool, ApiError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM read_model.event_feed
                            WHERE stream_id = $1 AND stream_type = 'order')",
        )
        .bind(order)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Opens a feed of `scope` after `after`, or refuses it when every connection is taken.
    pub fn open(
        &self,
        scope: Scope,
        after: i64,
    ) -> Result<impl Stream<Item = Result<Bytes, std::convert::Infallible>> + use<>, ApiError> {
        let permit = self
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyFeeds)?;
        let opening = Bytes::from(format!(
            ": changes after {after}\nretry: {RECONNECT_MS}\n\n"
        ));
        let cursor = Cursor {
            feeds: self.clone(),
            progress: self.consistency.progress(),
            scope,
            after,
            pending: VecDeque::from([opening]),
            _permit: permit,
        };
        Ok(futures_util::stream::unfold(
            cursor,
            |mut cursor| async move {
                let chunk = cursor.next_chunk().await?;
                Some((Ok(chunk), cursor))
            },
        ))
    }
}

/// Where one open feed stands.
struct Cursor {
    feeds: Feeds,
    progress: watch::Receiver<u64>,
    scope: Scope,
    /// The position of the last change sent (or the one the client resumed after).
    after: i64,
    pending: VecDeque<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl Cursor {
    /// The next bytes to send; `None` ends the stream (the client then reconnects with
    /// `Last-Event-ID` and resumes where it was).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            // Mark every announcement so far as seen before reading, so one that comes while
            // the query runs still wakes the wait below.
            self.progress.borrow_and_update();
            match self.read_page().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, after = self.after, "ending a live feed: the read model cannot be read");
                    return None;
                }
            }
            match tokio::time::timeout(self.feeds.heartbeat, self.progress.changed()).await {
                Ok(Ok(())) => {}
                // The announcer is gone (shutting down): the heartbeat alone paces re-checks.
                Ok(Err(_)) => {
                    tokio::time::sleep(self.feeds.heartbeat).await;
                    self.pending
                        .push_back(Bytes::from_static(b": heartbeat\n\n"));
                }
                Err(_) => self
                    .pending
                    .push_back(Bytes::from_static(b": heartbeat\n\n")),
            }
        }
    }

    /// Reads the next page of changes the read model has complete, into `pending`; false when
    /// there is none.
    async fn read_page(&mut self) -> Result<bool, ApiError> {
        let horizon = self.feeds.consistency.position(names::EVENT_FEED).await?;
        if horizon <= self.after {
            return Ok(false);
        }
        let mut sql = QueryBuilder::new(
            "SELECT position, stream_type, stream_id, type, version, recorded_at, data
             FROM read_model.event_feed WHERE position > ",
        );
        sql.push_bind(self.after)
            .push(" AND position <= ")
            .push_bind(horizon);
        if let Scope::Order(order) = self.scope {
            sql.push(" AND stream_id = ").push_bind(order);
        }
        sql.push(" ORDER BY position LIMIT ").push_bind(PAGE);
        let changes: Vec<Change> = sql.build_query_as().fetch_all(&self.feeds.pool).await?;
        let full_page = changes.len() as i64 == PAGE;
        for change in &changes {
            self.pending.push_back(server_sent_event(change)?);
        }
        // A short page means everything up to the horizon is sent: move past it, so the next
        // check starts there (a per-order feed would otherwise re-read others' positions).
        self.after = match changes.last() {
            Some(last) if full_page => last.position,
            _ => horizon,
        };
        Ok(!changes.is_empty())
    }
}

/// One change as an SSE message: `id` is its position, `event` its type, `data` its JSON.
fn server_sent_event(change: &Change) -> Result<Bytes, ApiError> {
    let data = serde_json::to_string(change)?;
    Ok(Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        change.position, change.event_type
    )))
}
