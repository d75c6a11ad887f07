//! Where each partition of a subscription stands, and who may move it. A subscription's layout
//! (`projector.subscriptions`: its partition count and live table generation) and one row per
//! partition (`projector.checkpoints`: position, last error, and the lease: owner, expiry,
//! fence).
//!
//! Moving a checkpoint is one UPDATE that succeeds only if the row still has the position the
//! batch was read from *and* the owner and fence of the lease the batch was applied under, run
//! in the transaction that wrote the batch's effects. So a batch commits with its checkpoint or
//! not at all, and a process that lost its lease (the row's fence grew when another process
//! claimed it) can never commit one. A claim is an UPDATE of the same row, so it also waits for
//! an apply in flight to end.
//!
//! Subscriptions applied together (the PostgreSQL read models) are claimed together
//! (`claim_all`: every member's row or none, under one fence) and moved together
//! (`advance_all_fenced`: one statement, which also checks the generation each row was applied
//! to, so an apply that raced a rebuild's switch-over commits nothing).

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// A subscription's partition count and (for a PostgreSQL read model) its live generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Layout {
    pub partitions: i32,
    pub generation: i32,
}

/// One partition's row, as `/projections` and the projector's coordinator see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PartitionState {
    pub partition: i32,
    pub position: i64,
    pub owner: Option<Uuid>,
    pub fence: i64,
    /// True while the lease has not expired.
    pub leased: bool,
}

/// A partition a process holds: it may apply batches while `fence` is the row's fence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub subscription: &'static str,
    pub partition: i32,
    pub owner: Uuid,
    pub fence: i64,
}

pub async fn layout<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<Option<Layout>, sqlx::Error> {
    sqlx::query_as("SELECT partitions, generation FROM projector.subscriptions WHERE name = $1")
        .bind(name)
        .fetch_optional(executor)
        .await
}

/// Makes `name` a subscription of `partitions` partitions. A new subscription's partitions start
/// at `start_position`. When the partition count changes, the new partitions start at the
/// lowest position of the old ones (every old partition has passed it, so nothing is skipped;
/// events between it and an old partition's position are applied again, which every
/// subscription tolerates), and the old rows go, so their owners are fenced out. Returns the
/// layout now in force.
pub async fn ensure(
    conn: &mut PgConnection,
    name: &str,
    partitions: i32,
    start_position: i64,
) -> Result<Layout, sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector.subscriptions (name, partitions) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(partitions)
    .execute(&mut *conn)
    .await?;
    let layout: Layout = sqlx::query_as(
        "SELECT partitions, generation FROM projector.subscriptions WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    let (existing, lowest, highest_fence): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(position), max(fence) FROM projector.checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if layout.partitions == partitions && existing == i64::from(partitions) {
        return Ok(layout);
    }
    let start = lowest.unwrap_or(start_position);
    if existing > 0 {
        tracing::warn!(
            subscription = name,
            from = layout.partitions,
            to = partitions,
            start,
            "changing the partition count: the new partitions start where every old one has been"
        );
    }
    sqlx::query("DELETE FROM projector.checkpoints WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO projector.checkpoints (name, partition, position, fence, generation)
         SELECT $1, p, $3, $4, $5 FROM generate_series(0, $2 - 1) AS p",
    )
    .bind(name)
    .bind(partitions)
    .bind(start)
    .bind(highest_fence.unwrap_or(0) + 1)
    .bind(layout.generation)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE projector.subscriptions SET partitions = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(partitions)
    .execute(&mut *conn)
    .await?;
    Ok(Layout {
        partitions,
        generation: layout.generation,
    })
}

/// Every partition of `name`, in partition order.
pub async fn partitions<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<Vec<PartitionState>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partition, position, owner, fence, lease_expires_at > now() AS leased
         FROM projector.checkpoints WHERE name = $1 ORDER BY partition",
    )
    .bind(name)
    .fetch_all(executor)
    .await
}

/// The position of one partition (`None` without a row: not created yet, or retired).
pub async fn position<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT position FROM projector.checkpoints WHERE name = $1 AND partition = $2",
    )
    .bind(name)
    .bind(partition)
    .fetch_optional(executor)
    .await
}

/// The lowest position over the partitions of all of `names` (a position every one of them has
/// reached), or `None` when none has a row.
pub async fn lowest<'e>(
    executor: impl PgExecutor<'e>,
    names: &[&str],
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(position) FROM projector.checkpoints WHERE name = ANY($1)")
        .bind(names)
        .fetch_one(executor)
        .await
}

/// Claims a partition for `owner` if it is free, expired or already `owner`'s; returns the
/// lease (a new owner gets a new fence).
pub async fn claim<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &'static str,
    partition: i32,
    owner: Uuid,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let fence: Option<i64> = sqlx::query_scalar(
        "UPDATE projector.checkpoints
         SET fence = CASE WHEN owner = $3 THEN fence ELSE fence + 1 END,
             owner = $3,
             lease_expires_at = now() + make_interval(secs => $4)
         WHERE name = $1 AND partition = $2
           AND (owner IS NULL OR owner = $3 OR lease_expires_at < now())
         RETURNING fence",
    )
    .bind(subscription)
    .bind(partition)
    .bind(owner)
    .bind(ttl.as_secs_f64())
    .fetch_optional(executor)
    .await?;
    Ok(fence.map(|fence| Lease {
        subscription,
        partition,
        owner,
        fence,
    }))
}

/// Claims partition `partition` of every one of `subscriptions` at once, for a process that
/// applies them together (`claim` for each would let two processes hold half each): only when
/// every row is free, expired or already `owner`'s, all or none. The rows then share one fence,
/// so one `Lease` (named after the first subscription) fences all of them; a new owner, or rows
/// of different fences, get a fence above each row's.
pub async fn claim_all(
    pool: &PgPool,
    subscriptions: &[&'static str],
    partition: i32,
    owner: Uuid,
    ttl: Duration,
) -> Result<Option<Lease>, sqlx::Error> {
    let Some(first) = subscriptions.first().copied() else {
        return Ok(None);
    };
    if subscriptions.len() == 1 {
        return claim(pool, first, partition, owner, ttl).await;
    }
    let mut tx = pool.begin().await?;
    let rows: Vec<(Option<Uuid>, i64, bool)> = sqlx::query_as(
        "SELECT owner, fence, lease_expires_at < now() FROM projector.checkpoints
         WHERE name = ANY($1) AND partition = $2 ORDER BY name FOR UPDATE",
    )
    .bind(subscriptions)
    .bind(partition)
    .fetch_all(&mut *tx)
    .await?;
    let claimable = rows.len() == subscriptions.len()
        && rows
            .iter()
            .all(|(held_by, _, expired)| held_by.is_none_or(|id| id == owner) || *expired);
    if !claimable {
        return Ok(None);
    }
    let fences: Vec<i64> = rows.iter().map(|(_, fence, _)| *fence).collect();
    let already_ours = rows.iter().all(|(held_by, _, _)| *held_by == Some(owner))
        && fences.windows(2).all(|pair| pair[0] == pair[1]);
    let fence = if already_ours {
        fences[0]
    } else {
        fences.iter().max().copied().unwrap_or(0) + 1
    };
    sqlx::query(
        "UPDATE projector.checkpoints
         SET owner = $3, fence = $4, lease_expires_at = now() + make_interval(secs => $5)
         WHERE name = ANY($1) AND partition = $2",
    )
    .bind(subscriptions)
    .bind(partition)
    .bind(owner)
    .bind(fence)
    .bind(ttl.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Lease {
        subscription: first,
        partition,
        owner,
        fence,
    }))
}

/// Extends every lease `owner` still holds; returns them as (subscription, partition, fence).
pub async fn renew<'e>(
    executor: impl PgExecutor<'e>,
    owner: Uuid,
    ttl: Duration,
) -> Result<Vec<(String, i32, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE projector.checkpoints SET lease_expires_at = now() + make_interval(secs => $2)
         WHERE owner = $1
         RETURNING name, partition, fence",
    )
    .bind(owner)
    .bind(ttl.as_secs_f64())
    .fetch_all(executor)
    .await
}

/// Gives a partition up, so another process may claim it at once.
pub async fn release<'e>(executor: impl PgExecutor<'e>, lease: &Lease) -> Result<(), sqlx::Error> {
    release_all(executor, &[lease.subscription], lease).await
}

/// Gives up the partition of every one of `subscriptions` that `lease` holds (`claim_all`).
pub async fn release_all<'e>(
    executor: impl PgExecutor<'e>,
    subscriptions: &[&str],
    lease: &Lease,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector.checkpoints SET owner = NULL, lease_expires_at = now()
         WHERE name = ANY($1) AND partition = $2 AND owner = $3 AND fence = $4",
    )
    .bind(subscriptions)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .execute(executor)
    .await?;
    Ok(())
}

/// Moves the leased partition from `from` to `to` (clearing its last error), inside the
/// transaction that wrote the batch (or alone, for a batch with nothing to write): false, having changed nothing, when the row is no longer
/// at `from` under this lease (another owner took over, or the layout changed). The caller then
/// rolls back.
pub async fn advance_fenced<'e>(
    executor: impl PgExecutor<'e>,
    lease: &Lease,
    from: i64,
    to: i64,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE projector.checkpoints SET position = $5, last_error = NULL, updated_at = now()
         WHERE name = $1 AND partition = $2 AND owner = $3 AND fence = $4 AND position = $6",
    )
    .bind(lease.subscription)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .bind(to)
    .bind(from)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Where one subscription's partition stands, and which generation of its tables that is.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Standing {
    pub name: String,
    pub position: i64,
    pub generation: i32,
}

/// The standing of partition `partition` of each of `subscriptions` (those that have a row).
pub async fn standings<'e>(
    executor: impl PgExecutor<'e>,
    subscriptions: &[&str],
    partition: i32,
) -> Result<Vec<Standing>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, position, generation FROM projector.checkpoints
         WHERE name = ANY($1) AND partition = $2",
    )
    .bind(subscriptions)
    .bind(partition)
    .fetch_all(executor)
    .await
}

/// One subscription's part of a batch applied together with others: its checkpoint moves from
/// `from` to `to`, and it was applied to the tables of `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move<'a> {
    pub subscription: &'a str,
    pub from: i64,
    pub to: i64,
    pub generation: i32,
}

/// Moves the leased partition of every subscription of `moves` (held together through
/// `claim_all`), inside the transaction that wrote their effects, in one statement: true only if
/// every row was still at its `from` and `generation` under the lease. Otherwise (another
/// owner, a rebuild switched one of them over meanwhile) the caller rolls back.
pub async fn advance_all_fenced<'e>(
    executor: impl PgExecutor<'e>,
    lease: &Lease,
    moves: &[Move<'_>],
) -> Result<bool, sqlx::Error> {
    let names: Vec<&str> = moves.iter().map(|m| m.subscription).collect();
    let froms: Vec<i64> = moves.iter().map(|m| m.from).collect();
    let tos: Vec<i64> = moves.iter().map(|m| m.to).collect();
    let generations: Vec<i32> = moves.iter().map(|m| m.generation).collect();
    let moved = sqlx::query(
        "UPDATE projector.checkpoints c
         SET position = m.to_position, last_error = NULL, updated_at = now()
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::integer[])
              AS m(name, from_position, to_position, generation)
         WHERE c.name = m.name AND c.partition = $5 AND c.owner = $6 AND c.fence = $7
           AND c.position = m.from_position AND c.generation = m.generation",
    )
    .bind(names)
    .bind(froms)
    .bind(tos)
    .bind(generations)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(moved == moves.len() as u64)
}

/// True while `lease` still holds the partition of every one of `subscriptions`.
pub async fn holds<'e>(
    executor: impl PgExecutor<'e>,
    subscriptions: &[&str],
    lease: &Lease,
) -> Result<bool, sqlx::Error> {
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projector.checkpoints
         WHERE name = ANY($1) AND partition = $2 AND owner = $3 AND fence = $4",
    )
    .bind(subscriptions)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .fetch_one(executor)
    .await?;
    Ok(held == subscriptions.len() as i64)
}

/// Moves the leased partition forward to `to` unless it is already further: for a subscription
/// whose effects live outside PostgreSQL (Redis, a broker) and whose row only mirrors them.
/// False when the lease is no longer held.
pub async fn mirror_fenced<'e>(
    executor: impl PgExecutor<'e>,
    lease: &Lease,
    to: i64,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE projector.checkpoints
         SET position = greatest(position, $5), last_error = NULL, updated_at = now()
         WHERE name = $1 AND partition = $2 AND owner = $3 AND fence = $4",
    )
    .bind(lease.subscription)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .bind(to)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Sets every partition of `name` to `position` (a rebuild switching over, or a Redis read
/// model starting afresh), leaving the leases as they are.
pub async fn set_all<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector.checkpoints SET position = $2, last_error = NULL, updated_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(position)
    .execute(executor)
    .await?;
    Ok(())
}

/// Locks every partition row of `name` until the transaction ends (pausing its appliers, whose
/// advance waits) and returns the highest position among them.
pub async fn lock_all(conn: &mut PgConnection, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM projector.checkpoints WHERE name = $1 ORDER BY partition FOR UPDATE",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    Ok(positions.into_iter().max())
}

/// Makes `generation` the live generation of `name`'s tables, in its layout and in every
/// partition's row (where `advance_all_fenced` checks it).
pub async fn switch_generation(
    conn: &mut PgConnection,
    name: &str,
    generation: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector.subscriptions SET generation = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(generation)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE projector.checkpoints SET generation = $2 WHERE name = $1")
        .bind(name)
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes the subscriptions `names` and their partitions; returns how many existed.
pub async fn retire<'e>(executor: impl PgExecutor<'e>, names: &[&str]) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM projector.subscriptions WHERE name = ANY($1)")
            .bind(names)
            .execute(executor)
            .await?
            .rows_affected(),
    )
}

/// Stores (or, with `None`, clears) the error that keeps a partition from advancing, for
/// /projections. Best effort: the database may be the very thing that is failing. A row that
/// is gone (a retired subscription) stays gone.
pub async fn record_error<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    partition: i32,
    error: Option<&str>,
) {
    let recorded = sqlx::query(
        "UPDATE projector.checkpoints SET last_error = $3, updated_at = now()
         WHERE name = $1 AND partition = $2 AND last_error IS DISTINCT FROM $3",
    )
    .bind(name)
    .bind(partition)
    .bind(error)
    .execute(executor)
    .await;
    if let Err(failure) = recorded {
        tracing::debug!(%failure, name, partition, "cannot record the subscription's error");
    }
}

/// The partition's position while `lease` still holds it; `None` once another owner (or a
/// new layout) has taken it.
pub async fn held_position<'e>(
    executor: impl PgExecutor<'e>,
    lease: &Lease,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT position FROM projector.checkpoints
         WHERE name = $1 AND partition = $2 AND owner = $3 AND fence = $4",
    )
    .bind(lease.subscription)
    .bind(lease.partition)
    .bind(lease.owner)
    .bind(lease.fence)
    .fetch_optional(executor)
    .await
}

/// For every partition `owner` holds: how many events of the log lie after its position.
pub async fn owned_lags<'e>(
    executor: impl PgExecutor<'e>,
    owner: Uuid,
) -> Result<Vec<(String, i32, i64)>, sqlx::Error> {
    // Counted once per position: the members of a group stand at the same one, and each count
    // reads the whole backlog.
    sqlx::query_as(
        "WITH owned AS (SELECT name, partition, position FROM projector.checkpoints WHERE owner = $1),
              lags AS (
                  SELECT p.position, (SELECT count(*) FROM events e WHERE e.position > p.position) AS lag
                  FROM (SELECT DISTINCT position FROM owned) p
              )
         SELECT o.name, o.partition, l.lag FROM owned o JOIN lags l USING (position)",
    )
    .bind(owner)
    .fetch_all(executor)
    .await
}
