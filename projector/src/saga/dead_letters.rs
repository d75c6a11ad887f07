//! Events a saga subscription parked, and `projector retry-dead-letters`, which runs each of
//! them through its handler again (in position order) and forgets those that now succeed.

use event_store::{RecordedEvent, backoff, read_positions};
use sqlx::{PgConnection, PgPool};

use super::{SagaHandler, SagaSubscription, choreography, orchestration};

pub(super) async fn park(
    conn: &mut PgConnection,
    subscription: &str,
    event: &RecordedEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector.dead_letters (subscription, position, stream_id, event_type, error, attempts)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (subscription, position) DO UPDATE
         SET error = EXCLUDED.error, attempts = projector.dead_letters.attempts + EXCLUDED.attempts, parked_at = now()",
    )
    .bind(subscription)
    .bind(event.position)
    .bind(event.stream_id)
    .bind(&event.event_type)
    .bind(error)
    .bind(attempts as i32)
    .execute(conn)
    .await?;
    Ok(())
}

/// Retries every parked event; returns (succeeded, still failing).
pub async fn retry_dead_letters(
    pool: &PgPool,
    snapshot_every: i64,
) -> anyhow::Result<(usize, usize)> {
    let mut totals = (0, 0);
    for (done, failed) in [
        retry::<orchestration::Orchestrator>(pool, orchestration::Orchestrator, snapshot_every)
            .await?,
        retry::<choreography::StockHandler>(pool, choreography::StockHandler, snapshot_every)
            .await?,
        retry::<choreography::CreditHandler>(pool, choreography::CreditHandler, snapshot_every)
            .await?,
        retry::<choreography::OrderHandler>(pool, choreography::OrderHandler, snapshot_every)
            .await?,
    ] {
        totals.0 += done;
        totals.1 += failed;
    }
    Ok(totals)
}

async fn retry<H: SagaHandler>(
    pool: &PgPool,
    handler: H,
    snapshot_every: i64,
) -> anyhow::Result<(usize, usize)> {
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM projector.dead_letters WHERE subscription = $1 ORDER BY position",
    )
    .bind(H::NAME)
    .fetch_all(pool)
    .await?;
    let parked = read_positions(&mut *pool.acquire().await?, &positions).await?;
    let subscription = SagaSubscription::new(pool.clone(), handler, snapshot_every);
    let (mut done, mut failed) = (0, 0);
    for event in parked {
        // A lost race (the live saga writing the same aggregate) is retried, like any step.
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match subscription
                .try_events(None, std::slice::from_ref(&event))
                .await
            {
                Err(error) if error.is_transient() && attempt < 10 => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                outcome => break outcome,
            }
        };
        match outcome {
            Ok(_) => {
                sqlx::query(
                    "DELETE FROM projector.dead_letters WHERE subscription = $1 AND position = $2",
                )
                .bind(H::NAME)
                .bind(event.position)
                .execute(pool)
                .await?;
                tracing::info!(
                    subscription = H::NAME,
                    position = event.position,
                    "dead letter processed"
                );
                done += 1;
            }
            Err(error) => {
                let mut conn = pool.acquire().await?;
                park(&mut conn, H::NAME, &event, &error.to_string(), 1).await?;
                tracing::warn!(subscription = H::NAME, position = event.position, %error, "dead letter still fails");
                failed += 1;
            }
        }
    }
    Ok((done, failed))
}

/// How many events each saga subscription has parked.
pub async fn dead_letter_counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subscription, count(*) FROM projector.dead_letters GROUP BY subscription",
    )
    .fetch_all(pool)
    .await
}
