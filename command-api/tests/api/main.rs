//! HTTP tests of the command-api: the real app on port 0 against a fresh database per test.

mod concurrency;
mod conventions;
mod customers;
mod idempotency;
mod openapi;
mod orders;
mod other_kinds;
mod products;
