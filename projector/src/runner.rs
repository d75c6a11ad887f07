//! Runs this process's share of every subscription: makes sure each exists with the configured
//! number of partitions, then lets the `Coordinator` share the partitions out among the
//! projector processes alive and run a worker for each partition this process holds.

use std::time::Duration;

use event_store::{backoff, checkpoints};
use read_models::names;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::watch;

use crate::{
    Projector, Settings,
    progress::ProgressAnnouncer,
    projections::{
        lookups::{Lookups, Target},
        postgres::PgReadModels,
    },
    relay::NatsRelay,
    saga::{
        SagaMode, SagaSubscription,
        choreography::{CreditHandler, OrderHandler, StockHandler},
        orchestration::Orchestrator,
    },
    subscription::{Coordinator, Registration, Subscription, WorkerContext},
};

/// Runs every subscription of one projector process.
pub struct Runner {
    projector: Projector,
    batch_size: i64,
    poll_interval: Duration,
    saga_mode: SagaMode,
    snapshot_every: i64,
    partitions: i32,
    /// The relay to NATS JetStream, when NATS_URL is set.
    relay: Option<NatsRelay>,
}

impl Runner {
    pub fn new(projector: Projector, settings: &Settings, relay: Option<NatsRelay>) -> Self {
        Self {
            projector,
            batch_size: settings.batch_size,
            poll_interval: settings.poll_interval(),
            saga_mode: settings.saga_mode,
            snapshot_every: settings.snapshot_every,
            partitions: settings.partitions(),
            relay,
        }
    }

    /// Runs until `shutdown` becomes true; each partition finishes its batch in flight.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) {
        let Projector { pool, redis, keys } = self.projector.clone();
        tracing::info!(saga_mode = ?self.saga_mode, partitions = self.partitions, "projector starting");
        let snapshot_every = self.snapshot_every;
        let mut subscriptions = vec![
            Registration::new(Lookups::new(
                redis.clone(),
                keys.clone(),
                pool.clone(),
                Target::Live,
            )),
            Registration::new(PgReadModels::new(pool.clone())),
        ];
        let relay = self.relay.take();
        let relayed = relay.is_some();
        if let Some(relay) = relay {
            subscriptions.push(Registration::new(relay));
        }
        match self.saga_mode {
            SagaMode::Orchestration => subscriptions.push(Registration::new(
                SagaSubscription::new(pool.clone(), Orchestrator, snapshot_every),
            )),
            SagaMode::Choreography => {
                subscriptions.push(Registration::new(SagaSubscription::new(
                    pool.clone(),
                    StockHandler,
                    snapshot_every,
                )));
                subscriptions.push(Registration::new(SagaSubscription::new(
                    pool.clone(),
                    CreditHandler,
                    snapshot_every,
                )));
                subscriptions.push(Registration::new(SagaSubscription::new(
                    pool.clone(),
                    OrderHandler,
                    snapshot_every,
                )));
            }
        }
        if !self.set_up(&pool, relayed, &shutdown).await {
            return;
        }
        let context = WorkerContext {
            pool: pool.clone(),
            wakeups: listen_for_appends(pool.clone()),
            announcer: ProgressAnnouncer::new(redis, &keys),
            batch_size: self.batch_size,
            poll_interval: self.poll_interval,
        };
        Coordinator::new(pool, subscriptions, context)
            .run(shutdown)
            .await;
    }

    /// Makes every subscription exist in its configured partitions (the read models from
    /// position 0, the saga where it already is), retrying until the database answers.
    async fn set_up(&self, pool: &PgPool, relayed: bool, shutdown: &watch::Receiver<bool>) -> bool {
        let mut attempt = 0;
        while !*shutdown.borrow() {
            match self.try_set_up(pool, relayed).await {
                Ok(()) => return true,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "cannot set the subscriptions up; retrying");
                    tokio::time::sleep(backoff(attempt).max(Duration::from_millis(200))).await;
                }
            }
        }
        false
    }

    async fn try_set_up(&self, pool: &PgPool, relayed: bool) -> Result<(), sqlx::Error> {
        let lookups_partitions = Lookups::new(
            self.projector.redis.clone(),
            self.projector.keys.clone(),
            pool.clone(),
            Target::Live,
        )
        .fixed_partitions()
        .unwrap_or(self.partitions);
        for name in names::READ_MODELS {
            let partitions = if name == names::LOOKUPS {
                lookups_partitions
            } else {
                self.partitions
            };
            let mut tx = pool.begin().await?;
            checkpoints::ensure(&mut tx, name, partitions, 0).await?;
            tx.commit().await?;
        }
        if relayed {
            // One partition: see `NatsRelay`.
            let mut tx = pool.begin().await?;
            checkpoints::ensure(&mut tx, crate::relay::NAME, 1, 0).await?;
            tx.commit().await?;
        }
        crate::saga::adopt_mode(pool, self.saga_mode, self.partitions).await
    }
}

/// Wakes the subscriptions when events are appended (the appenders' `event_store::Announcer`).
fn listen_for_appends(pool: PgPool) -> watch::Receiver<u64> {
    http_kit::wakeup::spawn_reconnecting_listener(
        "appended events (PostgreSQL LISTEN)",
        move || {
            let pool = pool.clone();
            async move {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(event_store::announce::CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener.into_stream())
            }
        },
    )
}
