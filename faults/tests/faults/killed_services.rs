//! `kill -9` of a service in the middle of the load: the command-api while clients retry with
//! `Idempotency-Key` (every order exactly once), and the projector while the saga is busiest, in
//! both saga modes (the invariants hold and every read model equals a rebuild).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use faults::{
    RealSystem, Service, bounded,
    load::{OrderLoad, Shop, Tally, assert_each_order_exactly_once, shared, wait_for},
};

use crate::{CASE_LIMIT, report};

/// How often each case kills its service.
const KILLS: usize = 4;

/// Runs `load` and meanwhile kills `service` with `kill -9` (and starts it again) each time
/// another `every` orders have been placed, `KILLS` times.
async fn run_killing(
    system: &RealSystem,
    shop: &Shop,
    load: &OrderLoad,
    service: Service,
    every: usize,
) -> (Arc<Tally>, Arc<AtomicUsize>) {
    let (tally, placed) = shared();
    let kills = async {
        for round in 1..=KILLS {
            wait_for(&placed, round * every).await;
            system.kill(service);
            system.restart(service).await;
        }
    };
    tokio::join!(load.run(system, shop, &tally, &placed), kills);
    (tally, placed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_api_killed_while_clients_retry_places_every_order_exactly_once() {
    bounded(CASE_LIMIT, "command-api kill -9", async {
        let system = RealSystem::builder().start().await;
        let shop = Shop::open(
            &system,
            &[50_000, 80_000, 120_000],
            &[(150, 200), (900, 60), (40, 500)],
        )
        .await;
        let load = OrderLoad {
            clients: 12,
            orders_per_client: 20,
            cancel_every: 4,
            restock_every: 9,
        };
        let (tally, _) = run_killing(&system, &shop, &load, Service::CommandApi, 40).await;

        tally.assert_clean("the command-api kills");
        let figures = tally.snapshot();
        assert_eq!(figures.orders.len(), load.clients * load.orders_per_client);
        assert!(
            figures.unanswered > 0,
            "no request was cut off by a kill: the fault did not hit the load"
        );
        assert_each_order_exactly_once(&system, &figures.orders).await;
        let state = system.under_test().assert_invariants().await;
        system.assert_token_never_logged();
        report(
            "command-api kill -9",
            &figures,
            &format!(
                ", kills {KILLS}, events {}, outcomes {:?}",
                state.events, state.orders
            ),
        );
    })
    .await;
}

async fn projector_killed_during_saga_load(saga_mode: &'static str) {
    let system = RealSystem::builder()
        .saga_mode(saga_mode)
        .setting("PROJECTOR_BATCH_SIZE", "40")
        .start()
        .await;
    // Scarce stock and tight credit: every saga path (approve, reject for stock, reject for
    // credit, release on cancel) is taken.
    let shop = Shop::open(
        &system,
        &[3_000, 5_000, 8_000, 20_000],
        &[(100, 40), (250, 25), (400, 15), (90, 60), (1_000, 8)],
    )
    .await;
    let load = OrderLoad {
        clients: 16,
        orders_per_client: 15,
        cancel_every: 5,
        restock_every: 7,
    };
    let (tally, placed) = run_killing(&system, &shop, &load, Service::Projector, 45).await;
    assert_eq!(
        placed.load(Ordering::Relaxed),
        load.clients * load.orders_per_client
    );

    tally.assert_clean("the projector kills");
    let figures = tally.snapshot();
    assert_each_order_exactly_once(&system, &figures.orders).await;
    let state = system.under_test().assert_invariants().await;
    for outcome in ["approved", "rejected", "cancelled"] {
        assert!(
            state.orders.get(outcome).copied().unwrap_or(0) > 0,
            "the load should produce {outcome} orders: {:?}",
            state.orders
        );
    }
    report(
        &format!("projector kill -9 ({saga_mode})"),
        &figures,
        &format!(
            ", kills {KILLS}, events {}, outcomes {:?}",
            state.events, state.orders
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projector_killed_during_saga_load_orchestration() {
    bounded(
        CASE_LIMIT,
        "projector kill -9 (orchestration)",
        projector_killed_during_saga_load("orchestration"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projector_killed_during_saga_load_choreography() {
    bounded(
        CASE_LIMIT,
        "projector kill -9 (choreography)",
        projector_killed_during_saga_load("choreography"),
    )
    .await;
}
