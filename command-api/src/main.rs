//! command-api: parse the configuration, set up telemetry, run. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use command_api::{Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    http_kit::telemetry::init_tracing(&settings.log);
    http_kit::telemetry::exit_code("command-api", run(settings).await)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(address = %application.address(), "command-api listening");
    application.run_until_stopped().await
}
