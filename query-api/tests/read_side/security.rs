use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The query-api's sessions, whatever login they start from, can read the read models and
/// nothing else: not the event table, not the projector's tables, and they cannot write.
#[sqlx::test]
async fn the_query_role_reads_read_models_only(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let admin = testkit::migrated_pool(pool_options, &connect).await;
    let reader = query_api::startup::connect_reader_with(connect, 2)
        .await
        .expect("reader pool");

    sqlx::query("SELECT count(*) FROM read_model.orders")
        .execute(&reader)
        .await
        .expect("may read the read models");
    sqlx::query("SELECT head_position FROM read_model.event_log_head")
        .execute(&reader)
        .await
        .expect("may see the head");
    for dashboard_view in ["read_model.event_feed", "read_model.dead_letters"] {
        sqlx::query(&format!("SELECT count(*) FROM {dashboard_view}"))
            .execute(&reader)
            .await
            .expect("may read what the dashboard shows");
    }
    for forbidden in [
        "SELECT * FROM public.events",
        "SELECT * FROM projection_store.orders_g1",
        "SELECT * FROM projector.checkpoints",
        "SELECT * FROM projector.dead_letters",
        "SELECT * FROM projection_store.event_feed_g1",
        "INSERT INTO read_model.orders (id, customer_id, status, placed_position, last_position, doc)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'pending', 1, 1, '{}')",
        "DELETE FROM read_model.products",
        "INSERT INTO public.events (stream_id, stream_type, stream_version, event_type, schema_version, data)
         VALUES (gen_random_uuid(), 'order', 1, 'OrderPlaced', 1, '{}')",
        "CREATE TABLE read_model.mine (x int)",
    ] {
        let refused = sqlx::raw_sql(forbidden).execute(&reader).await;
        assert!(refused.is_err(), "the query role could run: {forbidden}");
    }
    reader.close().await;
    admin.close().await;
}

/// With a login that is only a member of the reader role (what scripts/run sets up as
/// QUERY_DATABASE_URL), even a session that drops the role cannot reach the events.
#[sqlx::test]
async fn a_reader_only_login_cannot_escape_the_role(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let admin = testkit::migrated_pool(pool_options, &connect).await;
    sqlx::raw_sql(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cqrs_query_login') THEN
             CREATE ROLE cqrs_query_login LOGIN IN ROLE cqrs_query_reader;
           END IF;
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
         END $$",
    )
    .execute(&admin)
    .await
    .expect("login role");
    let reader = query_api::startup::connect_reader_with(connect.username("cqrs_query_login"), 1)
        .await
        .expect("reader");
    sqlx::query("SELECT count(*) FROM read_model.orders")
        .execute(&reader)
        .await
        .expect("may read the read models");
    let escaped = sqlx::raw_sql("RESET ROLE; SELECT * FROM public.events")
        .execute(&reader)
        .await;
    assert!(escaped.is_err(), "RESET ROLE must not reach the events");
    reader.close().await;
    admin.close().await;
}

/// Every answer, success or error, JSON or Swagger UI, carries the usual security headers; the
/// API's own answers allow a browser nothing, Swagger UI's page only its own origin.
#[sqlx::test(migrations = false)]
async fn every_answer_carries_the_security_headers(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let system = testkit::TestSystem::start(pool_options, connect).await;
    let missing = format!("/customers/{}", uuid::Uuid::new_v4());
    for (path, policy) in [
        ("/healthz", "default-src 'none'"),
        (missing.as_str(), "default-src 'none'"),
        ("/orders?limit=0", "default-src 'none'"),
        ("/nowhere", "default-src 'none'"),
        ("/api-docs/openapi.json", "default-src 'none'"),
        ("/swagger-ui/", "default-src 'self'"),
    ] {
        let response = system.query(path).send().await.expect("sent");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().expect("ASCII");
        assert!(csp.starts_with(policy), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    system.stop().await;
}

/// With no CORS_ALLOWED_ORIGINS, no page of another origin may read an answer.
#[sqlx::test(migrations = false)]
async fn cors_is_closed_by_default(pool_options: PgPoolOptions, connect: PgConnectOptions) {
    let system = testkit::TestSystem::start(pool_options, connect).await;
    let read = system
        .query("/projections")
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("sent");
    assert!(!read.headers().contains_key("access-control-allow-origin"));
    let preflight = system
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/projections", system.query_base),
        )
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("sent");
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    system.stop().await;
}

/// CORS_ALLOWED_ORIGINS opens the API to exactly the origins it names.
#[sqlx::test(migrations = false)]
async fn cors_opens_to_the_configured_origins_only(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    drop(pool_options);
    let system = testkit::TestSystem::builder()
        .api_args([
            "--cors-allowed-origins",
            "https://shop.example, http://localhost:3000",
        ])
        .start(connect)
        .await;
    let preflight = |origin: &'static str| {
        system
            .client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/customers", system.command_base),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.expect("sent");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ASCII");
    assert!(methods.contains("POST"), "{methods}");
    // DELETE /customers/{id}/personal-data, from a browser too.
    assert!(methods.contains("DELETE"), "{methods}");
    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let (customer, position) = system.register_customer(5).await;
    let read = system
        .query(&format!("/customers/{customer}?min_position={position}"))
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), reqwest::StatusCode::OK);
    assert_eq!(
        read.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let exposed = read.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ASCII")
        .to_ascii_lowercase();
    assert!(exposed.contains("x-position"), "{exposed}");
    system.stop().await;
}
