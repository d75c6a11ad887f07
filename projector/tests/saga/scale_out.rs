//! Several projector processes share the partitions of every subscription: they give what one
//! process gives, take a killed one's partitions over within seconds, and the partition count
//! may change at any time. (Each "process" is a projector built by `Application::build` with
//! pools and a member id of its own; killing one ends its tasks and its database sessions, as
//! `kill -9` would.)

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::Value;
use testkit::{TestSystem, Workload, eventually};

use crate::in_both_modes;

in_both_modes!(
    three_projectors_share_the_partitions_and_give_what_one_gives,
    a_killed_owners_partitions_are_taken_over_within_five_seconds,
    changing_the_partition_count_keeps_every_invariant,
);

/// Who owns each partition, from /projections: (subscription, partition) -> owner.
async fn owners(system: &TestSystem) -> HashMap<(String, i64), Option<String>> {
    let (_, body) = system.read("/projections").await;
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item: &Value| {
            let key = (
                item["name"].as_str().unwrap_or_default().to_owned(),
                item["partition"].as_i64().unwrap_or(-1),
            );
            (key, item["owner"].as_str().map(str::to_owned))
        })
        .collect()
}

async fn three_projectors_share_the_partitions_and_give_what_one_gives(system: &TestSystem) {
    system.start_projector().await;
    system.start_projector().await;
    // Within a few seconds every process holds a share, and every partition has an owner.
    let shared = eventually(Duration::from_secs(20), || async {
        let owners = owners(system).await;
        let distinct: HashSet<_> = owners.values().flatten().collect();
        !owners.is_empty() && owners.values().all(Option::is_some) && distinct.len() == 3
    })
    .await;
    assert!(
        shared,
        "the partitions were not shared by three processes: {:?}",
        owners(system).await
    );
    let workload = Workload::set_up(system).await;
    workload.place_orders(system, 16, 10, 0).await;
    system.wait_until_caught_up().await;
    workload.ship_some(system).await;
    workload.assert_invariants(system, 160).await;
}

async fn a_killed_owners_partitions_are_taken_over_within_five_seconds(system: &TestSystem) {
    let second = system.start_projector().await;
    let both = eventually(Duration::from_secs(20), || async {
        let owners = owners(system).await;
        owners.values().flatten().collect::<HashSet<_>>().len() == 2
            && owners.values().all(Option::is_some)
    })
    .await;
    assert!(both, "two processes never shared the partitions");
    let workload = Workload::set_up(system).await;
    let load = workload.place_orders(system, 16, 10, 0);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        system.kill_projector_named(&second).await;
        let killed_at = Instant::now();
        // The survivor owns everything once the killed process's leases have expired.
        let taken_over = eventually(Duration::from_secs(5), || async {
            let owners = owners(system).await;
            owners.values().all(Option::is_some)
                && owners.values().flatten().collect::<HashSet<_>>().len() == 1
        })
        .await;
        (taken_over, killed_at.elapsed())
    };
    let ((), (taken_over, took)) = tokio::join!(load, kill);
    assert!(
        taken_over,
        "the partitions were not taken over within 5 s of the kill ({took:?}): {:?}",
        owners(system).await
    );
    workload.ship_some(system).await;
    workload.assert_invariants(system, 160).await;
}

async fn changing_the_partition_count_keeps_every_invariant(system: &TestSystem) {
    let workload = Workload::set_up(system).await;
    let mut placed = 0;
    for (round, partitions) in [5, 1, 2].into_iter().enumerate() {
        let load = workload.place_orders(system, 8, 5, round);
        let change = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            system.kill_projector().await;
            system.set_partitions(partitions);
            system.start_projector().await;
        };
        tokio::join!(load, change);
        placed += 40;
        let repartitioned = eventually(Duration::from_secs(20), || async {
            let (_, body) = system.read("/projections").await;
            body["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .filter(|item| item["name"] == "order_list")
                    .count()
                    == partitions as usize
            })
        })
        .await;
        assert!(
            repartitioned,
            "order_list never had {partitions} partitions"
        );
    }
    workload.ship_some(system).await;
    workload.assert_invariants(system, placed).await;
}
