//! The subscription loop: find where the subscription stands, read the next batch below the
//! safe horizon, apply it with its checkpoint, announce progress; when there is nothing to read,
//! sleep until NOTIFY or the poll interval. Transient failures back off and retry; the last error
//! is recorded for /projections and cleared once the subscription advances again.

use std::time::Duration;

use redis::aio::ConnectionManager;
use shared::{
    event_store::{backoff, read_after},
    read_model::RedisKeys,
};
use sqlx::PgPool;
use tokio::{sync::watch, task::JoinSet};

use crate::{
    ProjectionError,
    progress::ProgressAnnouncer,
    projections::{
        Projection,
        lookups::{Lookups, Target},
        order_history::OrderHistory,
        order_list::OrderList,
        postgres::PgProjection,
        product_catalog::ProductCatalog,
    },
    saga::{
        SagaMode, SagaSubscription,
        choreography::{CreditHandler, OrderHandler, StockHandler},
        orchestration::Orchestrator,
    },
    wakeup,
};

#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    /// Events read (and, for read models, applied) per transaction.
    pub batch_size: i64,
    /// How often an idle subscription looks for work without a NOTIFY (and checks Redis).
    pub poll_interval: Duration,
    pub saga_mode: SagaMode,
    /// Snapshot aggregates the saga writes every N events (0: never).
    pub snapshot_every: i64,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            saga_mode: SagaMode::default(),
            snapshot_every: 100,
        }
    }
}

/// Everything the subscriptions share.
#[derive(Clone)]
pub struct Projector {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub keys: RedisKeys,
    pub settings: ProjectorSettings,
}

#[derive(Clone)]
struct Loop {
    pool: PgPool,
    wakeups: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    announcer: ProgressAnnouncer,
    settings: ProjectorSettings,
}

enum Step {
    Advanced,
    Idle,
}

impl Projector {
    /// Runs every subscription until `shutdown` becomes true; each finishes its current batch.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let (wakeups, listener) = wakeup::spawn_listener(self.pool.clone());
        // Stops the listener however `run` ends, aborted included.
        let _listener = AbortOnDrop(listener);
        let looping = Loop {
            pool: self.pool.clone(),
            wakeups,
            shutdown,
            announcer: ProgressAnnouncer::new(self.redis.clone(), &self.keys),
            settings: self.settings.clone(),
        };
        let mut subscriptions = JoinSet::new();
        let lookups = Lookups::new(
            self.redis.clone(),
            self.keys.clone(),
            self.pool.clone(),
            Target::Live,
        );
        subscriptions.spawn(run_subscription(lookups, looping.clone()));
        subscriptions.spawn(run_subscription(
            PgProjection::<OrderList>::new(self.pool.clone()),
            looping.clone(),
        ));
        subscriptions.spawn(run_subscription(
            PgProjection::<ProductCatalog>::new(self.pool.clone()),
            looping.clone(),
        ));
        subscriptions.spawn(run_subscription(
            PgProjection::<OrderHistory>::new(self.pool.clone()),
            looping.clone(),
        ));
        let (pool, snapshot_every) = (self.pool.clone(), self.settings.snapshot_every);
        adopt_saga_mode(&pool, self.settings.saga_mode, &looping.shutdown).await;
        match self.settings.saga_mode {
            SagaMode::Orchestration => {
                subscriptions.spawn(run_subscription(
                    SagaSubscription::new(pool, Orchestrator, snapshot_every),
                    looping,
                ));
            }
            SagaMode::Choreography => {
                let stock = SagaSubscription::new(pool.clone(), StockHandler, snapshot_every);
                let credit = SagaSubscription::new(pool.clone(), CreditHandler, snapshot_every);
                subscriptions.spawn(run_subscription(stock, looping.clone()));
                subscriptions.spawn(run_subscription(credit, looping.clone()));
                subscriptions.spawn(run_subscription(
                    SagaSubscription::new(pool, OrderHandler, snapshot_every),
                    looping,
                ));
            }
        }
        while let Some(finished) = subscriptions.join_next().await {
            if let Err(error) = finished {
                tracing::error!(%error, "a subscription task failed");
            }
        }
    }
}

/// Retries `adopt_mode` until it succeeds (the database may still be starting) or shutdown.
async fn adopt_saga_mode(pool: &PgPool, mode: SagaMode, shutdown: &watch::Receiver<bool>) {
    let mut attempt = 0;
    while !*shutdown.borrow() {
        match crate::saga::adopt_mode(pool, mode).await {
            Ok(()) => return,
            Err(error) => {
                attempt += 1;
                tracing::warn!(%error, attempt, "cannot set up the saga's checkpoints; retrying");
                tokio::time::sleep(backoff(attempt).max(Duration::from_millis(200))).await;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_subscription<P: Projection>(projection: P, mut looping: Loop) {
    let name = projection.name();
    tracing::info!(subscription = name, "subscription started");
    let mut failures = 0u32;
    while !*looping.shutdown.borrow() {
        match step(&projection, &looping).await {
            Ok(Step::Advanced) => {
                if failures > 0 {
                    tracing::info!(subscription = name, "subscription recovered");
                    projection.record_error(None).await;
                    failures = 0;
                }
            }
            Ok(Step::Idle) => {
                if failures > 0 {
                    projection.record_error(None).await;
                    failures = 0;
                }
                let poll = looping.settings.poll_interval;
                tokio::select! {
                    _ = looping.wakeups.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = looping.shutdown.changed() => {}
                }
            }
            Err(ProjectionError::Retired(_)) => {
                tracing::warn!(
                    subscription = name,
                    "this subscription's checkpoint was retired: another projector runs the saga in the other mode; stopping it here"
                );
                return;
            }
            Err(error) => {
                failures += 1;
                if error.is_transient() {
                    tracing::warn!(subscription = name, %error, failures, "cannot apply a batch; retrying");
                } else {
                    tracing::error!(subscription = name, %error, failures, "cannot apply a batch; retrying");
                }
                projection.record_error(Some(&error.to_string())).await;
                let pause = backoff(failures)
                    .max(Duration::from_millis(100))
                    .min(Duration::from_secs(5));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = looping.shutdown.changed() => {}
                }
            }
        }
    }
    tracing::info!(subscription = name, "subscription stopped");
}

async fn step<P: Projection>(projection: &P, looping: &Loop) -> Result<Step, ProjectionError> {
    let from = projection.position().await?;
    let batch = {
        let mut conn = looping.pool.acquire().await?;
        read_after(&mut conn, from, looping.settings.batch_size).await?
    };
    let Some(last) = batch.events.last().map(|event| event.position) else {
        return Ok(Step::Idle);
    };
    if projection.apply(from, &batch.events).await? {
        let name = projection.name();
        metrics::counter!("projector_events_applied_total", "subscription" => name)
            .increment(batch.events.len() as u64);
        metrics::gauge!("projector_position", "subscription" => name).set(last as f64);
        looping.announcer.announce(name, last).await;
    }
    Ok(Step::Advanced)
}
