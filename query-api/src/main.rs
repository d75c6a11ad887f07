//! query-api: parse the configuration, set up telemetry, run. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use query_api::startup::{self, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = Settings::parse();
    shared::telemetry::init_tracing(&settings.log);
    shared::telemetry::exit_code("query-api", run(settings).await)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let application = startup::build(settings).await?;
    tracing::info!(address = %application.address(), "query-api listening");
    application.run_until_stopped().await
}
