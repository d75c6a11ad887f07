//! Event store tests against a real PostgreSQL, one fresh database per test.

mod appends;
mod loading;
mod subscriptions;
mod tailing;
