//! Redis is killed under load and comes back empty (a server of the test's own, without
//! persistence): while a lookup cannot tell whether a document exists (Redis down, or the read
//! models being replayed into a fresh generation) the query-api answers 503 with `Retry-After`,
//! never 500 and never 404 for an id that exists; the read models heal by themselves;
//! `min_position` reads succeed afterwards; the invariants hold.

use std::time::Duration;

use faults::{
    RealSystem, Service, bounded,
    load::{OrderLoad, Shop, Tally, read_until, shared, wait_for},
};
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::{CASE_LIMIT, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_empty_under_load_answers_503_never_404_and_heals() {
    bounded(CASE_LIMIT, "Redis restart", async {
        // Small batches: the replay after the loss takes many of them, so lookups meet it.
        let system = RealSystem::builder()
            .private_redis()
            .setting("PROJECTOR_BATCH_SIZE", "20")
            .start()
            .await;
        let shop = Shop::open(
            &system,
            &[60_000, 90_000, 30_000],
            &[(110, 400), (650, 90), (75, 900)],
        )
        .await;
        // Orders that exist before the fault, read all through it.
        let (tally, placed) = shared();
        OrderLoad {
            clients: 6,
            orders_per_client: 10,
            cancel_every: 4,
            restock_every: 0,
        }
        .run(&system, &shop, &tally, &placed)
        .await;
        system
            .under_test()
            .wait_until_caught_up(Duration::from_secs(60))
            .await;
        let mut known: Vec<String> = tally
            .snapshot()
            .orders
            .iter()
            .map(|order| format!("/orders/{}", order.id))
            .collect();
        known.extend(shop.customers.iter().map(|id| format!("/customers/{id}")));
        known.extend(shop.products.iter().map(|id| format!("/products/{id}")));

        let readers = Tally::default();
        let (stop_reading, reading) = watch::channel(false);
        let read = async {
            futures_util::future::join_all(
                (0..4).map(|_| read_until(&system, &known, &[200, 503], &readers, reading.clone())),
            )
            .await;
        };
        let (writes, written) = shared();
        let write = OrderLoad {
            clients: 4,
            orders_per_client: 40,
            cancel_every: 5,
            restock_every: 8,
        };
        let fault = async {
            wait_for(&written, 10).await;
            system.redis_server().kill();
            // Down: lookups and the projector's readiness are 503, commands go on.
            for path in [&known[0], &known[known.len() - 1]] {
                let response = system.query(path).send().await.expect("answered");
                assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
                assert!(response.headers().contains_key("retry-after"), "{path}");
            }
            for service in [Service::QueryApi, Service::Projector] {
                let status = system
                    .get(service, "/readyz")
                    .send()
                    .await
                    .expect("answered")
                    .status();
                assert_eq!(
                    status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{service:?} /readyz"
                );
            }
            // Down for a while, under load: the readers meet the outage many times over.
            let before = readers.snapshot().statuses.get(&503).copied().unwrap_or(0);
            let met = testkit::eventually(Duration::from_secs(30), || async {
                readers.snapshot().statuses.get(&503).copied().unwrap_or(0) >= before + 40
            })
            .await;
            assert!(
                met,
                "the readers did not meet the outage: {:?}",
                readers.snapshot()
            );
            system.redis_server().start_again().await;
            // Healed: every document that existed is back, without anyone's help.
            let healed = testkit::eventually(Duration::from_secs(60), || async {
                for path in &known {
                    match system.query(path).send().await {
                        Ok(response) if response.status() == StatusCode::OK => {}
                        _ => return false,
                    }
                }
                true
            })
            .await;
            assert!(healed, "the read models did not heal within a minute");
        };
        tokio::join!(read, async {
            tokio::join!(write.run(&system, &shop, &writes, &written), fault);
            stop_reading.send_replace(true);
        });

        writes.assert_clean("the Redis outage (commands)");
        readers.assert_clean("the Redis outage (lookups of ids that exist)");
        // Read-your-writes works again: every order placed during the outage, at its position.
        for order in &writes.snapshot().orders {
            let response = system
                .query(&format!(
                    "/orders/{}?min_position={}",
                    order.id, order.position
                ))
                .send()
                .await
                .expect("answered");
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "order {} at {}",
                order.id,
                order.position
            );
        }
        let state = system.under_test().assert_invariants().await;
        let reads = readers.snapshot();
        report(
            "Redis restarted empty",
            &writes.snapshot(),
            &format!(
                ", lookups {} ({:?}), events {}, outcomes {:?}",
                reads.requests, reads.statuses, state.events, state.orders
            ),
        );
    })
    .await;
}
