//! Keeps this process a member of the projector group and decides which partitions it runs.
//!
//! Every second it renews its heartbeat and its leases, reads which members are alive, and
//! computes the same assignment every member computes from the same list: partition `p` of a
//! subscription goes to member `(p + offset(subscription)) mod members`. It starts a worker for
//! each partition assigned to it (claiming the lease once the previous owner gave it up or let
//! it expire), and stops the workers of partitions assigned elsewhere (after their batch in
//! flight) and gives their leases up, so a joining process gets its share within a second or
//! two. A member that dies stops renewing: after `LEASE_TTL` the others count it out and take
//! its partitions over. A lease that renewal no longer returns was taken over: its worker stops
//! (it could not commit anyway: every apply is fenced).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use event_store::{
    checkpoints::{self, Lease},
    subscriptions::{LEASE_TTL, members},
};
use sqlx::PgPool;
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

use super::{Subscription, WorkerContext, worker};
use crate::metrics;

/// How often membership and leases are renewed and the assignment recomputed.
const TICK: Duration = Duration::from_secs(1);
/// How long a worker told to stop may take to finish its batch before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

type Spawn =
    dyn Fn(Lease, i32, WorkerContext, watch::Receiver<bool>) -> JoinHandle<()> + Send + Sync;

/// A subscription this process can run, type-erased for the coordinator.
pub struct Registration {
    name: &'static str,
    /// The checkpoint rows of each partition, claimed and given up together.
    members: Vec<&'static str>,
    spawn: Box<Spawn>,
}

impl Registration {
    pub fn new<S: Subscription>(subscription: S) -> Self {
        let subscription = Arc::new(subscription);
        Self {
            name: subscription.name(),
            members: subscription
                .members()
                .iter()
                .map(|member| member.name)
                .collect(),
            spawn: Box::new(move |lease, partitions, context, stop| {
                tokio::spawn(worker::run(
                    subscription.clone(),
                    lease,
                    partitions,
                    context,
                    stop,
                ))
            }),
        }
    }
}

struct Running {
    lease: Lease,
    members: Vec<&'static str>,
    partitions: i32,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Coordinator {
    pool: PgPool,
    member: Uuid,
    member_name: String,
    subscriptions: Vec<Registration>,
    context: WorkerContext,
    running: HashMap<(&'static str, i32), Running>,
}

impl Coordinator {
    pub fn new(pool: PgPool, subscriptions: Vec<Registration>, context: WorkerContext) -> Self {
        let member = Uuid::new_v4();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        Self {
            pool,
            member,
            member_name: format!(
                "{host}:{}:{}",
                std::process::id(),
                &member.simple().to_string()[..8]
            ),
            subscriptions,
            context,
            running: HashMap::new(),
        }
    }

    /// Runs until `shutdown` becomes true, then stops every worker, gives the leases up and
    /// leaves the group.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(member = %self.member_name, "joined the projector group");
        while !*shutdown.borrow() {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "cannot renew leases or membership; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {}
            }
        }
        let everything: Vec<_> = self.running.keys().copied().collect();
        self.stop(&everything).await;
        if let Err(error) = members::leave(&self.pool, self.member).await {
            tracing::warn!(%error, "cannot leave the projector group; its leases expire by themselves");
        }
        tracing::info!(member = %self.member_name, "left the projector group");
    }

    async fn tick(&mut self) -> Result<(), sqlx::Error> {
        members::heartbeat(&self.pool, self.member, &self.member_name).await?;
        let alive = members::alive(&self.pool, LEASE_TTL).await?;
        let held: HashSet<(String, i32, i64)> =
            checkpoints::renew(&self.pool, self.member, LEASE_TTL)
                .await?
                .into_iter()
                .collect();
        // Workers whose lease was taken over (or whose worker ended by itself) go.
        let lost: Vec<_> = self
            .running
            .iter()
            .filter(|(_, running)| {
                running.task.is_finished()
                    || !running.members.iter().all(|member| {
                        held.contains(&(
                            (*member).to_owned(),
                            running.lease.partition,
                            running.lease.fence,
                        ))
                    })
            })
            .map(|(key, _)| *key)
            .collect();
        self.stop(&lost).await;

        let Some(me) = alive.iter().position(|id| *id == self.member) else {
            return Ok(()); // not yet listed as alive: next tick
        };
        let mut assigned = HashSet::new();
        for index in 0..self.subscriptions.len() {
            let name = self.subscriptions[index].name;
            // The members of a group are made with one partition count (`Runner::set_up`).
            let Some(first) = self.subscriptions[index].members.first().copied() else {
                continue;
            };
            let Some(layout) = checkpoints::layout(&self.pool, first).await? else {
                continue; // retired (another process switched the saga mode)
            };
            let offset = name
                .bytes()
                .fold(0usize, |sum, byte| sum.wrapping_add(byte as usize));
            for partition in 0..layout.partitions {
                if (partition as usize + offset) % alive.len() == me {
                    assigned.insert((name, partition, layout.partitions));
                }
            }
        }
        // Partitions assigned elsewhere now, or of an older layout, are given up.
        let unassigned: Vec<_> = self
            .running
            .iter()
            .filter(|((name, partition), running)| {
                !assigned.contains(&(*name, *partition, running.partitions))
            })
            .map(|(key, _)| *key)
            .collect();
        self.stop(&unassigned).await;
        for (name, partition, partitions) in assigned {
            if self.running.contains_key(&(name, partition)) {
                continue;
            }
            let Some(registration) = self.subscriptions.iter().find(|r| r.name == name) else {
                continue;
            };
            let Some(lease) = checkpoints::claim_all(
                &self.pool,
                &registration.members,
                partition,
                self.member,
                LEASE_TTL,
            )
            .await?
            else {
                continue; // its previous owner has not given it up yet
            };
            let (stop, stopped) = watch::channel(false);
            let task =
                (registration.spawn)(lease.clone(), partitions, self.context.clone(), stopped);
            self.running.insert(
                (name, partition),
                Running {
                    lease,
                    members: registration.members.clone(),
                    partitions,
                    stop,
                    task,
                },
            );
        }
        metrics::partitions_owned(
            self.running
                .values()
                .flat_map(|running| running.members.iter().copied()),
        );
        for (name, partition, lag) in checkpoints::owned_lags(&self.pool, self.member).await? {
            metrics::lag_events(&name, partition, lag);
        }
        for (subscription, parked) in crate::saga::dead_letter_counts(&self.pool).await? {
            metrics::dead_letters(&subscription, parked);
        }
        Ok(())
    }

    /// Stops these workers (each after its batch in flight, or aborted after `STOP_GRACE`) and
    /// gives their leases up.
    async fn stop(&mut self, which: &[(&'static str, i32)]) {
        let stopping: Vec<Running> = which
            .iter()
            .filter_map(|key| self.running.remove(key))
            .collect();
        for running in &stopping {
            let _ = running.stop.send(true);
        }
        for running in stopping {
            let Running {
                lease,
                members,
                task,
                ..
            } = running;
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                tracing::warn!(
                    subscription = lease.subscription,
                    partition = lease.partition,
                    "a partition did not stop in time; aborting it (its commit would be fenced out)"
                );
                abort.abort();
            }
            if let Err(error) = checkpoints::release_all(&self.pool, &members, &lease).await {
                tracing::debug!(%error, "cannot give a lease up; it expires by itself");
            }
        }
    }
}

impl Drop for Coordinator {
    /// Aborted (a test killing the projector, a panic): the workers go with it.
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
    }
}
