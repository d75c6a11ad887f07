//! Where each subscription stands: one row per subscription in `projector.checkpoints`, with
//! the position of the last event it applied. A subscription that writes PostgreSQL moves its
//! row in the transaction that writes its effects (`lock`, then `advance`), so its effects and
//! its checkpoint can never disagree; the row lock also keeps two processes from interleaving.
//! The one place that reads or writes that table.

use sqlx::{PgConnection, PgExecutor};

/// A checkpoint row: the position reached, and which generation of the read model's tables is
/// live (PostgreSQL read models; rebuilds fill the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    pub position: i64,
    pub generation: i32,
}

/// The checkpoint of `name`, or `None` when the subscription has no row (never started, or
/// retired).
pub async fn read<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query_as("SELECT position, generation FROM projector.checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(executor)
        .await
}

/// Reads and locks the checkpoint of `name` until the transaction ends; `None` without a row.
pub async fn lock(conn: &mut PgConnection, name: &str) -> Result<Option<Checkpoint>, sqlx::Error> {
    sqlx::query_as(
        "SELECT position, generation FROM projector.checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Moves `name` to `position` and clears its last error.
pub async fn advance<'e>(
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

/// Moves `name` to `position` on a new `generation` of its tables (a rebuild switching over).
pub async fn switch_generation(
    conn: &mut PgConnection,
    name: &str,
    position: i64,
    generation: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projector.checkpoints
         SET position = $2, generation = $3, last_error = NULL, updated_at = now()
         WHERE name = $1",
    )
    .bind(name)
    .bind(position)
    .bind(generation)
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates the rows of `names` that do not exist yet, at `position`.
pub async fn create_missing<'e>(
    executor: impl PgExecutor<'e>,
    names: &[&str],
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector.checkpoints (name, position)
         SELECT name, $2 FROM unnest($1::text[]) AS name
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(names)
    .bind(position)
    .execute(executor)
    .await?;
    Ok(())
}

/// The furthest position any of `names` has reached (0 when none has a row).
pub async fn furthest<'e>(
    executor: impl PgExecutor<'e>,
    names: &[&str],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(max(position), 0) FROM projector.checkpoints WHERE name = ANY($1)",
    )
    .bind(names)
    .fetch_one(executor)
    .await
}

/// Deletes the rows of `names`; returns how many there were.
pub async fn retire<'e>(executor: impl PgExecutor<'e>, names: &[&str]) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM projector.checkpoints WHERE name = ANY($1)")
            .bind(names)
            .execute(executor)
            .await?
            .rows_affected(),
    )
}

/// Stores (or, with `None`, clears) the error that keeps `name` from advancing, for
/// /projections. Best effort: the database may be the very thing that is failing. A row that
/// is gone (a retired subscription) stays gone.
pub async fn record_error<'e>(executor: impl PgExecutor<'e>, name: &str, error: Option<&str>) {
    let recorded = sqlx::query(
        "UPDATE projector.checkpoints SET last_error = $2, updated_at = now()
         WHERE name = $1 AND last_error IS DISTINCT FROM $2",
    )
    .bind(name)
    .bind(error)
    .execute(executor)
    .await;
    if let Err(failure) = recorded {
        tracing::debug!(%failure, name, "cannot record the subscription's error");
    }
}
