//! The projector processes alive. Each joins with a random id, renews its heartbeat every
//! second, and leaves when it stops; one whose heartbeat is older than `LEASE_TTL` is gone (a
//! crash), and the others share its partitions out.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

/// Joins, or renews the heartbeat of a member that has joined.
pub async fn heartbeat<'e>(
    executor: impl PgExecutor<'e>,
    id: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector.members (id, name) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .bind(id)
    .bind(name)
    .execute(executor)
    .await?;
    Ok(())
}

/// The members whose heartbeat is younger than `ttl`, in id order (every process computes
/// the same assignment from the same list). Members older than that are forgotten.
pub async fn alive<'e>(
    executor: impl PgExecutor<'e> + Copy,
    ttl: Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query(
        "DELETE FROM projector.members WHERE heartbeat_at < now() - make_interval(secs => $1)",
    )
    .bind(ttl.as_secs_f64() * 10.0)
    .execute(executor)
    .await?;
    sqlx::query_scalar(
        "SELECT id FROM projector.members
         WHERE heartbeat_at >= now() - make_interval(secs => $1) ORDER BY id",
    )
    .bind(ttl.as_secs_f64())
    .fetch_all(executor)
    .await
}

/// Leaves: the member is gone at once, and its partitions are free for the others.
pub async fn leave<'e>(executor: impl PgExecutor<'e> + Copy, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector.checkpoints SET owner = NULL, lease_expires_at = now() WHERE owner = $1",
    )
    .bind(id)
    .execute(executor)
    .await?;
    sqlx::query("DELETE FROM projector.members WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}
