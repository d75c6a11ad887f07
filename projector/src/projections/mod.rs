//! One module per read model. PostgreSQL read models share `postgres::PgProjection`, which
//! writes a batch and its checkpoint in one transaction; the Redis read model keeps a position
//! on every document instead (`lookups`).

pub mod event_feed;
pub mod lookups;
pub mod order_history;
pub mod order_list;
pub mod postgres;
pub mod product_catalog;

use std::future::Future;

use event_store::RecordedEvent;

use crate::ProjectionError;

/// A subscription to the event log with its own checkpoint.
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// The position of the last event the live copy has applied.
    fn position(&self) -> impl Future<Output = Result<i64, ProjectionError>> + Send;

    /// Applies `events` (all after `from`, in order) and moves the checkpoint to the last one.
    /// Returns false, having changed nothing, when the live copy is no longer where `from` was
    /// read (another process moved it, e.g. a rebuild switched over): the caller re-reads.
    fn apply(
        &self,
        from: i64,
        events: &[RecordedEvent],
    ) -> impl Future<Output = Result<bool, ProjectionError>> + Send;

    /// Records (or, with `None`, clears) the error that keeps this subscription from advancing.
    fn record_error(&self, error: Option<&str>) -> impl Future<Output = ()> + Send;
}
