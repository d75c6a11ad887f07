//! The library the three services share: the domain, the event store, HTTP conventions,
//! configuration and telemetry.

pub mod config;
pub mod domain;
pub mod event_store;
pub mod http;
pub mod read_model;
pub mod telemetry;
