//! Hundreds of concurrent multi-line orders against scarce stock and tight credit, with cancels
//! and restocks racing the saga and the projector killed several times mid-way (one process,
//! and two sharing the partitions); then the contract's invariants, checked exactly, against
//! the read models and the aggregates.

use std::time::Duration;

use testkit::{TestSystem, Workload};

use crate::in_both_modes;

in_both_modes!(
    invariants_hold_under_contention_and_crashes,
    invariants_hold_with_two_projectors_under_contention_and_crashes,
);

const CLIENTS: usize = 32;
const ORDERS_PER_CLIENT: usize = 10;

async fn invariants_hold_under_contention_and_crashes(system: &TestSystem) {
    contention(system, 1).await;
}

async fn invariants_hold_with_two_projectors_under_contention_and_crashes(system: &TestSystem) {
    contention(system, 2).await;
}

/// The contention load with `projectors` projector processes, one of them killed and started
/// again four times while it runs.
async fn contention(system: &TestSystem, projectors: usize) {
    let mut running = Vec::new();
    for _ in 1..projectors {
        running.push(system.start_projector().await);
    }
    let workload = Workload::set_up(system).await;
    let load = workload.place_orders(system, CLIENTS, ORDERS_PER_CLIENT, 0);
    let crashes = async {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if projectors == 1 {
                system.kill_projector().await;
                system.start_projector().await;
            } else {
                // Kill the oldest still running; the others take its partitions over.
                let victim = running.remove(0);
                system.kill_projector_named(&victim).await;
                running.push(system.start_projector().await);
            }
        }
    };
    tokio::join!(load, crashes);
    system.wait_until_caught_up().await;
    workload.ship_some(system).await;
    let outcomes = workload
        .assert_invariants(system, CLIENTS * ORDERS_PER_CLIENT)
        .await;
    for status in ["approved", "rejected", "cancelled"] {
        assert!(
            outcomes.get(status).copied().unwrap_or(0) > 0,
            "the load should produce {status} orders: {outcomes:?}"
        );
    }
}
