//! notifications: a service of its own beside the shop, written as another team would write it.
//! It depends on the shop only through the public contract (`integration_events`) and the broker:
//! a durable JetStream consumer reads the order events, an inbox in its own PostgreSQL schema
//! makes each one count once, and the messages customers would get are served over HTTP.

pub mod consumer;
mod error;
pub mod inbox;
pub mod messages;
pub mod openapi;
pub mod routes;
mod startup;

pub use startup::{Application, SCHEMA, Settings};

use sqlx::PgPool;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
}
