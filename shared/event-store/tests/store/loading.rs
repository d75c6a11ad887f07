use domain::{
    Aggregate, DomainError, Quantity, StreamType,
    customer::{Customer, CustomerCommand},
    product::{Product, ProductCommand},
};
use event_store::{
    CommandError, CommandOptions, StoreError, StreamRequest, execute_in_tx, load_aggregate,
    load_streams,
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
    let sku = domain::Sku::parse("sku", "SNAP").expect("sku");
    let name = domain::Name::parse("name", "Snap").expect("name");
    let price = domain::Cents::parse("price", 5).expect("price");
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

#[sqlx::test(migrations = "../../migrations")]
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

#[sqlx::test(migrations = "../../migrations")]
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

#[sqlx::test(migrations = "../../migrations")]
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

#[sqlx::test(migrations = "../../migrations")]
async fn many_streams_of_several_kinds_load_in_one_query_each_as_its_own(pool: PgPool) {
    let products = [
        product_with_history(&pool, 10).await,
        product_with_history(&pool, 0).await,
    ];
    let mut conn = pool.acquire().await.expect("conn");
    let missing = Uuid::new_v4();
    let requests = [
        StreamRequest::of::<Product>(products[0], true),
        StreamRequest::of::<Customer>(missing, true),
        StreamRequest::of::<Product>(products[1], true),
        // The same stream asked for twice, once as another kind.
        StreamRequest::of::<Customer>(products[0], true),
    ];
    let mut streams = load_streams(&mut conn, &requests)
        .await
        .expect("loaded")
        .into_iter();
    let mut next = || streams.next().expect("one answer per request");
    let first = next().fold::<Product>(&mut conn).await.expect("first");
    let alone = load_aggregate::<Product>(&mut conn, products[0], false)
        .await
        .expect("alone");
    assert_eq!((first.version, first.state), (26, alone.state));
    let nobody = next().fold::<Customer>(&mut conn).await.expect("empty");
    assert_eq!((nobody.version, nobody.state.exists()), (0, false));
    let second = next().fold::<Product>(&mut conn).await.expect("second");
    assert_eq!(second.version, 26);
    match next().fold::<Customer>(&mut conn).await {
        Err(StoreError::OtherStreamType {
            stream_id,
            expected: StreamType::Customer,
            found: StreamType::Product,
        }) => assert_eq!(stream_id, products[0]),
        other => panic!("a product loaded as a customer must be refused: {other:?}"),
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_command_on_an_id_of_another_kind_is_not_found_for_its_own_kind(pool: PgPool) {
    let product = product_with_history(&pool, 0).await;
    let mut tx = pool.begin().await.expect("begin");
    let refused =
        execute_in_tx::<Customer, _>(&mut tx, product, &CommandOptions::default(), |customer| {
            customer.decide(CustomerCommand::ReleaseCredit {
                order_id: Uuid::new_v4(),
            })
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(DomainError::NotFound(
                StreamType::Customer
            )))
        ),
        "{refused:?}"
    );
}
