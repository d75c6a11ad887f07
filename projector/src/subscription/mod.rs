//! How a subscription runs, partitioned and shared by several projector processes.
//!
//! A subscription (a read model, a saga handler) reads a selection of the log. It is split into
//! partitions by a key (`PartitionKey`), so that events of one key (one order, one document)
//! stay in log order within one partition, and partitions are applied concurrently, each with
//! its own checkpoint. The `Coordinator` of each process keeps it a member of the group, shares
//! the partitions out among the members alive, and claims, renews and gives up leases; for
//! every partition it holds, a `worker` reads batches below the safe horizon and applies them
//! under the lease, so a process that lost a partition can never commit to it again.

mod coordinator;
mod worker;

pub use coordinator::{Coordinator, Registration};
pub use worker::WorkerContext;

use std::future::Future;

use domain::StreamType;
use event_store::{Batch, PartitionKey, checkpoints::Lease};

use crate::ProjectionError;

/// One of the subscriptions a `Subscription` applies (several, for a group applied together):
/// a checkpoint row per partition, its metrics, its `/projections` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub name: &'static str,
    /// The streams whose events it counts as applied (all when empty).
    pub stream_types: &'static [StreamType],
}

impl Member {
    /// How many of `events` it applies.
    pub fn applied_of(&self, events: &[event_store::RecordedEvent]) -> usize {
        if self.stream_types.is_empty() {
            return events.len();
        }
        events
            .iter()
            .filter(|event| self.stream_types.contains(&event.stream_type))
            .count()
    }
}

/// A subscription to the event log.
pub trait Subscription: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// The subscriptions whose checkpoints it moves: itself, or every member of a group applied
    /// together (claimed, fenced and moved together, each with a checkpoint of its own).
    fn members(&self) -> Vec<Member> {
        vec![Member {
            name: self.name(),
            stream_types: &[],
        }]
    }

    /// Whether its position may move without it (its store reset or rebuilt elsewhere), so that
    /// it is asked again after every idle wait. A subscription whose every change of position
    /// makes its own next apply fail (a fenced checkpoint at `from`) need not be.
    fn position_moves_elsewhere(&self) -> bool {
        true
    }

    /// The streams it reads (all when empty).
    fn stream_types(&self) -> Vec<StreamType>;

    /// The types of events it reads (all when empty): the others are not even fetched.
    fn event_types(&self) -> Vec<&'static str> {
        Vec::new()
    }

    /// What its events are keyed by when it is split into partitions.
    fn partition_key(&self) -> PartitionKey;

    /// The most events it takes in one batch, when fewer than the projector's batch size.
    fn max_batch(&self) -> Option<i64> {
        None
    }

    /// A partition count it always runs with, whatever the setting (see `Lookups`).
    fn fixed_partitions(&self) -> Option<i32> {
        None
    }

    /// Where the leased partition stands: every event of it at or below this position is
    /// applied.
    fn position(&self, lease: &Lease) -> impl Future<Output = Result<i64, ProjectionError>> + Send;

    /// Applies the partition's events of `batch` (all after `from`, in log order) and moves the
    /// checkpoint to `batch.read_to`, under `lease`. Returns false, having changed nothing, when
    /// the checkpoint is no longer at `from` under this lease (another process took the
    /// partition over, a rebuild switched over, or the partitions changed): the caller reads
    /// where it stands again.
    fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> impl Future<Output = Result<bool, ProjectionError>> + Send;
}
