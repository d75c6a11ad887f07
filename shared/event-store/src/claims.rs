//! Values that must be unique across aggregates (a product's SKU), claimed in the transaction
//! that appends the claiming aggregate's first event.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{CommandError, StoreError};

#[derive(Debug, Clone)]
pub struct UniqueClaim {
    pub kind: &'static str,
    pub value: String,
    /// The message of the 409 when the value is taken.
    pub taken_message: String,
}

/// Claims a unique value; a concurrent claim of the same value waits for this transaction and
/// then finds the value taken, so of two racing creates exactly one succeeds.
pub(crate) async fn claim(
    conn: &mut PgConnection,
    claim: &UniqueClaim,
    stream_id: Uuid,
) -> Result<(), CommandError> {
    let inserted = sqlx::query(
        "INSERT INTO unique_claims (kind, value, stream_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(claim.kind)
    .bind(&claim.value)
    .bind(stream_id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if inserted == 0 {
        Err(CommandError::Conflict(claim.taken_message.clone()))
    } else {
        Ok(())
    }
}
