use shared::{
    domain::{
        Aggregate, Quantity,
        customer::Customer,
        product::{Product, ProductCommand},
    },
    event_store::{CommandOptions, execute_in_tx, load_aggregate},
};
use sqlx::PgPool;
use uuid::Uuid;

async fn product_with_history(pool: &PgPool, snapshot_every: i64) -> Uuid {
    let id = Uuid::new_v4();
    let options = CommandOptions {
        snapshot_every,
        ..CommandOptions::default()
    };
    let mut tx = pool.begin().await.expect("begin");
    let sku = shared::domain::Sku::parse("sku", "SNAP").expect("sku");
    let name = shared::domain::Name::parse("name", "Snap").expect("name");
    let price = shared::domain::Cents::parse("price", 5).expect("price");
    execute_in_tx::<Product, _>(&mut tx, id, &options, |p| {
        p.decide(ProductCommand::Add {
            sku: sku.clone(),
            name: name.clone(),
            price,
            stock: 10,
        })
    })
    .await
    .expect("added");
    for round in 0..25 {
        let command = if round % 2 == 0 {
            ProductCommand::Restock {
                quantity: Quantity::parse("q", 3).expect("qty"),
            }
        } else {
            ProductCommand::ReserveStock {
                order_id: Uuid::new_v4(),
                quantity: Quantity::parse("q", 2).expect("qty"),
            }
        };
        execute_in_tx::<Product, _>(&mut tx, id, &options, |p| p.decide(command.clone()))
            .await
            .expect("decided");
    }
    tx.commit().await.expect("commit");
    id
}

#[sqlx::test(migrations = "../migrations")]
async fn loading_with_or_without_a_snapshot_gives_the_same_state(pool: PgPool) {
    let id = product_with_history(&pool, 10).await;
    let snapshot_version: i64 =
        sqlx::query_scalar("SELECT stream_version FROM snapshots WHERE stream_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("a snapshot");
    assert_eq!(snapshot_version, 20);
    let mut conn = pool.acquire().await.expect("conn");
    let with = load_aggregate::<Product>(&mut conn, id, true)
        .await
        .expect("with snapshot");
    let without = load_aggregate::<Product>(&mut conn, id, false)
        .await
        .expect("without snapshot");
    assert_eq!(with.version, 26);
    assert_eq!(
        (with.version, &with.state),
        (without.version, &without.state)
    );
    assert_eq!(with.state.stock_on_hand, 10 + 13 * 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_snapshot_of_an_older_schema_or_shape_is_ignored_not_misread(pool: PgPool) {
    let id = product_with_history(&pool, 10).await;
    let mut conn = pool.acquire().await.expect("conn");
    let truth = load_aggregate::<Product>(&mut conn, id, false)
        .await
        .expect("from events");
    // An older schema version: its state must not be used even though it decodes.
    sqlx::query("UPDATE snapshots SET schema_version = 0, state = jsonb_set(state, '{stock_on_hand}', '999999') WHERE stream_id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("aged");
    assert_eq!(
        load_aggregate::<Product>(&mut conn, id, true)
            .await
            .expect("loaded")
            .state,
        truth.state
    );
    // The current schema version but a shape that no longer decodes.
    sqlx::query("UPDATE snapshots SET schema_version = $2, state = '{\"unexpected\": true}' WHERE stream_id = $1")
        .bind(id)
        .bind(<Product as Aggregate>::SNAPSHOT_SCHEMA)
        .execute(&pool)
        .await
        .expect("garbled");
    assert_eq!(
        load_aggregate::<Product>(&mut conn, id, true)
            .await
            .expect("loaded")
            .state,
        truth.state
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_v1_customer_event_is_upcast_when_loaded(pool: PgPool) {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO events (stream_id, stream_type, stream_version, event_type, schema_version, data)
         VALUES ($1, 'customer', 1, 'CustomerRegistered', 1, '{\"name\": \"Old Timer\", \"credit_limit\": 42}')",
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("v1 event stored as it was written years ago");
    let mut conn = pool.acquire().await.expect("conn");
    let customer = load_aggregate::<Customer>(&mut conn, id, true)
        .await
        .expect("loaded")
        .state;
    assert!(customer.exists());
    assert_eq!(
        (customer.name.as_str(), customer.credit_limit_cents),
        ("Old Timer", 4_200)
    );
}
