//! `projector rebuild <name> | --all`: replays the log from position 0 into a fresh copy of a
//! read model (new tables, or a new Redis generation) while the live copy keeps serving, then
//! switches over atomically and drops the old copy.
//!
//! PostgreSQL: the switch locks the live checkpoint row (pausing the live projector), applies
//! whatever the live copy had beyond the rebuild, repoints the `read_model` view, moves the
//! checkpoint and generation, and commits. Redis: a Lua script flips the live pointer only once
//! the new generation's checkpoint has caught up with the old one's.

mod lookups;
mod postgres;
mod progress;

use anyhow::bail;
use event_store::{RecordedEvent, read_after};
use read_models::{RedisKeys, names};
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::projections::{
    document_versions::DocumentVersions, event_feed::EventFeed, order_history::OrderHistory,
    order_list::OrderList, product_catalog::ProductCatalog,
};

const BATCH: i64 = 2_000;
/// How many batches the reader may be ahead of the writer.
const READ_AHEAD: usize = 2;

pub struct Rebuilder {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: RedisKeys,
}

impl Rebuilder {
    /// Rebuilds the named read models, one after the other.
    pub async fn rebuild(&self, names_to_rebuild: &[String]) -> anyhow::Result<()> {
        for name in names_to_rebuild {
            if !names::READ_MODELS.contains(&name.as_str()) {
                bail!(
                    "there is no read model called {name:?}; the read models are {}",
                    names::READ_MODELS.join(", ")
                );
            }
        }
        for name in names_to_rebuild {
            // Two rebuilds of one read model would fill the same new copy: one at a time. The
            // lock is the session's, so it also goes when the process dies.
            let mut lock = self.pool.acquire().await?;
            let key = format!("projector rebuild {name}");
            let locked: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                    .bind(&key)
                    .fetch_one(&mut *lock)
                    .await?;
            if !locked {
                bail!("a rebuild of {name} is already running; wait for it to finish");
            }
            let rebuilt = match name.as_str() {
                names::LOOKUPS => self.rebuild_lookups().await,
                names::ORDER_LIST => self.rebuild_postgres::<OrderList>().await,
                names::PRODUCT_CATALOG => self.rebuild_postgres::<ProductCatalog>().await,
                names::EVENT_FEED => self.rebuild_postgres::<EventFeed>().await,
                names::DOCUMENT_VERSIONS => self.rebuild_postgres::<DocumentVersions>().await,
                _ => self.rebuild_postgres::<OrderHistory>().await,
            };
            let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&key)
                .execute(&mut *lock)
                .await;
            rebuilt?;
            unlocked?;
        }
        Ok(())
    }

    async fn read(&self, after: i64) -> anyhow::Result<Vec<RecordedEvent>> {
        read_batch(&self.pool, after).await
    }

    /// Reads the log after `after` up to where it ends now, batch by batch, in a task of its
    /// own that stays up to `READ_AHEAD` batches ahead: reading (PostgreSQL, decoding) then
    /// overlaps applying, instead of each waiting for the other. The channel closes at the end
    /// of the log (or after an error, which it passes on); the caller goes on from the last
    /// position it applied with `read`.
    fn read_ahead(&self, after: i64) -> mpsc::Receiver<anyhow::Result<Vec<RecordedEvent>>> {
        let (batches, receiver) = mpsc::channel(READ_AHEAD);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut position = after;
            loop {
                let batch = read_batch(&pool, position).await;
                match &batch {
                    Ok(events) => match events.last() {
                        Some(last) => position = last.position,
                        None => break,
                    },
                    Err(_) => {
                        let _ = batches.send(batch).await;
                        break;
                    }
                }
                // The rebuild gave up (it failed): stop reading.
                if batches.send(batch).await.is_err() {
                    break;
                }
            }
        });
        receiver
    }
}

async fn read_batch(pool: &PgPool, after: i64) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut conn = pool.acquire().await?;
    Ok(read_after(&mut conn, after, BATCH).await?)
}
