//! `projector [run]`, `projector rebuild <name> | --all`, `projector retry-dead-letters`.

use read_models::names;

use crate::{Application, Projector, Settings, saga};

#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "projector",
    version,
    about = "Tails the event log into the read models and runs the order saga"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run every subscription (the default).
    Run,
    /// Replay a read model from position 0 into a fresh copy, then switch over with no downtime.
    Rebuild {
        /// lookups, order_list, product_catalog, order_history, event_feed or document_versions.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Rebuild every read model.
        #[arg(long)]
        all: bool,
    },
    /// Run the saga events parked in dead_letters through their handlers again.
    RetryDeadLetters,
}

/// Runs what the command line asks for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let application = Application::build(cli.settings).await?;
            tracing::info!(address = %application.address(), "projector listening");
            application.run_until_stopped().await
        }
        Command::Rebuild { name, all } => {
            let targets: Vec<String> = if all {
                names::READ_MODELS.iter().map(ToString::to_string).collect()
            } else {
                name.into_iter().collect()
            };
            let projector = Projector::connect(&cli.settings).await?;
            projector.rebuilder().rebuild(&targets).await
        }
        Command::RetryDeadLetters => {
            let projector = Projector::connect(&cli.settings).await?;
            let (done, failed) =
                saga::retry_dead_letters(&projector.pool, cli.settings.snapshot_every).await?;
            eprintln!("dead letters: {done} processed, {failed} still failing");
            if failed > 0 {
                anyhow::bail!("{failed} dead letters still fail; see the log and /projections");
            }
            Ok(())
        }
    }
}
