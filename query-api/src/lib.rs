//! The read side's HTTP interface: serves the read models only, never the event table (its
//! database role cannot read it), with read-your-writes through `min_position`.

mod as_of;
pub mod consistency;
mod cursor;
mod error;
mod feed;
mod lookups;
pub mod openapi;
mod routes;
pub mod startup;

pub use startup::{Application, READER_ROLE, Settings, connect_reader};

use sqlx::PgPool;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub lookups: lookups::Lookups,
    pub consistency: consistency::Consistency,
    pub feeds: feed::Feeds,
    /// The command-api's admission bound, as configured for this deployment (reported only).
    pub max_saga_lag_events: Option<u64>,
}
