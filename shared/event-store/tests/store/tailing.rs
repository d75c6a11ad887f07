//! The tailing read never skips an event whose transaction commits after a later one.

use domain::product::ProductEvent;
use event_store::{Metadata, append_to_stream, read_after};
use sqlx::PgPool;
use uuid::Uuid;

/// Reads from position 0 until `done` holds. Other tests' transactions on the same cluster hold
/// the horizon back for a moment too, so reads wait for a condition, never a fixed time.
async fn read_until(pool: &PgPool, done: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut conn = pool.acquire().await.expect("conn");
        let read = read_after(&mut conn, 0, 100).await.expect("read");
        let positions: Vec<i64> = read.iter().map(|e| e.position).collect();
        if done(&positions) || std::time::Instant::now() > deadline {
            return positions;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn append_one(conn: &mut sqlx::PgConnection) -> i64 {
    let event = ProductEvent::ProductAdded {
        sku: "S".into(),
        name: "N".into(),
        price_cents: 1,
        stock: 1,
    };
    append_to_stream(
        conn,
        Uuid::new_v4(),
        domain::StreamType::Product,
        0,
        &[event],
        &Metadata::default(),
    )
    .await
    .expect("appended")
    .last_position
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_open_append_transaction_holds_back_later_commits_instead_of_being_skipped(
    pool: PgPool,
) {
    // A takes the lower position and stays open; B and C take higher ones and commit first.
    let mut slow = pool.begin().await.expect("begin A");
    let slow_position = append_one(&mut slow).await;
    let mut fast_positions = Vec::new();
    for _ in 0..2 {
        let mut fast = pool.begin().await.expect("begin");
        fast_positions.push(append_one(&mut fast).await);
        fast.commit().await.expect("commit");
    }
    assert!(fast_positions.iter().all(|p| *p > slow_position));

    let mut reader = pool.acquire().await.expect("reader");
    let while_open = read_after(&mut reader, 0, 100).await.expect("read");
    assert!(
        while_open.is_empty(),
        "nothing after the open transaction may be read yet"
    );

    slow.commit().await.expect("commit A");
    let mut expected = vec![slow_position];
    expected.extend(&fast_positions);
    let positions = read_until(&pool, |positions| positions.len() >= expected.len()).await;
    assert_eq!(positions, expected, "every event, in position order");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rolled_back_append_leaves_no_hole_to_wait_for(pool: PgPool) {
    let mut aborted = pool.begin().await.expect("begin");
    append_one(&mut aborted).await;
    aborted.rollback().await.expect("rollback");
    let mut conn = pool.acquire().await.expect("conn");
    let committed = append_one(&mut conn).await;
    let positions = read_until(&pool, |positions| !positions.is_empty()).await;
    assert_eq!(positions, [committed]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_open_transaction_that_appends_no_events_holds_back_nobody(pool: PgPool) {
    // A read model's batch: it has written (so it holds a transaction id) and stays open.
    let mut read_model = pool.begin().await.expect("begin");
    sqlx::query("CREATE TABLE read_model_rows (id int)")
        .execute(&mut *read_model)
        .await
        .expect("write");
    let mut conn = pool.acquire().await.expect("conn");
    let appended = append_one(&mut conn).await;

    let positions = read_until(&pool, |positions| positions.contains(&appended)).await;
    assert_eq!(
        positions,
        [appended],
        "an event committed after the read model's transaction began is read while it is open"
    );
    read_model.rollback().await.expect("rollback");
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_writer_that_wrote_something_else_first_holds_the_horizon_when_it_began_appending(
    pool: PgPool,
) {
    // Begun as an event writer, it writes another row first (as a claim or a sealed key does),
    // then its event; two later appends commit while it is open.
    let mut slow = event_store::begin_appending(&pool).await.expect("begin");
    sqlx::query("CREATE TABLE claims_before_events (id int)")
        .execute(&mut *slow)
        .await
        .expect("write");
    let slow_position = append_one(&mut slow).await;
    let mut conn = pool.acquire().await.expect("conn");
    let fast = [append_one(&mut conn).await, append_one(&mut conn).await];

    let mut reader = pool.acquire().await.expect("reader");
    let horizon = event_store::safe_horizon(&mut reader)
        .await
        .expect("horizon");
    assert!(
        horizon <= slow_position,
        "the open writer holds the horizon: {horizon} > {slow_position}"
    );
    assert!(
        read_after(&mut reader, 0, 100)
            .await
            .expect("read")
            .is_empty(),
        "nothing after the open writer may be read yet"
    );

    slow.commit().await.expect("commit");
    let positions = read_until(&pool, |positions| positions.len() >= 3).await;
    assert_eq!(positions, [slow_position, fast[0], fast[1]]);
}

#[sqlx::test(migrations = "../../migrations")]
async fn events_after_another_write_without_beginning_as_a_writer_are_refused(pool: PgPool) {
    // Its transaction id was taken while no reader could know it would append: its events
    // could land below a horizon that already passed them.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("CREATE TABLE written_first (id int)")
        .execute(&mut *tx)
        .await
        .expect("write");
    let event = ProductEvent::ProductAdded {
        sku: "S".into(),
        name: "N".into(),
        price_cents: 1,
        stock: 1,
    };
    let refused = append_to_stream(
        &mut tx,
        Uuid::new_v4(),
        domain::StreamType::Product,
        0,
        &[event],
        &Metadata::default(),
    )
    .await
    .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("wrote before it began appending events"),
        "{refused}"
    );
}
