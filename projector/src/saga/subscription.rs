//! A saga handler as a subscription. A batch of events is handled in one transaction, together
//! with the commands it issues and the checkpoint. If that fails, each event is retried in a
//! transaction of its own, so a lost race (a client writing the same product) retries just that
//! event. An event that still fails after retries for a reason that is not transient is parked in
//! `projector.dead_letters` and the subscription moves on.

use std::{future::Future, time::Duration};

use event_store::{RecordedEvent, backoff, checkpoints};
use sqlx::PgPool;
use tracing::Instrument;

use super::{Issuer, SagaError, dead_letters};
use crate::{ProjectionError, projections::Projection};

/// Tries of one event before a non-transient failure parks it.
const ATTEMPTS_BEFORE_PARKING: u32 = 3;
/// The pause before each further try of a step that failed for a non-transient reason.
const PARKING_PATIENCE: Duration = Duration::from_millis(500);
/// Tries of one event while it keeps losing races, before the runner backs off.
const ATTEMPTS_WHILE_RACING: u32 = 20;
/// Events per saga transaction. A writing transaction holds back every subscription's safe
/// horizon until it commits, so saga transactions stay short: enough events to share a commit,
/// few enough to keep the read models' lag low.
const EVENTS_PER_TRANSACTION: usize = 16;

pub trait SagaHandler: Send + Sync + 'static {
    const NAME: &'static str;

    /// Reacts to one event, issuing commands through `issuer` (all in one transaction).
    fn handle(
        &self,
        issuer: &mut Issuer<'_>,
        event: &RecordedEvent,
    ) -> impl Future<Output = Result<(), SagaError>> + Send;
}

pub struct SagaSubscription<H> {
    pool: PgPool,
    handler: H,
    snapshot_every: i64,
}

pub(super) enum Outcome {
    Applied,
    Moved,
}

impl<H: SagaHandler> SagaSubscription<H> {
    pub fn new(pool: PgPool, handler: H, snapshot_every: i64) -> Self {
        Self {
            pool,
            handler,
            snapshot_every,
        }
    }

    /// Runs the handler for `events` in one transaction; with `expected`, only if the
    /// checkpoint is still there, and moving it to the last event.
    pub(super) async fn try_events(
        &self,
        expected: Option<i64>,
        events: &[RecordedEvent],
    ) -> Result<Outcome, SagaError> {
        let Some(last) = events.last() else {
            return Ok(Outcome::Applied);
        };
        let mut tx = self.pool.begin().await?;
        if let Some(expected) = expected {
            match checkpoints::lock(&mut tx, H::NAME).await? {
                Some(checkpoint) if checkpoint.position == expected => {}
                _ => return Ok(Outcome::Moved),
            }
        }
        for event in events {
            let span = tracing::debug_span!(
                "saga",
                subscription = H::NAME,
                position = event.position,
                event = %event.event_type,
                order_id = ?event.order_id(),
                correlation_id = event.correlation_id().unwrap_or_default(),
            );
            let mut issuer = Issuer::new(&mut tx, event, self.snapshot_every);
            self.handler
                .handle(&mut issuer, event)
                .instrument(span)
                .await?;
        }
        if expected.is_some() {
            checkpoints::advance(&mut *tx, H::NAME, last.position).await?;
        }
        tx.commit().await?;
        Ok(Outcome::Applied)
    }

    async fn apply_one(
        &self,
        expected: i64,
        event: &RecordedEvent,
    ) -> Result<Outcome, ProjectionError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .try_events(Some(expected), std::slice::from_ref(event))
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
                    checkpoints::advance(&mut *tx, H::NAME, event.position).await?;
                    tx.commit().await?;
                    return Ok(Outcome::Applied);
                }
            }
        }
    }
}

impl<H: SagaHandler> Projection for SagaSubscription<H> {
    fn name(&self) -> &'static str {
        H::NAME
    }

    /// The checkpoint row is made by `saga::adopt_mode` before the subscription starts.
    async fn position(&self) -> Result<i64, ProjectionError> {
        checkpoints::read(&self.pool, H::NAME)
            .await?
            .map(|checkpoint| checkpoint.position)
            .ok_or(ProjectionError::Retired(H::NAME))
    }

    /// A few events per transaction (one commit for several steps); if any step fails (a lost
    /// race, a poison event), those events are applied again one by one, each with its retries.
    async fn apply(&self, from: i64, events: &[RecordedEvent]) -> Result<bool, ProjectionError> {
        let mut expected = from;
        for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
            match self.try_events(Some(expected), chunk).await {
                Ok(Outcome::Applied) => {}
                Ok(Outcome::Moved) => return Ok(false),
                Err(error) => {
                    tracing::debug!(subscription = H::NAME, %error, "a batch failed; applying it event by event");
                    for event in chunk {
                        if let Outcome::Moved = self.apply_one(expected, event).await? {
                            return Ok(false);
                        }
                        expected = event.position;
                    }
                }
            }
            expected = chunk.last().map_or(expected, |event| event.position);
        }
        Ok(true)
    }

    async fn record_error(&self, error: Option<&str>) {
        checkpoints::record_error(&self.pool, H::NAME, error).await;
    }
}
