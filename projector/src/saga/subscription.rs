//! A saga handler as a subscription. A batch of events is handled in one transaction: the
//! aggregates it needs are loaded up front (a few queries for the whole batch, from a cache of
//! recent states), the streams it writes are locked (in one order, so the partitions of a saga
//! queue on a hot product instead of failing on it), every step decides in memory, and the
//! events, the saga instances and the checkpoint are written at the end, together. The reads
//! come first and the writes last, so the transaction holds a transaction id (which holds back
//! every subscription's safe horizon) only for the few milliseconds of the writes.
//!
//! If a batch fails, each event is retried in a transaction of its own, so a lost race (a
//! client writing the same order) retries just that event. An event that still fails after
//! retries for a reason that is not transient is parked in `projector.dead_letters` and the
//! subscription moves on.

use std::{collections::HashSet, future::Future, time::Duration};

use domain::{StreamType, customer::Customer, order::Order, product::Product};
use event_store::{
    Announcer, Batch, PartitionKey, RecordedEvent, backoff, checkpoints, checkpoints::Lease,
};
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    SagaError, Step, dead_letters,
    orchestration::Instances,
    unit_of_work::{AggregateCache, UnitOfWork},
};
use crate::{ProjectionError, subscription::Subscription};

/// Tries of one event before a non-transient failure parks it.
const ATTEMPTS_BEFORE_PARKING: u32 = 3;
/// The pause before each further try of a step that failed for a non-transient reason.
const PARKING_PATIENCE: Duration = Duration::from_millis(500);
/// Tries of one event while it keeps losing races, before the runner backs off.
const ATTEMPTS_WHILE_RACING: u32 = 20;
/// Events per saga transaction, at most. The partitions of the saga queue on the locks of the
/// products every batch touches, so they mostly run one after the other: a batch shares its
/// round trips and its commit among many orders, and an order waits for the whole batch. At
/// 200 orders/s, 256 decided orders 1.3 s at p99 where 64 took 3.7 to 5.4 s (`scripts/bench
/// pipeline --rate 200`); a batch is only as large as the backlog anyway.
pub const MAX_EVENTS_PER_TRANSACTION: i64 = 256;

pub trait SagaHandler: Send + Sync + 'static {
    const NAME: &'static str;
    /// Keeps an instance per order (`projector.order_sagas`).
    const KEEPS_INSTANCES: bool = false;
    /// The kinds of aggregates it appends to.
    const WRITES: &'static [StreamType];
    /// The types of events it reacts to; the others are not even read.
    const EVENT_TYPES: &'static [&'static str];

    /// Whether `event` needs handling, given the instances of its orders (loaded when
    /// `KEEPS_INSTANCES`): what needs none costs no loading, no locking and no handling.
    fn needs(&self, _event: &RecordedEvent, _instances: &Instances) -> bool {
        true
    }

    /// Reacts to one event, issuing commands through `step` (all in the batch's transaction).
    fn handle(
        &self,
        step: &mut Step<'_>,
        event: &RecordedEvent,
    ) -> impl Future<Output = Result<(), SagaError>> + Send;
}

pub struct SagaSubscription<H> {
    pool: PgPool,
    handler: H,
    snapshot_every: i64,
    cache: AggregateCache,
    /// Wakes every projector process's subscriptions after a step appended.
    announcer: Announcer,
}

pub(super) enum Outcome {
    Applied,
    Moved,
}

/// Where a batch moves its partition's checkpoint: from where, to where, under which lease.
#[derive(Clone, Copy)]
pub(super) struct Advance<'a> {
    lease: &'a Lease,
    from: i64,
    to: i64,
}

impl<H: SagaHandler> SagaSubscription<H> {
    pub fn new(pool: PgPool, handler: H, snapshot_every: i64) -> Self {
        Self {
            announcer: Announcer::spawn(pool.clone()),
            pool,
            handler,
            snapshot_every,
            cache: AggregateCache::default(),
        }
    }

    /// Runs the handler for `events` in one transaction; with `advance`, only if the
    /// checkpoint is still there under the lease, and moving it.
    pub(super) async fn try_events(
        &self,
        advance: Option<Advance<'_>>,
        events: &[RecordedEvent],
    ) -> Result<Outcome, SagaError> {
        let mut tx = event_store::begin_appending(&self.pool).await?;
        let mut instances = if H::KEEPS_INSTANCES {
            let all: Vec<Uuid> = unique(events.iter().filter_map(RecordedEvent::order_id));
            Instances::load(&mut tx, &all).await?
        } else {
            Instances::default()
        };
        let events: Vec<&RecordedEvent> = events
            .iter()
            .filter(|event| self.handler.needs(event, &instances))
            .collect();
        let order_ids: Vec<Uuid> = unique(events.iter().filter_map(|event| event.order_id()));
        let mut unit = UnitOfWork::default();
        unit.load::<Order>(&mut tx, &self.cache, order_ids.iter().copied())
            .await?;
        let mut products = Vec::new();
        let mut customers = Vec::new();
        for order_id in &order_ids {
            let order: Order = unit.state(*order_id);
            products.extend(order.products());
            customers.push(order.customer_id);
        }
        let (products, customers) = (unique(products), unique(customers));
        let mut locked = Vec::new();
        if H::WRITES.contains(&StreamType::Product) {
            locked.extend(&products);
        }
        if H::WRITES.contains(&StreamType::Customer) {
            locked.extend(&customers);
        }
        lock_streams(&mut tx, locked).await?;
        unit.load::<Product>(&mut tx, &self.cache, products).await?;
        unit.load::<Customer>(&mut tx, &self.cache, customers)
            .await?;
        for event in events {
            let span = tracing::debug_span!(
                "saga",
                subscription = H::NAME,
                position = event.position,
                event = %event.event_type,
                order_id = ?event.order_id(),
                correlation_id = event.correlation_id().unwrap_or_default(),
            );
            let mut step = Step::new(&mut tx, &self.cache, &mut unit, &mut instances, event);
            self.handler
                .handle(&mut step, event)
                .instrument(span)
                .await?;
        }
        unit.flush(&mut tx, self.snapshot_every).await?;
        instances.write(&mut tx).await?;
        if let Some(Advance { lease, from, to }) = advance
            && !checkpoints::advance_fenced(&mut *tx, lease, from, to).await?
        {
            return Ok(Outcome::Moved);
        }
        tx.commit().await?;
        if unit.appended() > 0 {
            self.announcer.announce();
        }
        unit.commit_to(&self.cache);
        Ok(Outcome::Applied)
    }

    async fn apply_one(
        &self,
        lease: &Lease,
        from: i64,
        event: &RecordedEvent,
    ) -> Result<Outcome, ProjectionError> {
        let advance = Advance {
            lease,
            from,
            to: event.position,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_events(Some(advance), std::slice::from_ref(event))
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(error) if error.is_transient() && attempt < ATTEMPTS_WHILE_RACING => {
                    tokio::time::sleep(backoff(attempt).min(Duration::from_millis(200))).await;
                }
                Err(error) if error.is_transient() => return Err(error.into()),
                Err(error) if attempt < ATTEMPTS_BEFORE_PARKING => {
                    tracing::warn!(subscription = H::NAME, position = event.position, %error, attempt, "saga step failed; retrying");
                    // Seconds, not milliseconds: give a passing cause a chance before parking.
                    tokio::time::sleep(PARKING_PATIENCE * attempt).await;
                }
                Err(error) => {
                    tracing::error!(subscription = H::NAME, position = event.position, %error, "parking the event in dead_letters");
                    let mut tx = self.pool.begin().await?;
                    dead_letters::park(&mut tx, H::NAME, event, &error.to_string(), attempt)
                        .await?;
                    if !checkpoints::advance_fenced(&mut *tx, lease, from, event.position).await? {
                        return Ok(Outcome::Moved);
                    }
                    tx.commit().await?;
                    return Ok(Outcome::Applied);
                }
            }
        }
    }

    /// Moves the checkpoint over events of other partitions, with nothing to handle.
    async fn pass(&self, lease: &Lease, from: i64, to: i64) -> Result<bool, ProjectionError> {
        Ok(checkpoints::advance_fenced(&self.pool, lease, from, to).await?)
    }
}

/// Takes a transaction-long lock on each stream, in id order (so two transactions that need
/// the same streams queue instead of deadlocking). Only saga transactions take them: they
/// coordinate the saga's partitions; correctness still comes from the append's version check.
async fn lock_streams(conn: &mut PgConnection, mut ids: Vec<Uuid>) -> Result<(), SagaError> {
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(7092, hashtext(id::text))
         FROM (SELECT unnest($1::uuid[]) AS id ORDER BY 1) AS streams",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

fn unique(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

impl<H: SagaHandler> Subscription for SagaSubscription<H> {
    fn name(&self) -> &'static str {
        H::NAME
    }

    fn stream_types(&self) -> Vec<StreamType> {
        Vec::new()
    }

    fn event_types(&self) -> Vec<&'static str> {
        H::EVENT_TYPES.to_vec()
    }

    /// Every event of one order in one partition, whichever stream it is on.
    fn partition_key(&self) -> PartitionKey {
        PartitionKey::Order
    }

    fn max_batch(&self) -> Option<i64> {
        Some(MAX_EVENTS_PER_TRANSACTION)
    }

    /// Its checkpoint moves only by its own fenced applies (a change of the partitions or of
    /// the saga mode gives it new rows, and its worker a new lease).
    fn position_moves_elsewhere(&self) -> bool {
        false
    }

    async fn position(&self, lease: &Lease) -> Result<i64, ProjectionError> {
        checkpoints::position(&self.pool, H::NAME, lease.partition)
            .await?
            .ok_or(ProjectionError::Retired(H::NAME))
    }

    /// The whole batch in one transaction; if it fails (a lost race, a poison event), its
    /// events are applied again one by one, each with its retries.
    async fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        if batch.events.is_empty() {
            return self.pass(lease, from, batch.read_to).await;
        }
        let advance = Advance {
            lease,
            from,
            to: batch.read_to,
        };
        match self.try_events(Some(advance), &batch.events).await {
            Ok(Outcome::Applied) => return Ok(true),
            Ok(Outcome::Moved) => return Ok(false),
            Err(error) => {
                tracing::debug!(subscription = H::NAME, %error, "a batch failed; applying it event by event");
            }
        }
        let mut expected = from;
        for event in &batch.events {
            if let Outcome::Moved = self.apply_one(lease, expected, event).await? {
                return Ok(false);
            }
            expected = event.position;
        }
        if expected < batch.read_to {
            return self.pass(lease, expected, batch.read_to).await;
        }
        Ok(true)
    }
}
