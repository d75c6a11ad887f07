//! The projector: tails the event log in one global order and keeps every read model (and, in
//! `saga`, the order saga) up to date. Each subscription keeps its own checkpoint.

pub mod cli;
mod error;
mod fold;
pub mod metrics;
mod progress;
pub mod projections;
pub mod rebuild;
pub mod relay;
mod routes;
mod runner;
pub mod saga;
mod startup;
pub mod subscription;

pub use error::ProjectionError;
pub use startup::{Application, Projector, Settings};
