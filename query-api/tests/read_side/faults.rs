//! Faults the read side heals from by itself: Redis losing its data, Redis going away, the
//! projector dying mid-batch, and an append transaction that commits after later ones.

use std::{process::Stdio, time::Duration};

use clap::Parser;
use domain::{StreamType, product::ProductEvent};
use event_store::Batch;
use event_store::Metadata;
use reqwest::StatusCode;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::{Subscription, TestSystem, eventually};
use uuid::Uuid;

#[sqlx::test(migrations = false)]
async fn deleting_every_redis_key_heals_itself_within_seconds(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, position) = system.register_customer(700).await;
    system
        .read_at(&format!("/customers/{customer}"), position)
        .await;

    system.wipe_redis().await;

    let healed = eventually(Duration::from_secs(10), || async {
        system.read(&format!("/customers/{customer}")).await.0 == StatusCode::OK
    })
    .await;
    assert!(healed, "the customer did not come back");
    let body = system
        .read_at(&format!("/customers/{customer}"), position)
        .await;
    assert_eq!(body["credit_limit_cents"], 700);
    system.stop().await;
}

/// While the projector replays the log into a fresh generation (Redis lost its data), a lookup
/// of a document not replayed yet cannot tell whether it exists: 503, never 404.
#[sqlx::test(migrations = false)]
async fn while_redis_is_replayed_a_missing_document_is_503_not_404(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (early, early_position) = system.register_customer(100).await;
    let (late, _) = system.register_customer(200).await;
    system.wait_until_caught_up().await;
    system.kill_projector().await;
    system.wipe_redis().await;

    // The projector's lookups subscription, driven by hand: a fresh generation, and the log
    // replayed only up to the first customer.
    let (lookups, lease) = system.lookups_subscription().await;
    assert_eq!(lookups.position(&lease).await.expect("position"), 0);
    let events = {
        let mut conn = system.pool.acquire().await.expect("conn");
        event_store::read_after(&mut conn, 0, 1_000)
            .await
            .expect("events")
    };
    let (replayed, rest): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|event| event.position <= early_position);
    let replayed = Batch {
        events: replayed,
        read_to: early_position,
    };
    assert!(lookups.apply(&lease, 0, &replayed).await.expect("applied"));

    assert_eq!(
        system.read(&format!("/customers/{early}")).await.0,
        StatusCode::OK
    );
    for id in [late, Uuid::new_v4()] {
        let response = system
            .query(&format!("/customers/{id}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{id}");
        assert!(response.headers().contains_key("retry-after"));
    }

    // Once the replay has passed the log's head as of the loss, a missing document is missing.
    let rest = Batch {
        read_to: rest.last().map_or(early_position, |event| event.position),
        events: rest,
    };
    assert!(
        lookups
            .apply(&lease, early_position, &rest)
            .await
            .expect("applied")
    );
    assert_eq!(
        system.read(&format!("/customers/{late}")).await.0,
        StatusCode::OK
    );
    let (status, _) = system.read(&format!("/customers/{}", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    system.stop().await;
}

/// Redis loses its data between the projector reading its checkpoint and writing the batch that
/// follows it: the batch must not move the fresh generation's checkpoint past the events it has
/// not replayed yet, or their documents would be missing for good.
#[sqlx::test(migrations = false)]
async fn a_redis_loss_in_the_middle_of_a_batch_leaves_no_gap(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (before, _) = system.register_customer(100).await;
    system.wait_until_caught_up().await;
    system.kill_projector().await;

    let (lookups, lease) = system.lookups_subscription().await;
    let from = lookups.position(&lease).await.expect("position");
    let (after, _) = system.register_customer(200).await;
    let batch = {
        let mut conn = system.pool.acquire().await.expect("conn");
        event_store::read_after(&mut conn, from, 1_000)
            .await
            .expect("events")
    };
    system.wipe_redis().await;
    // Whatever it answers, it must not leave a hole below its checkpoint.
    let batch = Batch {
        read_to: batch.last().map_or(from, |event| event.position),
        events: batch,
    };
    let _ = lookups.apply(&lease, from, &batch).await.expect("applied");
    event_store::checkpoints::release(&system.pool, &lease)
        .await
        .expect("released");

    system.start_projector().await;
    system.wait_until_caught_up().await;
    for id in [before, after] {
        let (status, body) = system.read(&format!("/customers/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
    }
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn an_append_committing_after_later_ones_is_projected_not_skipped(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (product, added) = system.add_product("SLOW", "Slow", 100, 1).await;
    system.read_at(&format!("/products/{product}"), added).await;

    // Hold a restock open: it has its position, but has not committed.
    let mut slow = system.pool.begin().await.expect("begin");
    let held = event_store::append_to_stream(
        &mut slow,
        product,
        StreamType::Product,
        1,
        &[ProductEvent::ProductRestocked { quantity: 41 }],
        &Metadata::default(),
    )
    .await
    .expect("appended")
    .last_position;
    // Later commands commit while it is open. For a second (kept short: an open transaction
    // holds back the safe horizon of every database in the cluster, other tests' too), nothing
    // past the open transaction may be applied.
    let (customer, later) = system.register_customer(5).await;
    assert!(later > held);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        let (status, _) = system.read(&format!("/customers/{customer}")).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a later event was applied first"
        );
        let (_, projections) = system.read("/projections").await;
        for item in projections["items"].as_array().expect("items") {
            assert!(
                item["position"].as_i64().expect("position") < held,
                "{projections}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    slow.commit().await.expect("commit");
    let body = system.read_at(&format!("/products/{product}"), later).await;
    assert_eq!(body["stock_on_hand"], 42, "the late commit was projected");
    system
        .read_at(&format!("/customers/{customer}"), later)
        .await;
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_projector_killed_mid_batch_converges_to_a_rebuild(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(1_000_000).await;
    let mut products = Vec::new();
    for sku in ["A", "B", "C"] {
        products.push(system.add_product(sku, sku, 10, 1_000).await.0);
    }
    for round in 0..8 {
        let writes = async {
            for index in 0..15 {
                let product = products[index % products.len()];
                system.place_order(customer, &[(product, 1)]).await;
                system
                    .send(
                        &format!("/products/{product}/restock"),
                        serde_json::json!({"quantity": 1}),
                    )
                    .await;
            }
        };
        let crash = async {
            tokio::time::sleep(Duration::from_millis(20 + 15 * round)).await;
        };
        tokio::join!(writes, crash);
        system.kill_projector().await;
        system.start_projector().await;
    }
    system.wait_until_caught_up().await;
    let incremental = system.snapshot().await;
    assert_eq!(incremental.orders.len(), 8 * 15);
    system
        .rebuilder()
        .rebuild(&read_models::names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
    let rebuilt = system.snapshot().await;
    assert_eq!(incremental, rebuilt);
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn replaying_every_event_again_changes_nothing(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    let (customer, _) = system.register_customer(1_000).await;
    let (tea, _) = system.add_product("TEA", "Tea", 100, 10).await;
    for _ in 0..5 {
        system.place_order(customer, &[(tea, 1)]).await;
    }
    system.wait_until_caught_up().await;
    let once = system.snapshot().await;

    // Forget every checkpoint, as if nothing had been applied: every event is applied again.
    system.kill_projector().await;
    sqlx::query("UPDATE projector.checkpoints SET position = 0")
        .execute(&system.pool)
        .await
        .expect("reset");
    let mut redis = system.redis.clone();
    let live: i64 = redis::cmd("GET")
        .arg(system.keys.live_generation())
        .query_async(&mut redis)
        .await
        .expect("live");
    let _: () = redis::cmd("SET")
        .arg(system.keys.checkpoint(live))
        .arg(0)
        .query_async(&mut redis)
        .await
        .expect("reset");
    system.start_projector().await;
    system.wait_until_caught_up().await;
    assert_eq!(system.snapshot().await, once);
    system.stop().await;
}

/// A Redis of the test's own, so that stopping it disturbs nothing else.
struct PrivateRedis {
    child: std::process::Child,
    url: String,
}

impl PrivateRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        Some(Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[sqlx::test(migrations = false)]
async fn redis_down_is_503_never_500(pool_options: PgPoolOptions, connect: PgConnectOptions) {
    drop(pool_options);
    let mut private =
        PrivateRedis::start().expect("redis-server is installed (scripts/test installs it)");
    let answers = eventually(Duration::from_secs(10), || async {
        read_models::connect(&private.url).await.is_ok()
    })
    .await;
    assert!(answers, "the private Redis never answered");
    let settings = query_api::Settings::try_parse_from([
        "query-api",
        "--database-url",
        &testkit::database_url(&connect, None),
        "--redis-url",
        &private.url,
        "--redis-key-prefix",
        "down:",
        "--addr",
        "127.0.0.1:0",
        "--consistency-timeout-ms",
        "1000",
    ])
    .expect("settings");
    let app = query_api::Application::build(settings)
        .await
        .expect("query-api");
    let base = format!("http://{}", app.address());
    let server = app.server_handle();
    let serving = tokio::spawn(app.run_until_stopped());

    let _ = private.child.kill();
    let _ = private.child.wait();
    let client = reqwest::Client::new();
    for path in [
        format!("/customers/{}", Uuid::new_v4()),
        "/readyz".to_owned(),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    server.stop(true).await;
    let _ = serving.await;
}
