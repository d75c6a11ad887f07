//! The subscription loop: find where the subscription stands, read the next batch below the
//! safe horizon, apply it with its checkpoint, announce progress; when there is nothing to read,
//! sleep until NOTIFY or the poll interval. Transient failures back off and retry; the last error
//! is recorded for /projections and cleared once the subscription advances again.

use std::time::Duration;

use event_store::{backoff, read_after};
use sqlx::{PgPool, postgres::PgListener};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    ProjectionError, Projector, Settings,
    progress::ProgressAnnouncer,
    projections::{
        Projection,
        lookups::{Lookups, Target},
        order_history::OrderHistory,
        order_list::OrderList,
        postgres::PgProjection,
        product_catalog::ProductCatalog,
    },
    relay::NatsRelay,
    saga::{
        SagaMode, SagaSubscription,
        choreography::{CreditHandler, OrderHandler, StockHandler},
        orchestration::Orchestrator,
    },
};

/// Runs every subscription of one projector process.
pub struct Runner {
    projector: Projector,
    /// Events read (and, for read models, applied) per transaction.
    batch_size: i64,
    /// How often an idle subscription looks for work without a NOTIFY (and checks Redis).
    poll_interval: Duration,
    saga_mode: SagaMode,
    /// Snapshot aggregates the saga writes every N events (0: never).
    snapshot_every: i64,
    /// The relay to NATS JetStream, when NATS_URL is set.
    relay: Option<NatsRelay>,
}

#[derive(Clone)]
struct Loop {
    pool: PgPool,
    wakeups: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    announcer: ProgressAnnouncer,
    batch_size: i64,
    poll_interval: Duration,
}

enum Step {
    Advanced,
    Idle,
}

impl Runner {
    pub fn new(projector: Projector, settings: &Settings, relay: Option<NatsRelay>) -> Self {
        Self {
            projector,
            batch_size: settings.batch_size,
            poll_interval: settings.poll_interval(),
            saga_mode: settings.saga_mode,
            snapshot_every: settings.snapshot_every,
            relay,
        }
    }

    /// Runs every subscription until `shutdown` becomes true; each finishes its current batch.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let Projector { pool, redis, keys } = self.projector;
        tracing::info!(saga_mode = ?self.saga_mode, "projector starting");
        let looping = Loop {
            pool: pool.clone(),
            wakeups: listen_for_appends(pool.clone()),
            shutdown,
            announcer: ProgressAnnouncer::new(redis.clone(), &keys),
            batch_size: self.batch_size,
            poll_interval: self.poll_interval,
        };
        // Dropping the set (however `run` ends, aborted included) stops every subscription.
        let mut subscriptions = JoinSet::new();
        let lookups = Lookups::new(redis, keys, pool.clone(), Target::Live);
        subscriptions.spawn(run_subscription(lookups, looping.clone()));
        subscriptions.spawn(run_subscription(
            PgProjection::<OrderList>::new(pool.clone()),
            looping.clone(),
        ));
        subscriptions.spawn(run_subscription(
            PgProjection::<ProductCatalog>::new(pool.clone()),
            looping.clone(),
        ));
        subscriptions.spawn(run_subscription(
            PgProjection::<OrderHistory>::new(pool.clone()),
            looping.clone(),
        ));
        if let Some(relay) = self.relay {
            subscriptions.spawn(run_subscription(relay, looping.clone()));
        }
        let snapshot_every = self.snapshot_every;
        adopt_saga_mode(&pool, self.saga_mode, &looping.shutdown).await;
        match self.saga_mode {
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

/// Wakes the subscriptions when events are appended (the event table's NOTIFY at commit).
fn listen_for_appends(pool: PgPool) -> watch::Receiver<u64> {
    http_kit::wakeup::spawn_reconnecting_listener(
        "appended events (PostgreSQL LISTEN)",
        move || {
            let pool = pool.clone();
            async move {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen("events_appended").await?;
                Ok::<_, sqlx::Error>(listener.into_stream())
            }
        },
    )
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
                let poll = looping.poll_interval;
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
        read_after(&mut conn, from, looping.batch_size).await?
    };
    let Some(last) = batch.last().map(|event| event.position) else {
        return Ok(Step::Idle);
    };
    if projection.apply(from, &batch).await? {
        let name = projection.name();
        metrics::counter!("projector_events_applied_total", "subscription" => name)
            .increment(batch.len() as u64);
        metrics::gauge!("projector_position", "subscription" => name).set(last as f64);
        looping.announcer.announce(name, last).await;
    }
    Ok(Step::Advanced)
}
