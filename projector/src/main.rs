//! projector: parse the command line, set up telemetry, run or rebuild.

use std::process::ExitCode;

use clap::Parser;
use projector::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    http_kit::telemetry::init_tracing(&cli.settings.log);
    http_kit::telemetry::exit_code("projector", projector::cli::run(cli).await)
}
