//! PostgreSQL crashes under load and comes back (a cluster of the test's own, `pg_ctl stop -m
//! immediate`, then started again): while it is down every service answers 503 with
//! `Retry-After` (its readiness, commands, reads that need PostgreSQL); none exits or needs a
//! restart; they reconnect by themselves; no acknowledged command is lost; the projector resumes
//! where it was (no subscription's position ever goes back); the invariants hold.

use std::{collections::HashMap, sync::Arc, time::Duration};

use faults::{
    RealSystem, Service, bounded,
    load::{OrderLoad, Shop, Tally, assert_each_order_exactly_once, shared, wait_for},
};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{CASE_LIMIT, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crashed_and_restarted_under_load_loses_nothing() {
    bounded(CASE_LIMIT, "PostgreSQL restart", async {
        let system = RealSystem::builder().start().await;
        let shop = Shop::open(&system, &[40_000, 90_000], &[(120, 300), (700, 80)]).await;
        let pids: Vec<u32> = Service::ALL.iter().map(|s| system.pid(*s)).collect();
        let (tally, placed) = shared();
        let load = OrderLoad {
            clients: 8,
            orders_per_client: 30,
            cancel_every: 6,
            restock_every: 10,
        };
        let (stop_watching, watching) = watch::channel(false);
        let positions = watch_positions(&system, watching);

        let outage = async {
            wait_for(&placed, 40).await;
            system.postgres().crash().await;
            assert_every_service_answers_503(&system, &shop).await;
            // Still down: the clients keep retrying meanwhile.
            wait_for_requests_while_down(&tally).await;
            system.postgres().start_again().await;
            for service in Service::ALL {
                let ready = testkit::eventually(Duration::from_secs(30), || async {
                    system
                        .get(service, "/readyz")
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == StatusCode::OK)
                })
                .await;
                assert!(ready, "{service:?} did not become ready again by itself");
            }
        };
        tokio::join!(load.run(&system, &shop, &tally, &placed), outage);

        tally.assert_clean("the PostgreSQL outage");
        let figures = tally.snapshot();
        assert!(
            figures.statuses.get(&503).copied().unwrap_or(0) > 0,
            "no command met the outage: the fault did not hit the load"
        );
        assert_each_order_exactly_once(&system, &figures.orders).await;
        let state = system.under_test().assert_invariants().await;
        stop_watching.send_replace(true);
        let samples = positions.await.expect("the position watcher");
        for service in Service::ALL {
            assert!(system.is_running(service), "{service:?} exited");
        }
        let after: Vec<u32> = Service::ALL.iter().map(|s| system.pid(*s)).collect();
        assert_eq!(pids, after, "no service was restarted");
        report(
            "PostgreSQL crash and restart",
            &figures,
            &format!(
                ", events {}, outcomes {:?}, position samples {samples}",
                state.events, state.orders
            ),
        );
    })
    .await;
}

/// While PostgreSQL is down: every service's readiness, a command, and a read from a PostgreSQL
/// read model answer 503 with `Retry-After` (a read from Redis may still answer 200).
async fn assert_every_service_answers_503(system: &RealSystem, shop: &Shop) {
    let customer = shop.customers[0];
    let requests: Vec<(String, RequestBuilder)> = vec![
        (
            "command-api /readyz".into(),
            system.get(Service::CommandApi, "/readyz"),
        ),
        (
            "query-api /readyz".into(),
            system.get(Service::QueryApi, "/readyz"),
        ),
        (
            "projector /readyz".into(),
            system.get(Service::Projector, "/readyz"),
        ),
        (
            "POST /customers".into(),
            system
                .command("/customers")
                .json(&json!({ "name": "During the outage", "credit_limit_cents": 1 })),
        ),
        (
            format!("POST /products/{}/restock", shop.products[0]),
            system
                .command(&format!("/products/{}/restock", shop.products[0]))
                .json(&json!({ "quantity": 1 })),
        ),
        ("GET /orders".into(), system.query("/orders")),
        (
            "GET /products?q=Product".into(),
            system.query("/products?q=Product"),
        ),
        ("GET /projections".into(), system.query("/projections")),
        (
            format!("GET /orders?customer_id={customer}"),
            system.query(&format!("/orders?customer_id={customer}")),
        ),
    ];
    let answers =
        futures_util::future::join_all(requests.into_iter().map(|(what, request)| async move {
            let answer = request.timeout(Duration::from_secs(15)).send().await;
            (what, answer)
        }))
        .await;
    for (what, answer) in answers {
        let response = answer.unwrap_or_else(|error| {
            panic!("{what}: no answer while PostgreSQL is down: {error:?}")
        });
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let content_type = response.headers().get("content-type").cloned();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} while PostgreSQL is down: {body}"
        );
        assert!(retry_after.is_some(), "{what}: 503 without Retry-After");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}"
        );
    }
}

/// Waits until the clients have met the outage a few times (so it lasts under load).
async fn wait_for_requests_while_down(tally: &Tally) {
    let before = tally.snapshot().statuses.get(&503).copied().unwrap_or(0);
    let met = testkit::eventually(Duration::from_secs(30), || async {
        tally.snapshot().statuses.get(&503).copied().unwrap_or(0) >= before + 8
    })
    .await;
    assert!(met, "the clients did not meet the outage");
}

/// Samples every subscription's position from /projections until `stop`, asserting that none
/// ever goes back (the projector resumes where it was, never from an earlier place). Returns the
/// number of samples taken.
fn watch_positions(
    system: &RealSystem,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<usize> {
    let client = system.client.clone();
    let url = format!("{}/projections", system.query_base());
    let samples = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut seen: HashMap<String, i64> = HashMap::new();
        while !*stop.borrow_and_update() {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == StatusCode::OK
                && let Ok(body) = response.json::<Value>().await
            {
                for item in body["items"].as_array().into_iter().flatten() {
                    let name = format!("{}{}", item["name"], item["partition"]);
                    let position = item["position"].as_i64().unwrap_or_default();
                    let before = seen.insert(name.clone(), position).unwrap_or(0);
                    assert!(
                        position >= before,
                        "{name} went back from {before} to {position}"
                    );
                }
                samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
            }
        }
        samples.load(std::sync::atomic::Ordering::Relaxed)
    })
}
