//! The fault suite: each case runs the real binaries under load, injects one kind of fault, and
//! then checks what the contract promises: the answers clients got (503 with Retry-After while a
//! dependency is down, never a 500, never a wrong 404), that nothing acknowledged was lost or
//! applied twice, and the invariants of a quiet system (testkit::invariants), rebuild included.
//! Every case is bounded in time and prints one line of figures (for docs/reliability.md).
//!
//! Run by `scripts/test` (suite `faults`) after the binaries are built, one case at a time.

mod killed_services;
mod postgres_restart;
mod redis_restart;
mod slow_clients;

use std::time::Duration;

/// The most any case may take.
pub const CASE_LIMIT: Duration = Duration::from_secs(240);

/// One line of figures, for the suite's log.
pub fn report(case: &str, figures: &faults::load::TallyInner, extra: &str) {
    eprintln!(
        "FIGURES {case}: requests {}, unanswered {}, replayed {}, statuses {:?}, orders {}{}",
        figures.requests,
        figures.unanswered,
        figures.replayed,
        figures.statuses,
        figures.orders.len(),
        extra
    );
}
