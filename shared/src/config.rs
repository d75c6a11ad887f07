//! Configuration shared by the services (environment variables, mirrored as CLI flags) and the
//! connections built from it. Every failure here is one line that says what to do.

use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "cqrs:";

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/cqrs_shop
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    pub fn require(&self) -> anyhow::Result<&str> {
        match self.database_url.as_deref() {
            Some(url) if !url.trim().is_empty() => Ok(url),
            _ => bail!(
                "DATABASE_URL is not set: export it (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/cqrs_shop) \
                 or start the whole system with ./scripts/run"
            ),
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, hide_env_values = true)]
    pub redis_url: String,
    /// Every Redis key the system writes or reads starts with this.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = DEFAULT_REDIS_KEY_PREFIX)]
    pub redis_key_prefix: String,
}

/// Connects to PostgreSQL, failing fast with a message that names the URL and the cause.
pub async fn connect_postgres(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse().with_context(|| {
        format!(
            "DATABASE_URL is not a valid PostgreSQL URL: {}",
            redact_url(url)
        )
    })?;
    let cannot_connect = || {
        format!(
            "cannot connect to PostgreSQL at {}: is it running and does the database exist? (./scripts/run starts one)",
            redact_url(url)
        )
    };
    // One plain connection first: a pool would only report that it timed out, not why.
    let probe = tokio::time::timeout(Duration::from_secs(5), options.connect())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))
        .with_context(cannot_connect)?
        .with_context(cannot_connect)?;
    drop(probe.close().await);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .with_context(cannot_connect)
}

/// Connects to Redis with short timeouts, so a Redis outage turns into quick errors (503s)
/// rather than hung requests; the manager reconnects by itself when Redis is back.
pub async fn connect_redis(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url)
        .with_context(|| format!("REDIS_URL is not a valid Redis URL: {}", redact_url(url)))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    client
        .get_connection_manager_with_config(config)
        .await
        .with_context(|| {
            format!(
                "cannot connect to Redis at {}: is it running? (./scripts/run starts one)",
                redact_url(url)
            )
        })
}

/// Brings the schema up to date. sqlx takes an advisory lock, so several services starting at
/// once apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../migrations")
        .run(pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }
}
