//! The inbox: handling an event and remembering it happen in one transaction, so an event is
//! handled once however often the broker delivers it. JetStream de-duplicates publishes only
//! within its window, and redelivers whatever was not acknowledged (a crash between the commit
//! and the ack); the inbox drops every such copy, whenever it comes.

use integration_events::{Envelope, IntegrationEvent};
use sqlx::PgPool;

use crate::messages;

/// What handling one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First delivery; a notification was recorded.
    Notified,
    /// First delivery of an event that tells a customer nothing (or that this build does not
    /// know); remembered all the same.
    Nothing,
    /// The event was handled before: this copy changed nothing.
    AlreadyHandled,
}

/// Handles the delivery of `envelope` (decoded as `event`, `None` when its type or version is
/// unknown here), which JetStream stored at `stream_sequence`.
pub async fn handle(
    pool: &PgPool,
    envelope: &Envelope,
    event: Option<&IntegrationEvent>,
    stream_sequence: u64,
) -> Result<Outcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let first_delivery: bool = sqlx::query_scalar(
        "INSERT INTO notifications.inbox (event_id, event_type, stream_sequence)
         VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO UPDATE
             SET redeliveries = notifications.inbox.redeliveries + 1, last_seen_at = now()
         RETURNING redeliveries = 0",
    )
    .bind(&envelope.id)
    .bind(&envelope.event_type)
    .bind(i64::try_from(stream_sequence).unwrap_or(i64::MAX))
    .fetch_one(&mut *tx)
    .await?;
    if !first_delivery {
        tx.commit().await?;
        return Ok(Outcome::AlreadyHandled);
    }
    let Some(draft) = event.and_then(messages::compose) else {
        tx.commit().await?;
        return Ok(Outcome::Nothing);
    };
    sqlx::query(
        "INSERT INTO notifications.notifications
             (event_id, position, customer_id, order_id, kind, subject, body, occurred_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&envelope.id)
    .bind(envelope.id.parse::<i64>().unwrap_or_default())
    .bind(draft.customer_id)
    .bind(draft.order_id)
    .bind(draft.kind)
    .bind(&draft.subject)
    .bind(&draft.body)
    .bind(envelope.occurred_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Outcome::Notified)
}
