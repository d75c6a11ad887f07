//! `projector rebuild <name> | --all`: replays the log from position 0 into a fresh copy of a
//! read model (new tables, or a new Redis generation) while the live copy keeps serving, then
//! switches over atomically and drops the old copy.
//!
//! PostgreSQL: the switch locks the live checkpoint row (pausing the live projector), applies
//! whatever the live copy had beyond the rebuild, repoints the `read_model` view, moves the
//! checkpoint and generation, and commits. Redis: a Lua script flips the live pointer only once
//! the new generation's checkpoint has caught up with the old one's.

use std::{io::IsTerminal, time::Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use redis::{Script, aio::ConnectionManager};
use shared::{
    event_store::{RecordedEvent, read_after},
    read_model::{RedisKeys, names},
};
use sqlx::PgPool;

use crate::projections::{
    lookups::{Lookups, Target, delete_generation, new_generation},
    order_history::OrderHistory,
    order_list::OrderList,
    postgres::{PgReadModel, table_name},
    product_catalog::ProductCatalog,
};

const BATCH: i64 = 1_000;

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

    async fn rebuild_postgres<M: PgReadModel>(&self) -> anyhow::Result<()> {
        let live_generation: i32 =
            sqlx::query_scalar("SELECT generation FROM projector.checkpoints WHERE name = $1")
                .bind(M::NAME)
                .fetch_one(&self.pool)
                .await
                .with_context(|| format!("cannot read the checkpoint of {}", M::NAME))?;
        let generation = live_generation + 1;
        let (live_table, new_table) = (
            table_name(M::TABLE, live_generation),
            table_name(M::TABLE, generation),
        );
        // A rebuild that died half-way (or just after switching) leaves tables of other
        // generations behind: only the live one is kept.
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT tablename FROM pg_tables
             WHERE schemaname = 'projection_store' AND tablename ~ ('^' || $1 || '_g[0-9]+$') AND tablename <> $2",
        )
        .bind(M::TABLE)
        .bind(format!("{}_g{live_generation}", M::TABLE))
        .fetch_all(&self.pool)
        .await?;
        for leftover in leftovers {
            sqlx::query(&format!(
                "DROP TABLE IF EXISTS projection_store.\"{leftover}\""
            ))
            .execute(&self.pool)
            .await?;
        }
        sqlx::query(&format!(
            "CREATE TABLE {new_table} (LIKE {live_table} INCLUDING ALL)"
        ))
        .execute(&self.pool)
        .await?;

        let mut progress = Progress::start(M::NAME, &self.pool).await?;
        let mut position = 0;
        loop {
            let events = self.read(position).await?;
            let Some(last) = events.last() else { break };
            let mut tx = self.pool.begin().await?;
            M::apply_batch(&mut tx, generation, &events).await?;
            tx.commit().await?;
            position = last.position;
            progress.advance(events.len());
        }

        let mut tx = self.pool.begin().await?;
        let (live_position, generation_now): (i64, i32) = sqlx::query_as(
            "SELECT position, generation FROM projector.checkpoints WHERE name = $1 FOR UPDATE",
        )
        .bind(M::NAME)
        .fetch_one(&mut *tx)
        .await?;
        if generation_now != live_generation {
            bail!(
                "another rebuild of {} switched over first; nothing was changed",
                M::NAME
            );
        }
        // The live copy is paused on the row lock; bring the new copy at least as far.
        loop {
            let events = self.read(position).await?;
            let Some(last) = events.last() else {
                if position >= live_position {
                    break;
                }
                bail!(
                    "the log ends at {position} but the live copy is at {live_position}: the event table changed under the rebuild"
                );
            };
            M::apply_batch(&mut tx, generation, &events).await?;
            position = last.position;
            progress.advance(events.len());
        }
        sqlx::query(&format!(
            "CREATE OR REPLACE VIEW read_model.{} AS SELECT * FROM {new_table}",
            M::TABLE
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE projector.checkpoints SET position = $2, generation = $3, last_error = NULL, updated_at = now()
             WHERE name = $1",
        )
        .bind(M::NAME)
        .bind(position)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sqlx::query(&format!("DROP TABLE {live_table}"))
            .execute(&self.pool)
            .await?;
        progress.finish(position);
        Ok(())
    }

    async fn rebuild_lookups(&self) -> anyhow::Result<()> {
        let mut redis = self.redis.clone();
        let generation = new_generation(&mut redis, &self.keys).await?;
        let switched = self.fill_and_switch_lookups(generation).await;
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.keys.building_generation())
            .exec_async(&mut redis)
            .await;
        let (old_generation, position, progress) = match switched {
            Ok(switched) => switched,
            Err(error) => {
                // Leave nothing behind: a copy that did not go live is of no use. (If only the
                // switch's reply was lost, it may have gone live: then it stays.)
                let live: Option<i64> = redis::cmd("GET")
                    .arg(self.keys.live_generation())
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(Some(generation));
                if live != Some(generation) {
                    let _ = delete_generation(&mut redis, &self.keys, generation).await;
                }
                return Err(error);
            }
        };
        if old_generation > 0 {
            delete_generation(&mut redis, &self.keys, old_generation).await?;
        }
        sqlx::query("UPDATE projector.checkpoints SET position = $2, last_error = NULL, updated_at = now() WHERE name = $1")
            .bind(names::LOOKUPS)
            .bind(position)
            .execute(&self.pool)
            .await?;
        progress.finish(position);
        Ok(())
    }

    /// Fills `generation` from position 0 and makes it live once it has caught up with the live
    /// copy; returns the generation it replaced, the position reached, and the progress display.
    async fn fill_and_switch_lookups(
        &self,
        generation: i64,
    ) -> anyhow::Result<(i64, i64, Progress)> {
        let mut redis = self.redis.clone();
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.building_generation())
            .arg(generation)
            .ignore()
            .cmd("SET")
            .arg(self.keys.checkpoint(generation))
            .arg(0)
            .ignore()
            .exec_async(&mut redis)
            .await?;
        let copy = Lookups::new(
            self.redis.clone(),
            self.keys.clone(),
            self.pool.clone(),
            Target::Building(generation),
        );
        let mut progress = Progress::start(names::LOOKUPS, &self.pool).await?;
        let mut position = 0;
        let switch = switch_generation_script();
        let old_generation = loop {
            let events = self.read(position).await?;
            if let Some(last) = events.last() {
                if !copy.write_batch(generation, &events).await? {
                    bail!("another rebuild of lookups took over; this one stopped");
                }
                position = last.position;
                progress.advance(events.len());
                continue;
            }
            // Caught up: switch if the live copy is not ahead, else read on.
            let switched: i64 = switch
                .key(self.keys.live_generation())
                .key(self.keys.checkpoint(generation))
                .arg(generation)
                .arg(self.keys.prefix())
                .invoke_async(&mut redis)
                .await?;
            if switched >= 0 {
                break switched;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        Ok((old_generation, position, progress))
    }

    async fn read(&self, after: i64) -> anyhow::Result<Vec<RecordedEvent>> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_after(&mut conn, after, BATCH).await?.events)
    }
}

/// KEYS: live pointer, new checkpoint. ARGV: new generation, key prefix.
/// Returns the old generation (0 if none) after switching, or -1 while the live copy is ahead.
fn switch_generation_script() -> Script {
    Script::new(
        r"
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local live = redis.call('GET', KEYS[1])
if live then
  local live_position = redis.call('GET', ARGV[2] .. 'g' .. live .. ':checkpoint') or '0'
  local new_position = redis.call('GET', KEYS[2]) or '0'
  if newer(live_position, new_position) then return -1 end
end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(live or '0')",
    )
}

/// A progress bar on a terminal, a log line every two seconds otherwise; events/s at the end.
struct Progress {
    name: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
    done: u64,
    total: u64,
}

impl Progress {
    async fn start(name: &'static str, pool: &PgPool) -> anyhow::Result<Self> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await?;
        let total = total.max(0) as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:>16} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(name);
            bar
        });
        tracing::info!(read_model = name, events = total, "rebuild started");
        Ok(Self {
            name,
            bar,
            started: Instant::now(),
            last_log: Instant::now(),
            done: 0,
            total,
        })
    }

    fn advance(&mut self, events: usize) {
        self.done += events as u64;
        match &self.bar {
            Some(bar) => bar.set_position(self.done.min(self.total.max(self.done))),
            None if self.last_log.elapsed().as_secs() >= 2 => {
                self.last_log = Instant::now();
                tracing::info!(
                    read_model = self.name,
                    done = self.done,
                    total = self.total,
                    "rebuilding"
                );
            }
            None => {}
        }
    }

    fn finish(self, position: i64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            self.done as f64 / seconds
        } else {
            self.done as f64
        };
        tracing::info!(
            read_model = self.name,
            events = self.done,
            position,
            seconds,
            events_per_second = rate,
            "rebuild switched over"
        );
        eprintln!(
            "rebuilt {}: {} events in {seconds:.2} s ({rate:.0} events/s), live at position {position}",
            self.name, self.done
        );
    }
}
