//! Partitioned subscriptions on PostgreSQL: a partition's events are exactly its keys' events,
//! the partitions together are the whole log, and a lease is a fence: once another process has
//! claimed a partition, the old owner's commit is refused.

use std::{collections::HashSet, time::Duration};

use domain::{StreamType, order::OrderEvent, product::ProductEvent};
use event_store::{
    EventSelection, Metadata, PartitionFilter, PartitionKey, append_to_stream, checkpoints,
    read_batch,
};
use sqlx::PgPool;
use uuid::Uuid;

async fn append_products(pool: &PgPool, count: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let id = Uuid::now_v7();
        let mut conn = pool.acquire().await.expect("conn");
        append_to_stream(
            &mut conn,
            id,
            StreamType::Product,
            0,
            &[ProductEvent::ProductRestocked { quantity: 1 }],
            &Metadata::default(),
        )
        .await
        .expect("appended");
        ids.push(id);
    }
    ids
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_partitions_of_a_selection_split_the_log_exactly(pool: PgPool) {
    let ids = append_products(&pool, 40).await;
    let mut conn = pool.acquire().await.expect("conn");
    let everything = read_all_once_visible(&pool, &EventSelection::default(), 40).await;
    let head = everything.events.last().expect("events").position;
    assert_eq!(everything.read_to, head);
    let mut seen = HashSet::new();
    for index in 0..3 {
        let selection = EventSelection {
            stream_types: vec![StreamType::Product],
            partition: Some(PartitionFilter {
                key: PartitionKey::Stream,
                count: 3,
                index,
            }),
            ..EventSelection::default()
        };
        let batch = read_batch(&mut conn, 0, 1_000, &selection)
            .await
            .expect("partition");
        // Each partition passes the whole log, its own events or not.
        assert_eq!(batch.read_to, head);
        for event in &batch.events {
            assert_eq!(PartitionKey::partition_of(event.stream_id, 3), index);
            assert!(seen.insert(event.stream_id), "an event in two partitions");
        }
    }
    assert_eq!(seen, ids.into_iter().collect());
    // A selection of other streams reads nothing, but still passes the log.
    let orders = EventSelection {
        stream_types: vec![StreamType::Order],
        ..EventSelection::default()
    };
    let none = read_batch(&mut conn, 0, 1_000, &orders)
        .await
        .expect("none");
    assert!(none.events.is_empty());
    assert_eq!(none.read_to, head);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_orders_events_on_every_stream_share_its_partition(pool: PgPool) {
    let order = Uuid::now_v7();
    let product = Uuid::now_v7();
    let mut conn = pool.acquire().await.expect("conn");
    append_to_stream(
        &mut conn,
        order,
        StreamType::Order,
        0,
        &[OrderEvent::OrderApproved {}],
        &Metadata::default(),
    )
    .await
    .expect("order event");
    append_to_stream(
        &mut conn,
        product,
        StreamType::Product,
        0,
        &[ProductEvent::StockReserved {
            order_id: order,
            quantity: 1,
        }],
        &Metadata::default(),
    )
    .await
    .expect("product event");
    let index = PartitionKey::partition_of(order, 4);
    let selection = EventSelection {
        stream_types: Vec::new(),
        partition: Some(PartitionFilter {
            key: PartitionKey::Order,
            count: 4,
            index,
        }),
        ..EventSelection::default()
    };
    drop(conn);
    let batch = read_all_once_visible(&pool, &selection, 2).await;
    let streams: Vec<Uuid> = batch.events.iter().map(|e| e.stream_id).collect();
    assert_eq!(streams, [order, product]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_taken_over_lease_cannot_commit_and_a_claim_waits_for_an_apply(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("conn");
    let layout = checkpoints::ensure(&mut conn, "test_model", 2, 0)
        .await
        .expect("layout");
    assert_eq!(layout.partitions, 2);
    let ttl = Duration::from_secs(60);
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let held = checkpoints::claim(&pool, "test_model", 0, first, ttl)
        .await
        .expect("claim")
        .expect("free");
    assert!(
        checkpoints::claim(&pool, "test_model", 0, second, ttl)
            .await
            .expect("claim")
            .is_none(),
        "a held lease is not given away"
    );
    // Renewed with no time left: as if the owner stalled and stopped renewing.
    let old = checkpoints::claim(&pool, "test_model", 0, first, Duration::ZERO)
        .await
        .expect("renew")
        .expect("still its own");
    assert_eq!(old.fence, held.fence, "renewing keeps the fence");

    // The old owner is mid-apply (its advance not committed yet) when another process claims
    // the expired lease: the claim waits for the apply to end.
    let mut apply = pool.begin().await.expect("apply");
    assert!(
        checkpoints::advance_fenced(&mut *apply, &old, 0, 10)
            .await
            .expect("advance")
    );
    let claiming = tokio::spawn({
        let pool = pool.clone();
        async move { checkpoints::claim(&pool, "test_model", 0, second, ttl).await }
    });
    // The claim is blocked on the apply's row lock (as the server sees it).
    assert!(
        a_session_waits_for_a_lock(&pool).await,
        "the claim must wait for the apply in flight"
    );
    assert!(!claiming.is_finished());
    apply.commit().await.expect("the apply in flight commits");
    let new = claiming
        .await
        .expect("joined")
        .expect("claim")
        .expect("expired lease claimed");
    assert!(new.fence > old.fence);
    assert_eq!(
        checkpoints::held_position(&pool, &new).await.expect("held"),
        Some(10),
        "the new owner starts where the old one committed"
    );

    // The old owner's next batch is refused, and it can tell it lost the partition.
    let mut late = pool.begin().await.expect("late");
    assert!(
        !checkpoints::advance_fenced(&mut *late, &old, 10, 20)
            .await
            .expect("advance"),
        "a fenced-out owner's commit is refused"
    );
    drop(late);
    assert_eq!(
        checkpoints::held_position(&pool, &old).await.expect("held"),
        None
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn changing_the_partition_count_starts_where_every_partition_has_been(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("conn");
    checkpoints::ensure(&mut conn, "test_model", 3, 0)
        .await
        .expect("three");
    let ttl = Duration::from_secs(60);
    let owner = Uuid::new_v4();
    let mut leases = Vec::new();
    for (partition, position) in [(0, 30), (1, 10), (2, 20)] {
        let lease = checkpoints::claim(&pool, "test_model", partition, owner, ttl)
            .await
            .expect("claim")
            .expect("free");
        let mut tx = pool.begin().await.expect("tx");
        assert!(
            checkpoints::advance_fenced(&mut *tx, &lease, 0, position)
                .await
                .expect("advance")
        );
        tx.commit().await.expect("commit");
        leases.push(lease);
    }
    let layout = checkpoints::ensure(&mut conn, "test_model", 2, 0)
        .await
        .expect("two");
    assert_eq!(layout.partitions, 2);
    let partitions = checkpoints::partitions(&pool, "test_model")
        .await
        .expect("partitions");
    assert_eq!(
        partitions
            .iter()
            .map(|p| (p.partition, p.position))
            .collect::<Vec<_>>(),
        [(0, 10), (1, 10)]
    );
    let oldest_fence = leases.iter().map(|lease| lease.fence).max().unwrap_or(0);
    assert!(
        partitions
            .iter()
            .all(|p| p.fence > oldest_fence && p.owner.is_none())
    );
    for lease in &leases {
        assert_eq!(
            checkpoints::held_position(&pool, lease)
                .await
                .expect("held"),
            None,
            "the old layout's owners are fenced out"
        );
    }
}

/// Reads `selection` from the start once `count` events of it are below the safe horizon (a
/// transaction left open by a test running beside this one holds the horizon back for the whole
/// cluster for a moment).
async fn read_all_once_visible(
    pool: &PgPool,
    selection: &EventSelection,
    count: usize,
) -> event_store::Batch {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = pool.acquire().await.expect("conn");
        let batch = read_batch(&mut conn, 0, 1_000, selection)
            .await
            .expect("read");
        if batch.events.len() >= count || std::time::Instant::now() > deadline {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 10 s) until some session of this database waits for a row lock.
async fn a_session_waits_for_a_lock(pool: &PgPool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("activity");
        if waiting > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Read models applied together: their partitions are claimed all or none, and share one fence.
#[sqlx::test(migrations = "../../migrations")]
async fn a_group_is_claimed_all_or_none_and_fenced_as_one(pool: PgPool) {
    let group = ["test_a", "test_b", "test_c"];
    for name in group {
        let mut conn = pool.acquire().await.expect("conn");
        checkpoints::ensure(&mut conn, name, 1, 0)
            .await
            .expect("made");
    }
    let ttl = Duration::from_secs(60);
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    // Another process holds one member alone (an older version applying it on its own).
    let single = checkpoints::claim(&pool, "test_b", 0, second, ttl)
        .await
        .expect("claim")
        .expect("free");
    assert_eq!(
        checkpoints::claim_all(&pool, &group, 0, first, ttl)
            .await
            .expect("claim all"),
        None,
        "no part of a group is taken while a member is held elsewhere"
    );
    let owners: Vec<Option<Uuid>> = sqlx::query_scalar(
        "SELECT owner FROM projector.checkpoints WHERE name = ANY($1) ORDER BY name",
    )
    .bind(&group[..])
    .fetch_all(&pool)
    .await
    .expect("owners");
    assert_eq!(owners, vec![None, Some(second), None]);

    checkpoints::release(&pool, &single)
        .await
        .expect("released");
    let lease = checkpoints::claim_all(&pool, &group, 0, first, ttl)
        .await
        .expect("claim all")
        .expect("every member free");
    assert!(lease.fence > single.fence, "one fence above every member's");
    assert!(
        checkpoints::holds(&pool, &group, &lease)
            .await
            .expect("holds")
    );
    let again = checkpoints::claim_all(&pool, &group, 0, first, ttl)
        .await
        .expect("claim again")
        .expect("its own");
    assert_eq!(again.fence, lease.fence, "renewing its own keeps the fence");

    let moves = |from: i64, to: i64| {
        group.map(|subscription| checkpoints::Move {
            subscription,
            from,
            to,
            generation: 1,
        })
    };
    assert!(
        checkpoints::advance_all_fenced(&pool, &lease, &moves(0, 10))
            .await
            .expect("advance")
    );
    // The single owner's old lease moves nothing any more.
    assert!(
        !checkpoints::advance_fenced(&pool, &single, 10, 20)
            .await
            .expect("advance")
    );
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM projector.checkpoints WHERE name = ANY($1) ORDER BY name",
    )
    .bind(&group[..])
    .fetch_all(&pool)
    .await
    .expect("positions");
    assert_eq!(positions, vec![10, 10, 10]);
}

/// A rebuild switches a read model over while an apply of the live copy is in flight, and the
/// live copy was already at the rebuild's position: the apply's checkpoint must be refused, or
/// its rows would land in the tables the rebuild retires.
#[sqlx::test(migrations = "../../migrations")]
async fn an_apply_that_raced_a_switch_of_generation_is_refused(pool: PgPool) {
    let mut conn = pool.acquire().await.expect("conn");
    checkpoints::ensure(&mut conn, "test_model", 1, 10)
        .await
        .expect("made");
    drop(conn);
    let lease = checkpoints::claim_all(
        &pool,
        &["test_model"],
        0,
        Uuid::new_v4(),
        Duration::from_secs(60),
    )
    .await
    .expect("claim")
    .expect("free");
    let standing = checkpoints::standings(&pool, &["test_model"], 0)
        .await
        .expect("standing");
    assert_eq!((standing[0].position, standing[0].generation), (10, 1));

    // The rebuild holds the rows, and will leave the position where it was (10).
    let mut switch = pool.begin().await.expect("switch");
    checkpoints::lock_all(&mut switch, "test_model")
        .await
        .expect("locked");
    let applying = tokio::spawn({
        let pool = pool.clone();
        let lease = lease.clone();
        async move {
            let moves = [checkpoints::Move {
                subscription: "test_model",
                from: 10,
                to: 20,
                generation: 1,
            }];
            checkpoints::advance_all_fenced(&pool, &lease, &moves).await
        }
    });
    assert!(
        a_session_waits_for_a_lock(&pool).await,
        "the apply waits for the switch"
    );
    checkpoints::set_all(&mut *switch, "test_model", 10)
        .await
        .expect("set");
    checkpoints::switch_generation(&mut switch, "test_model", 2)
        .await
        .expect("switched");
    switch.commit().await.expect("committed");
    assert!(
        !applying.await.expect("joined").expect("advance"),
        "an apply to the retired generation is refused"
    );
    let standing = checkpoints::standings(&pool, &["test_model"], 0)
        .await
        .expect("standing");
    assert_eq!((standing[0].position, standing[0].generation), (10, 2));
}
