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
