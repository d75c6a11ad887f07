//! The Redis setting (`REDIS_URL`, `REDIS_KEY_PREFIX`) and connecting to it.

use std::time::Duration;

use anyhow::Context;
use database::redact_url;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "cqrs:";

#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, hide_env_values = true)]
    pub redis_url: String,
    /// Every Redis key the system writes or reads starts with this.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = DEFAULT_REDIS_KEY_PREFIX)]
    pub redis_key_prefix: String,
}

/// Connects to Redis with short timeouts, so a Redis outage turns into quick errors (503s)
/// rather than hung requests; the manager reconnects by itself when Redis is back.
pub async fn connect(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
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
