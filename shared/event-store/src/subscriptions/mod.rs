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

/// The subscriptions that decide orders, in either saga mode (the projector's `saga` module
/// runs them): what the command-api's admission control watches.
pub const SAGA_SUBSCRIPTIONS: [&str; 4] = [
    "order_saga",
    "stock_handler",
    "credit_handler",
    "order_handler",
];

/// How many events the saga has yet to handle (after the position of its partition furthest
/// behind), counted up to `at_most`: a count reads every event it counts, so a caller that only
/// compares with a bound stops there. With no saga subscription yet (no projector has run),
/// every event is still to be handled.
pub async fn saga_backlog<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    at_most: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT 1 FROM events WHERE position >
                 (SELECT coalesce(min(position), 0) FROM projector.checkpoints WHERE name = ANY($1))
             LIMIT $2
         ) AS backlog",
    )
    .bind(&SAGA_SUBSCRIPTIONS[..])
    .bind(at_most)
    .fetch_one(executor)
    .await
}
