//! The loop of one leased partition: find where it stands, read the next batch of its events
//! below the safe horizon, apply it with its checkpoint, announce progress; when there is
//! nothing to read, sleep until NOTIFY or the poll interval. Transient failures back off and
//! retry; the last error is recorded for /projections and cleared once the partition advances
//! again. The loop ends when told to stop (after its batch in flight) or when the lease is lost.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use event_store::{
    EventSelection, PartitionFilter, backoff, checkpoints, checkpoints::Lease, read_batch,
};
use sqlx::PgPool;
use tokio::sync::watch;

use super::{Member, Subscription};
use crate::{ProjectionError, metrics, progress::ProgressAnnouncer};

/// What every worker of a process shares.
#[derive(Clone)]
pub struct WorkerContext {
    pub pool: PgPool,
    /// Changes whenever events are appended (NOTIFY); only a hint.
    pub wakeups: watch::Receiver<u64>,
    pub announcer: ProgressAnnouncer,
    /// Events read (and applied) per batch.
    pub batch_size: i64,
    /// How often an idle partition looks for work without a wake-up.
    pub poll_interval: Duration,
}

enum Step {
    /// A batch was applied; the partition now stands here.
    Advanced(i64),
    /// Nothing new below the safe horizon.
    Idle,
    /// The checkpoint is not where this worker thought: read it again.
    Moved,
}

/// Runs the partition of `lease` (one of `partitions`) until `stop` becomes true or the lease
/// is lost.
pub async fn run<S: Subscription>(
    subscription: Arc<S>,
    lease: Lease,
    partitions: i32,
    mut context: WorkerContext,
    mut stop: watch::Receiver<bool>,
) {
    let (name, partition) = (subscription.name(), lease.partition);
    let members = subscription.members();
    let member_names: Vec<&'static str> = members.iter().map(|member| member.name).collect();
    tracing::info!(
        subscription = name,
        partition,
        fence = lease.fence,
        "partition started"
    );
    for member in &member_names {
        metrics::partition_owned(member, partition, true);
    }
    let selection = EventSelection {
        stream_types: subscription.stream_types(),
        event_types: subscription.event_types(),
        partition: (partitions > 1).then_some(PartitionFilter {
            key: subscription.partition_key(),
            count: partitions,
            index: partition,
        }),
    };
    let batch_size = subscription
        .max_batch()
        .map_or(context.batch_size, |most| most.min(context.batch_size));
    let mut from: Option<i64> = None;
    let mut failures = 0u32;
    while !*stop.borrow() {
        let stepped = match from {
            None => subscription.position(&lease).await.map(Step::Advanced),
            Some(position) => {
                let reading = Reading {
                    selection: &selection,
                    batch_size,
                    members: &members,
                };
                step(subscription.as_ref(), &lease, position, reading, &context).await
            }
        };
        match stepped {
            Ok(Step::Advanced(position)) => {
                from = Some(position);
                if failures > 0 {
                    tracing::info!(subscription = name, partition, "partition recovered");
                    for member in &member_names {
                        checkpoints::record_error(&context.pool, member, partition, None).await;
                        metrics::partition_failing(member, partition, false);
                    }
                    failures = 0;
                }
            }
            Ok(Step::Idle) => {
                for member in &member_names {
                    metrics::partition_caught_up(member, partition);
                }
                // Ask again where it stands before the next batch if its store may have been
                // reset meanwhile (Redis lost its data); a fenced checkpoint that moved makes
                // the next apply answer `Moved` instead.
                if subscription.position_moves_elsewhere() {
                    from = None;
                }
                let poll = context.poll_interval;
                tokio::select! {
                    _ = context.wakeups.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(Step::Moved) => match checkpoints::holds(&context.pool, &member_names, &lease).await
            {
                Ok(true) => from = None,
                Ok(false) => {
                    tracing::warn!(
                        subscription = name,
                        partition,
                        "another process holds this partition now; stopping it here"
                    );
                    break;
                }
                Err(error) => {
                    failures += 1;
                    pause(name, partition, failures, &error.into(), &mut stop).await;
                }
            },
            Err(error) => {
                failures += 1;
                let message = error.to_string();
                for member in &member_names {
                    metrics::partition_failing(member, partition, true);
                    metrics::retried(member);
                    checkpoints::record_error(&context.pool, member, partition, Some(&message))
                        .await;
                }
                pause(name, partition, failures, &error, &mut stop).await;
            }
        }
    }
    for member in &member_names {
        metrics::partition_owned(member, partition, false);
    }
    tracing::info!(subscription = name, partition, "partition stopped");
}

/// What a partition reads, and how much at a time.
#[derive(Clone, Copy)]
struct Reading<'a> {
    selection: &'a EventSelection,
    batch_size: i64,
    members: &'a [Member],
}

async fn step<S: Subscription>(
    subscription: &S,
    lease: &Lease,
    from: i64,
    reading: Reading<'_>,
    context: &WorkerContext,
) -> Result<Step, ProjectionError> {
    let batch = {
        let mut conn = context.pool.acquire().await?;
        read_batch(&mut conn, from, reading.batch_size, reading.selection).await?
    };
    if batch.read_to <= from {
        return Ok(Step::Idle);
    }
    let started = Instant::now();
    if !subscription.apply(lease, from, &batch).await? {
        return Ok(Step::Moved);
    }
    let took = started.elapsed();
    for member in reading.members {
        let applied = member.applied_of(&batch.events);
        metrics::batch_applied(member.name, lease.partition, applied, &batch, took);
    }
    // A wake-up only: waiting readers re-check the checkpoints they need.
    context
        .announcer
        .announce(subscription.name(), lease.partition, batch.read_to)
        .await;
    Ok(Step::Advanced(batch.read_to))
}

async fn pause(
    name: &str,
    partition: i32,
    failures: u32,
    error: &ProjectionError,
    stop: &mut watch::Receiver<bool>,
) {
    if error.is_transient() {
        tracing::warn!(subscription = name, partition, %error, failures, "cannot apply a batch; retrying");
    } else {
        tracing::error!(subscription = name, partition, %error, failures, "cannot apply a batch; retrying");
    }
    let pause = backoff(failures)
        .max(Duration::from_millis(100))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = tokio::time::sleep(pause) => {}
        _ = stop.changed() => {}
    }
}
