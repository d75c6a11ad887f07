//! The projector's metrics: their names and `# HELP` texts in one place. Per subscription and
//! partition: whether this process owns it, its position, how far behind it is (events and
//! seconds), its batches, retries and failures, and dead letters. And what the read side
//! observes about the saga.
//!
//! Saga outcomes are counted where `order_list` folds an order's decision (it knows when the
//! order was placed), not in the saga itself: both saga designs end in the same events, so the
//! numbers mean the same in either mode. A read model returns what it observed from
//! `apply_batch` as `Observed`; the live subscription records it only after the batch has
//! committed, so a rolled-back batch or a rebuild (which replays old decisions) counts nothing,
//! and a batch read again after a crash is skipped by the fold, so nothing counts twice.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use domain::order::{OrderStatus, RejectionReason};
use event_store::Batch;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

/// Orders the saga decided (or that were cancelled while pending), by `result` and `reason`.
pub const SAGA_OUTCOMES: &str = "projector_saga_outcomes_total";
/// From `OrderPlaced` to the order's decision, by `result`.
pub const SAGA_PLACED_TO_DECIDED: &str = "projector_saga_placed_to_decided_seconds";

/// Registers the descriptions (`# HELP`) of every projector metric. Call once at start.
pub fn describe() {
    describe_gauge!(
        "projector_partition_owned",
        "1 while this process owns the partition of the subscription, else 0"
    );
    describe_gauge!(
        "projector_partitions_owned",
        "How many partitions of the subscription this process owns"
    );
    describe_gauge!(
        "projector_subscription_position",
        "The position of the last event the partition has applied (positions are not dense)"
    );
    describe_gauge!(
        "projector_subscription_lag_events",
        Unit::Count,
        "Events in the log after the partition's position: not applied yet"
    );
    describe_gauge!(
        "projector_subscription_lag_seconds",
        Unit::Seconds,
        "Age of the newest event the partition applied, when it applied it (0 once caught up)"
    );
    describe_gauge!(
        "projector_subscription_failing",
        "1 while the partition's last batch failed (it keeps retrying), else 0"
    );
    describe_counter!(
        "projector_events_applied_total",
        Unit::Count,
        "Events applied by the subscription"
    );
    describe_counter!(
        "projector_subscription_retries_total",
        Unit::Count,
        "Batches of the subscription that failed and were retried"
    );
    describe_histogram!(
        "projector_batch_duration_seconds",
        Unit::Seconds,
        "Time to apply one batch, with its checkpoint"
    );
    describe_gauge!(
        "projector_dead_letters",
        Unit::Count,
        "Events of the saga subscription parked in dead_letters"
    );
    describe_counter!(
        SAGA_OUTCOMES,
        Unit::Count,
        "Orders decided, by result (approved, rejected, or cancelled while still pending) and reason \
         (insufficient_stock, credit_limit_exceeded, or none); counted by the order_list read model \
         as it applies the decision, in either saga mode"
    );
    describe_histogram!(
        SAGA_PLACED_TO_DECIDED,
        Unit::Seconds,
        "Time from OrderPlaced to the order's decision (both as recorded in the event log), by result"
    );
}

pub fn partition_owned(subscription: &'static str, partition: i32, owned: bool) {
    gauge!("projector_partition_owned", "subscription" => subscription, "partition" => partition.to_string())
        .set(if owned { 1.0 } else { 0.0 });
}

/// How many partitions of each subscription this process owns.
pub fn partitions_owned(owned: impl Iterator<Item = &'static str>) {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for name in owned {
        *counts.entry(name).or_default() += 1;
    }
    for (name, count) in counts {
        gauge!("projector_partitions_owned", "subscription" => name).set(count as f64);
    }
}

/// A batch `subscription` applied `applied` events of (a member of a group applies only its own
/// streams' events of the group's batch).
pub fn batch_applied(
    subscription: &'static str,
    partition: i32,
    applied: usize,
    batch: &Batch,
    took: Duration,
) {
    let partition = partition.to_string();
    counter!("projector_events_applied_total", "subscription" => subscription)
        .increment(applied as u64);
    histogram!("projector_batch_duration_seconds", "subscription" => subscription)
        .record(took.as_secs_f64());
    gauge!("projector_subscription_position", "subscription" => subscription, "partition" => partition.clone())
        .set(batch.read_to as f64);
    let behind = batch.events.last().map_or(0.0, |last| {
        (chrono::Utc::now() - last.recorded_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64()
    });
    gauge!("projector_subscription_lag_seconds", "subscription" => subscription, "partition" => partition)
        .set(behind);
}

pub fn partition_caught_up(subscription: &'static str, partition: i32) {
    gauge!("projector_subscription_lag_seconds", "subscription" => subscription, "partition" => partition.to_string())
        .set(0.0);
}

pub fn partition_failing(subscription: &'static str, partition: i32, failing: bool) {
    gauge!("projector_subscription_failing", "subscription" => subscription, "partition" => partition.to_string())
        .set(if failing { 1.0 } else { 0.0 });
}

pub fn retried(subscription: &'static str) {
    counter!("projector_subscription_retries_total", "subscription" => subscription).increment(1);
}

pub fn lag_events(subscription: &str, partition: i32, events: i64) {
    gauge!("projector_subscription_lag_events", "subscription" => subscription.to_owned(), "partition" => partition.to_string())
        .set(events as f64);
}

pub fn dead_letters(subscription: &str, parked: i64) {
    gauge!("projector_dead_letters", "subscription" => subscription.to_owned()).set(parked as f64);
}

/// What a read model observed in one batch, to be recorded once that batch has committed in
/// the live copy.
#[derive(Debug, Default, PartialEq)]
#[must_use = "record it once the batch has committed (a rebuild drops it)"]
pub struct Observed {
    saga_outcomes: Vec<SagaOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct SagaOutcome {
    result: &'static str,
    reason: &'static str,
    seconds: f64,
}

impl Observed {
    /// Notes an order's move from `pending` to `status`; any other change is not a decision.
    pub fn order_changed(
        &mut self,
        before: OrderStatus,
        status: OrderStatus,
        reason: Option<RejectionReason>,
        placed_at: DateTime<Utc>,
        changed_at: DateTime<Utc>,
    ) {
        if before != OrderStatus::Pending || status == OrderStatus::Pending {
            return;
        }
        let reason = match reason {
            Some(RejectionReason::InsufficientStock) => "insufficient_stock",
            Some(RejectionReason::CreditLimitExceeded) => "credit_limit_exceeded",
            None => "none",
        };
        let seconds = (changed_at - placed_at)
            .to_std()
            .map_or(0.0, |elapsed| elapsed.as_secs_f64());
        self.saga_outcomes.push(SagaOutcome {
            result: status.as_str(),
            reason,
            seconds,
        });
    }

    /// Records what was observed: call only once the batch has committed in the live copy.
    pub fn record(self) {
        for outcome in self.saga_outcomes {
            counter!(SAGA_OUTCOMES, "result" => outcome.result, "reason" => outcome.reason)
                .increment(1);
            histogram!(SAGA_PLACED_TO_DECIDED, "result" => outcome.result).record(outcome.seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pending_order_moving_on_is_a_decision() {
        let placed = Utc::now();
        let decided = placed + chrono::Duration::milliseconds(1500);
        let mut observed = Observed::default();
        observed.order_changed(
            OrderStatus::Pending,
            OrderStatus::Rejected,
            Some(RejectionReason::CreditLimitExceeded),
            placed,
            decided,
        );
        observed.order_changed(
            OrderStatus::Pending,
            OrderStatus::Pending,
            None,
            placed,
            decided,
        );
        observed.order_changed(
            OrderStatus::Approved,
            OrderStatus::Cancelled,
            None,
            placed,
            decided,
        );
        observed.order_changed(
            OrderStatus::Approved,
            OrderStatus::Shipped,
            None,
            placed,
            decided,
        );
        assert_eq!(
            observed.saga_outcomes,
            [SagaOutcome {
                result: "rejected",
                reason: "credit_limit_exceeded",
                seconds: 1.5
            }]
        );
    }
}
