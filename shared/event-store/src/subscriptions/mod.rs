//! Subscriptions to the log: where each partition of each subscription stands, who owns it, and
//! which projector processes are alive to own partitions. The one place that reads or writes
//! `projector.subscriptions`, `projector.checkpoints` and `projector.members`.
//!
//! A subscription (a read model, a saga, the relay) is split into `partitions`; every event
//! belongs to one partition by a key (see `tail::PartitionKey`), so the events of one key stay
//! in log order within one partition. Each partition has its own checkpoint and is owned by one
//! process at a time through a lease (owner, expiry, fence) on its checkpoint row.

pub mod checkpoints;
pub mod members;

use std::time::Duration;

/// How long a lease or a member's heartbeat lasts without renewal. A process renews every
/// second; one that stops (crash, `kill -9`, lost network) loses its partitions after this.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
