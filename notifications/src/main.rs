//! notifications: parse the configuration, set up telemetry, run. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use notifications::{Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    http_kit::telemetry::init_tracing(&settings.log);
    http_kit::telemetry::exit_code("notifications", run(settings).await)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(address = %application.address(), "notifications listening");
    application.run_until_stopped().await
}
