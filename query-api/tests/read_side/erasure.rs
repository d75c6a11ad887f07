//! Erasure of personal data by crypto-shredding: after `DELETE /customers/{id}/personal-data`
//! the customer's name can be found nowhere, in PostgreSQL or Redis, while their credit and
//! orders stay; rebuilds give the same result.

use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::TestSystem;
use uuid::Uuid;

const ERASED: &str = "[erased]";

/// Every value under the test's Redis prefix, as text.
async fn redis_values(system: &TestSystem) -> Vec<String> {
    let mut redis = system.redis.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", system.keys.prefix()))
        .query_async(&mut redis)
        .await
        .expect("keys");
    assert!(!keys.is_empty(), "the read models are in Redis");
    let mut values = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("type");
        let value: Vec<String> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("get"),
            ],
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .expect("hgetall"),
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .expect("smembers"),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut redis)
                .await
                .expect("lrange"),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut redis)
                .await
                .expect("zrange"),
            other => panic!("{key} is a Redis {other}: teach this test to read it"),
        };
        values.push(format!("{key} {}", value.join(" ")));
    }
    values
}

/// The whole test database as `pg_dump` writes it (schema and data of every table).
fn pg_dump(connect: &PgConnectOptions) -> String {
    let url = testkit::database_url(connect, None);
    let output = std::process::Command::new("pg_dump")
        .arg("--no-owner")
        .arg(&url)
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 dump")
}

#[sqlx::test(migrations = false)]
async fn an_erased_name_is_nowhere_while_credit_and_orders_stay(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    drop(pool_options);
    // Snapshots every 2 events, so the customer's state (with the name) is snapshotted too.
    let system = TestSystem::builder()
        .snapshot_every(2)
        .query_api_args(["--feed-heartbeat-ms", "200"])
        .start(connect.clone())
        .await;
    let name = format!("Zelda Erasable {}", Uuid::new_v4().simple());
    // With an Idempotency-Key: its stored request holds the name too.
    let registered = system
        .command("/customers")
        .header("Idempotency-Key", "register-zelda")
        .json(&json!({"name": name, "credit_limit_cents": 10_000}))
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: serde_json::Value = registered.json().await.expect("json");
    let customer: Uuid = registered["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let registered_at = registered["position"].as_i64().expect("position");
    let (tea, _) = system.add_product("TEA", "Tea", 150, 10).await;
    let (order, _) = system.place_order(customer, &[(tea, 2)]).await;
    assert_eq!(system.settled_order(order).await["status"], "approved");
    assert_eq!(system.ship(order).await.status(), StatusCode::OK);
    system.wait_until_caught_up().await;

    // Before: readers see the name, but the log holds it encrypted only.
    let (_, shown) = system.read(&format!("/customers/{customer}")).await;
    assert_eq!(shown["name"], name.as_str());
    let in_clear: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE data::text LIKE '%' || $1 || '%'")
            .bind(&name)
            .fetch_one(&system.pool)
            .await
            .expect("count");
    assert_eq!(in_clear, 0, "the log holds personal data encrypted");
    let snapshots: i64 = sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE stream_id = $1")
        .bind(customer)
        .fetch_one(&system.pool)
        .await
        .expect("snapshots");
    assert_eq!(snapshots, 1, "the customer was snapshotted");

    // Erasure needs the token, names an existing customer, and is idempotent.
    let unauthenticated = system
        .client
        .delete(format!(
            "{}/customers/{customer}/personal-data",
            system.command_base
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let forget = |id: Uuid| {
        system
            .client
            .delete(format!(
                "{}/customers/{id}/personal-data",
                system.command_base
            ))
            .bearer_auth(testkit::TOKEN)
            .send()
    };
    assert_eq!(
        forget(Uuid::new_v4()).await.expect("sent").status(),
        StatusCode::NOT_FOUND
    );
    let first = forget(customer).await.expect("sent");
    assert_eq!(first.status(), StatusCode::OK);
    let first: serde_json::Value = first.json().await.expect("json");
    let forgotten_at = first["position"].as_i64().expect("position");
    let events = system.event_count().await;
    let again = forget(customer).await.expect("sent");
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["version"], first["version"]);
    assert_eq!(
        system.event_count().await,
        events,
        "erasing again appends nothing"
    );

    // After: erased everywhere a reader looks; credit, stock and totals intact.
    let shown = system
        .read_at(&format!("/customers/{customer}"), forgotten_at)
        .await;
    assert_eq!(shown["name"], ERASED);
    assert_eq!(
        (
            shown["credit_reserved_cents"].clone(),
            shown["credit_available_cents"].clone()
        ),
        (json!(300), json!(9_700))
    );
    let (_, then) = system
        .read(&format!(
            "/customers/{customer}?as_of={registered_at}&min_position={forgotten_at}"
        ))
        .await;
    assert_eq!(then["name"], ERASED, "time travel shows it erased too");
    assert_eq!(then["credit_limit_cents"], 10_000);
    let (_, shipped) = system.read(&format!("/orders/{order}")).await;
    assert_eq!(
        (shipped["status"].clone(), shipped["total_cents"].clone()),
        (json!("shipped"), json!(300))
    );
    let (_, product) = system.read(&format!("/products/{tea}")).await;
    assert_eq!(product["stock_on_hand"], 8);
    let (_, dashboard) = system.read("/dashboard/summary").await;
    assert!(!dashboard.to_string().contains(&name));
    // The live feed, read from before the registration, shows it erased.
    let mut feed = crate::feed::FeedReader::open(
        &system,
        &format!(
            "/feed?after={}&min_position={forgotten_at}",
            registered_at - 1
        ),
        None,
    )
    .await;
    let change = feed.next_change().await.expect("the registration");
    assert_eq!(change.event.as_deref(), Some("CustomerRegistered"));
    assert_eq!(change.data.expect("data")["data"]["name"], ERASED);
    drop(feed);

    // A rebuild of every read model after the erasure gives the same state.
    system.wait_until_caught_up().await;
    let before = system.snapshot().await;
    system
        .rebuilder()
        .rebuild(&read_models::names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
    let after = system.snapshot().await;
    assert_eq!(after.first_difference(&before), None);
    assert_eq!(after, before);

    // The clear name is nowhere: not in any table of the database, not in Redis.
    let dump = pg_dump(&connect);
    assert!(
        dump.contains("personal_data_keys"),
        "the dump is the whole database"
    );
    assert!(!dump.contains(&name), "the name is still in the database");
    for value in redis_values(&system).await {
        assert!(
            !value.contains(&name),
            "the name is still in Redis: {value}"
        );
    }
    system.stop().await;
}

#[sqlx::test(migrations = false)]
async fn a_legacy_clear_name_reads_as_erased_once_forgotten(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = TestSystem::start(pool_options, connect).await;
    // An event written before encryption existed: the name in clear text.
    let customer = Uuid::new_v4();
    let (position,): (i64,) = sqlx::query_as(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_type, schema_version, data, metadata)
         VALUES ($1, 'customer', 1, 'CustomerRegistered', 2, $2, '{}') RETURNING position",
    )
    .bind(customer)
    .bind(json!({"name": "Legacy Lou", "credit_limit_cents": 500}))
    .fetch_one(&system.pool)
    .await
    .expect("legacy event");
    let shown = system
        .read_at(&format!("/customers/{customer}"), position)
        .await;
    assert_eq!(shown["name"], "Legacy Lou", "legacy events stay readable");

    let forgotten = system
        .client
        .delete(format!(
            "{}/customers/{customer}/personal-data",
            system.command_base
        ))
        .bearer_auth(testkit::TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(forgotten.status(), StatusCode::OK);
    let at: i64 = forgotten.json::<serde_json::Value>().await.expect("json")["position"]
        .as_i64()
        .expect("position");
    let shown = system.read_at(&format!("/customers/{customer}"), at).await;
    assert_eq!(shown["name"], ERASED);
    system.wait_until_caught_up().await;
    let before = system.snapshot().await;
    system
        .rebuilder()
        .rebuild(&read_models::names::READ_MODELS.map(String::from))
        .await
        .expect("rebuilt");
    assert_eq!(system.snapshot().await, before);
    // The read models no longer hold it; only the immutable log does (documented).
    let in_read_models: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM read_model.event_feed WHERE data::text LIKE '%Legacy Lou%')
              + (SELECT count(*) FROM read_model.document_versions WHERE document::text LIKE '%Legacy Lou%')",
    )
    .fetch_one(&system.pool)
    .await
    .expect("count");
    assert_eq!(in_read_models, 0);
    system.stop().await;
}
