//! projector: parse the command line, set up telemetry, run or rebuild.

use std::process::ExitCode;

use clap::Parser;
use projector::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_tracing(&cli.log);
    match projector::run_cli(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("projector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
