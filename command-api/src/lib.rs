//! The write side's HTTP interface: validates commands, runs them through the shared domain and
//! event store, and never touches a read model.

mod auth;
mod command_request;
pub mod openapi;
mod problem;
mod routes;
pub mod startup;
