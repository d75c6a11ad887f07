//! The projector: tails the event log in one global order and keeps every read model (and, in
//! `saga`, the order saga) up to date. Each subscription keeps its own checkpoint.

pub mod cli;
mod error;
mod http;
mod progress;
pub mod projections;
pub mod rebuild;
pub mod runner;
pub mod saga;
mod wakeup;

pub use error::ProjectionError;
pub use runner::{Projector, ProjectorSettings};

use cli::{Cli, Command};
use shared::{
    config::{connect_postgres, connect_redis, migrate},
    event_store::ensure_positions_move_forward,
    read_model::{RedisKeys, names},
};

/// Runs what the command line asks for.
pub async fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let pool = connect_postgres(cli.database.require()?, 16).await?;
    migrate(&pool).await?;
    ensure_positions_move_forward(&pool).await?;
    let redis = connect_redis(&cli.redis.redis_url).await?;
    let keys = RedisKeys::new(cli.redis.redis_key_prefix.clone());
    match cli.command.unwrap_or(Command::Run) {
        Command::Rebuild { name, all } => {
            let targets: Vec<String> = if all {
                names::READ_MODELS.iter().map(ToString::to_string).collect()
            } else {
                name.into_iter().collect()
            };
            rebuild::Rebuilder { pool, redis, keys }
                .rebuild(&targets)
                .await
        }
        Command::RetryDeadLetters => {
            let (done, failed) = saga::retry_dead_letters(&pool, cli.snapshot_every).await?;
            eprintln!("dead letters: {done} processed, {failed} still failing");
            if failed > 0 {
                anyhow::bail!("{failed} dead letters still fail; see the log and /projections");
            }
            Ok(())
        }
        Command::Run => {
            let (server, address) = http::serve(&cli.addr, pool.clone(), redis.clone())?;
            tracing::info!(%address, "projector listening");
            let server_handle = server.handle();
            let server_task = tokio::spawn(server);
            let (stop, shutdown) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down: finishing the batches in flight");
                let _ = stop.send(true);
            });
            let settings = ProjectorSettings {
                saga_mode: cli.saga_mode,
                snapshot_every: cli.snapshot_every,
                ..Default::default()
            };
            tracing::info!(saga_mode = ?settings.saga_mode, "projector starting");
            let projector = Projector {
                pool,
                redis,
                keys,
                settings,
            };
            projector.run(shutdown).await;
            server_handle.stop(true).await;
            let _ = server_task.await;
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
