//! PostgreSQL as every service uses it: the `DATABASE_URL` setting, connecting (failing fast
//! with one line that says what to do), the migrations, and which errors pass with time. The
//! event store and the read side both build on this; neither owns the schema alone.

use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{
    ConnectOptions, Connection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/cqrs_shop
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The most PostgreSQL sessions this service opens at once.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_pool_size: u32,
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

/// Parses a PostgreSQL URL, naming `variable` and hiding the password when it is not one.
pub fn parse_url(url: &str, variable: &str) -> anyhow::Result<PgConnectOptions> {
    url.parse().with_context(|| {
        format!(
            "{variable} is not a valid PostgreSQL URL: {}",
            redact_url(url)
        )
    })
}

/// Connects to PostgreSQL, failing fast with a message that names the URL and the cause.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = parse_url(url, "DATABASE_URL")?;
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

/// Brings the schema up to date. sqlx takes an advisory lock, so several services starting at
/// once apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../../migrations")
        .run(pool)
        .await
        .context("cannot apply the database migrations")?;
    Ok(())
}

/// Connections a pool holds, by `pool` and `state` (`in_use`, `idle`).
pub const POOL_CONNECTIONS: &str = "db_pool_connections";
/// The most connections a pool may open, by `pool`.
pub const POOL_MAX_CONNECTIONS: &str = "db_pool_max_connections";

/// Sets the gauges of `pool`'s use under the label `pool="<name>"`. Each service calls it
/// before every scrape of `/metrics` (`ServerConfig::sample_before_scrape`); a pool that stays
/// at its maximum in use makes requests wait for connections (then 503 after the acquire
/// timeout).
pub fn record_pool_use(pool: &PgPool, name: &'static str) {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_gauge!(
            POOL_CONNECTIONS,
            metrics::Unit::Count,
            "PostgreSQL connections the pool holds, by pool and state (in_use, idle)"
        );
        metrics::describe_gauge!(
            POOL_MAX_CONNECTIONS,
            metrics::Unit::Count,
            "The most PostgreSQL connections the pool may open"
        );
    });
    let (size, idle) = (pool.size(), pool.num_idle() as u32);
    let in_use = size.saturating_sub(idle);
    metrics::gauge!(POOL_CONNECTIONS, "pool" => name, "state" => "in_use").set(in_use);
    metrics::gauge!(POOL_CONNECTIONS, "pool" => name, "state" => "idle").set(idle);
    metrics::gauge!(POOL_MAX_CONNECTIONS, "pool" => name).set(pool.options().get_max_connections());
}

/// Failures that pass with time: connection loss, pool exhaustion, serialization failures and
/// deadlocks, and the server's own trouble (too many connections, a cancelled statement, a
/// shutdown or failover). Data, integrity and syntax errors are deterministic and do not pass.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE classes: 08 connection, 40 rollback, 53 insufficient resources,
            // 55 object not in prerequisite state (lock not available), 57 operator
            // intervention, 58 system error; 25006 is a read-only (failed over) server.
            matches!(code.get(..2), Some("08" | "40" | "53" | "55" | "57" | "58"))
                || code == "25006"
        }),
        _ => false,
    }
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
