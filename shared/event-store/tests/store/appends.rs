use domain::{
    Aggregate, Quantity,
    product::{Product, ProductCommand, ProductEvent},
};
use event_store::{
    CommandError, CommandOptions, Metadata, StoreError, append_to_stream, execute_in_tx,
    run_command,
};
use sqlx::PgPool;
use uuid::Uuid;

fn added() -> ProductEvent {
    ProductEvent::ProductAdded {
        sku: "SKU".into(),
        name: "Tea".into(),
        price_cents: 100,
        stock: 0,
    }
}

async fn create_product(pool: &PgPool) -> Uuid {
    let id = Uuid::new_v4();
    let mut conn = pool.acquire().await.expect("conn");
    append_to_stream(
        &mut conn,
        id,
        domain::StreamType::Product,
        0,
        &[added()],
        &Metadata::default(),
    )
    .await
    .expect("appended");
    id
}

#[sqlx::test(migrations = "../../migrations")]
async fn many_concurrent_appends_to_one_stream_land_with_dense_versions(pool: PgPool) {
    let id = create_product(&pool).await;
    let restock = |pool: PgPool| async move {
        run_command::<Product, _, _>(
            &pool,
            id,
            &CommandOptions::default(),
            |product| {
                product.decide(ProductCommand::Restock {
                    quantity: Quantity::parse("q", 1).expect("qty"),
                })
            },
            |_| event_store::StoredResponse {
                status: 200,
                body: serde_json::Value::Null,
                location: None,
            },
        )
        .await
    };
    let tasks: Vec<_> = (0..40)
        .map(|_| tokio::spawn(restock(pool.clone())))
        .collect();
    let mut landed = 0;
    for task in tasks {
        match task.await.expect("joined") {
            Ok(_) => landed += 1,
            // A writer that keeps losing gives up with a conflict; nothing is half-written.
            Err(event_store::CommandError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(landed >= 20, "only {landed} of 40 writers landed");
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .expect("versions");
    assert_eq!(
        versions,
        (1..=1 + landed).collect::<Vec<_>>(),
        "versions follow position order, without holes"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_stale_expected_version_is_a_conflict_and_writes_nothing(pool: PgPool) {
    let id = create_product(&pool).await;
    let mut conn = pool.acquire().await.expect("conn");
    let restocked = [
        ProductEvent::ProductRestocked { quantity: 1 },
        ProductEvent::ProductRestocked { quantity: 2 },
    ];
    let stale = append_to_stream(
        &mut conn,
        id,
        domain::StreamType::Product,
        0,
        &restocked,
        &Metadata::default(),
    )
    .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 1, "nothing half-written");
}

#[sqlx::test(migrations = "../../migrations")]
async fn positions_grow_within_and_across_transactions(pool: PgPool) {
    let id = create_product(&pool).await;
    let mut tx = pool.begin().await.expect("begin");
    let events = [
        ProductEvent::ProductRestocked { quantity: 1 },
        ProductEvent::ProductRestocked { quantity: 2 },
    ];
    append_to_stream(
        &mut tx,
        id,
        domain::StreamType::Product,
        1,
        &events[..1],
        &Metadata::default(),
    )
    .await
    .expect("first");
    append_to_stream(
        &mut tx,
        id,
        domain::StreamType::Product,
        2,
        &events[1..],
        &Metadata::default(),
    )
    .await
    .expect("second");
    tx.commit().await.expect("commit");
    let positions: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM events ORDER BY stream_version")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{positions:?}"
    );
    assert_eq!(
        positions[2] - positions[1],
        1,
        "events of one transaction are adjacent"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_database_refuses_to_rewrite_history(pool: PgPool) {
    create_product(&pool).await;
    for statement in [
        "UPDATE events SET data = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(&pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
    let position_is_not_ours = sqlx::query(
        "INSERT INTO events (position, stream_id, stream_type, stream_version, event_type, schema_version, data, transaction_id)
         VALUES (1, gen_random_uuid(), 'product', 1, 'ProductAdded', 1, '{}', '1')",
    )
    .execute(&pool)
    .await;
    let chosen: i64 = sqlx::query_scalar("SELECT min(position) FROM events")
        .fetch_one(&pool)
        .await
        .expect("min");
    assert!(
        position_is_not_ours.is_ok() && chosen > 1,
        "the trigger assigns positions, whatever the writer says"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn domain_refusals_are_returned_and_nothing_is_appended(pool: PgPool) {
    let mut tx = pool.begin().await.expect("begin");
    let result = execute_in_tx::<Product, _>(
        &mut tx,
        Uuid::new_v4(),
        &CommandOptions::default(),
        |product| {
            product.decide(ProductCommand::Restock {
                quantity: Quantity::parse("q", 1).expect("qty"),
            })
        },
    )
    .await;
    assert!(
        matches!(result, Err(CommandError::Rejected(_))),
        "{result:?}"
    );
}
