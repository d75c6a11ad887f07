//! The read side end to end: command-api, projector and query-api in one process, each test on
//! its own database and Redis prefix.

mod consistency;
mod dashboard;
mod erasure;
mod faults;
mod feed;
mod lists;
mod metrics;
mod openapi;
mod rebuilds;
mod security;
mod time_travel;
