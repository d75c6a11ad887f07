//! projector: parse the command line, set up telemetry, run or rebuild.

use std::process::ExitCode;

use clap::Parser;
use projector::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_tracing(&cli.log);
    shared::telemetry::exit_code("projector", projector::run_cli(cli).await)
}
