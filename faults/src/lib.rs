//! The fault suite's harness. A `RealSystem` runs the three service binaries exactly as
//! `scripts/run` does (separate processes, so `kill -9` is a real one), on a database, a Redis
//! key prefix and ports of its own, and optionally on a PostgreSQL cluster (`PrivatePostgres`)
//! or a Redis server (`PrivateRedis`) of its own that a test may crash, restart or wipe; the
//! shared servers are never touched. `load` drives clients that record every answer, and
//! `testkit::invariants` checks the contract's invariants once the system is quiet again.
//!
//! The suite runs the binaries in `FAULTS_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`, else the
//! workspace's `target/debug`: `scripts/test` builds them first (`cargo build --bins`).

pub mod load;
mod postgres;
mod redis_server;
mod system;

use std::{future::Future, path::PathBuf, time::Duration};

pub use postgres::PrivatePostgres;
pub use redis_server::PrivateRedis;
pub use system::{RealSystem, RealSystemBuilder, Service};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Runs a test case with a time limit: a case that hangs fails, naming itself, instead of
/// holding up the suite. (Everything a case started is cleaned up as its values drop.)
pub async fn bounded<F: Future>(limit: Duration, case: &str, body: F) -> F::Output {
    match tokio::time::timeout(limit, body).await {
        Ok(output) => output,
        Err(_) => panic!("{case} did not finish within {limit:?}"),
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on, from 20000-32767 (below Linux's ephemeral
/// range, so no outgoing connection takes it while a killed service is down), as
/// scripts/lib/services.sh picks them.
pub fn free_port() -> u16 {
    for _ in 0..500 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_768) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("found no free TCP port in 20000-32767 on 127.0.0.1");
}

/// A short random hex string for names (databases, prefixes, folders).
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
