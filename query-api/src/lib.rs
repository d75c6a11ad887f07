//! The read side's HTTP interface: serves the read models only, never the event table (its
//! database role cannot read it), with read-your-writes through `min_position`.

pub mod consistency;
mod cursor;
mod lookups;
pub mod openapi;
mod problem;
mod routes;
pub mod startup;
