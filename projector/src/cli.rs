//! `projector [run]`, `projector rebuild <name> | --all`, `projector retry-dead-letters`.

use shared::{
    config::{DatabaseArgs, RedisArgs},
    telemetry::LogArgs,
};

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "projector",
    version,
    about = "Tails the event log into the read models and runs the order saga"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[arg(long, env = "PROJECTOR_ADDR", default_value = "127.0.0.1:8082")]
    pub addr: String,
    /// Snapshot aggregates every N events when the saga writes (0 disables snapshots).
    #[arg(long, env = "SNAPSHOT_EVERY", default_value_t = 100, value_parser = clap::value_parser!(i64).range(0..))]
    pub snapshot_every: i64,
    /// How the order saga runs: one coordinator, or handlers reacting to each other's events.
    #[arg(long, env = "SAGA_MODE", value_enum, default_value = "orchestration")]
    pub saga_mode: crate::saga::SagaMode,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run every subscription (the default).
    Run,
    /// Replay a read model from position 0 into a fresh copy, then switch over with no downtime.
    Rebuild {
        /// lookups, order_list, product_catalog or order_history.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Rebuild every read model.
        #[arg(long)]
        all: bool,
    },
    /// Run the saga events parked in dead_letters through their handlers again.
    RetryDeadLetters,
}
