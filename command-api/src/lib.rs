//! The write side's HTTP interface: validates commands, runs them through the domain and the
//! event store, and never touches a read model.

mod admission;
mod auth;
mod catalog;
mod command_request;
mod error;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod startup;

pub use startup::{Application, Settings};

use std::time::Duration;

use sqlx::PgPool;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    /// Customers and prices found so far (facts that never change).
    pub catalog: catalog::Catalog,
    /// Whether new orders are admitted (`MAX_SAGA_LAG_EVENTS`).
    pub admission: admission::Admission,
    /// Wakes the projector after each command that appended.
    pub announcer: event_store::Announcer,
    pub snapshot_every: i64,
    pub idempotency_retention: Duration,
}
