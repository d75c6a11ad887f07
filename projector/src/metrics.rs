//! The projector's metrics: their names and `# HELP` texts in one place, and what the read
//! side observes about the saga.
//!
//! Saga outcomes are counted where `order_list` folds an order's decision (it knows when the
//! order was placed), not in the saga itself: both saga designs end in the same events, so the
//! numbers mean the same in either mode. A read model returns what it observed from
//! `apply_batch` as `Observed`; the live subscription records it only after the batch has
//! committed, so a rolled-back batch or a rebuild (which replays old decisions) counts nothing,
//! and a batch read again after a crash is skipped by the fold, so nothing counts twice.

use chrono::{DateTime, Utc};
use domain::order::{OrderStatus, RejectionReason};
use metrics::Unit;

/// Events applied per subscription (recorded by the runner).
pub const EVENTS_APPLIED: &str = "projector_events_applied_total";
/// The last position each subscription applied (recorded by the runner).
pub const POSITION: &str = "projector_position";
/// Orders the saga decided (or that were cancelled while pending), by `result` and `reason`.
pub const SAGA_OUTCOMES: &str = "projector_saga_outcomes_total";
/// From `OrderPlaced` to the order's decision, by `result`.
pub const SAGA_PLACED_TO_DECIDED: &str = "projector_saga_placed_to_decided_seconds";

/// Gives the projector's metrics their `# HELP` lines (after the recorder is installed).
pub fn describe() {
    metrics::describe_counter!(
        EVENTS_APPLIED,
        Unit::Count,
        "Events each subscription has processed, by subscription"
    );
    metrics::describe_gauge!(
        POSITION,
        "The position of the last event each subscription applied, by subscription"
    );
    metrics::describe_counter!(
        SAGA_OUTCOMES,
        Unit::Count,
        "Orders decided, by result (approved, rejected, or cancelled while still pending) and reason \
         (insufficient_stock, credit_limit_exceeded, or none); counted by the order_list read model \
         as it applies the decision, in either saga mode"
    );
    metrics::describe_histogram!(
        SAGA_PLACED_TO_DECIDED,
        Unit::Seconds,
        "Time from OrderPlaced to the order's decision (both as recorded in the event log), by result"
    );
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
            metrics::counter!(SAGA_OUTCOMES, "result" => outcome.result, "reason" => outcome.reason)
                .increment(1);
            metrics::histogram!(SAGA_PLACED_TO_DECIDED, "result" => outcome.result)
                .record(outcome.seconds);
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
