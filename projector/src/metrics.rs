//! The projector's metrics, named and described in one place. Per subscription and partition:
//! whether this process owns it, its position, how far behind it is (events and seconds), its
//! batches and retries, and dead letters.

use std::{collections::HashMap, time::Duration};

use event_store::Batch;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

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

pub fn batch_applied(subscription: &'static str, partition: i32, batch: &Batch, took: Duration) {
    let partition = partition.to_string();
    counter!("projector_events_applied_total", "subscription" => subscription)
        .increment(batch.events.len() as u64);
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
