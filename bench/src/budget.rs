//! The pipeline's PostgreSQL budget: what PostgreSQL's own counters say the load cost, per
//! decided order. Transactions, statements, rows written and WAL bytes are counts, not times,
//! so they do not drift with whatever else the machine is doing: they are the figures to steer
//! by. Read before the load and after the drain, in the benchmark's private cluster (nothing
//! else writes there), from `pg_stat_database`, `pg_stat_wal` and, when the server preloads it,
//! `pg_stat_statements` (which `scripts/bench pipeline` does for its cluster).
//!
//! What the window also holds, besides the orders: the benchmark's own polling (a count of
//! decided orders every 200 ms, `/projections` every 250 ms) and the projector's idle polls;
//! both are a few statements per second against thousands per second of the load.

use serde::Serialize;
use sqlx::PgPool;

/// PostgreSQL's cumulative counters at one moment (this database's, and the cluster's WAL).
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct Counters {
    pub transactions_committed: i64,
    pub transactions_rolled_back: i64,
    pub rows_inserted: i64,
    pub rows_updated: i64,
    pub rows_deleted: i64,
    pub wal_records: i64,
    pub wal_bytes: i64,
    /// Full-page images: a page's first change after a checkpoint writes the whole page, so a
    /// checkpoint inside the window adds WAL that the orders did not cause one by one.
    pub wal_full_page_images: i64,
    /// Statements executed in this database (`pg_stat_statements`, `BEGIN` and `COMMIT`
    /// included); `None` when the server does not preload it.
    pub statements: Option<i64>,
    /// Where the WAL stood (`pg_current_wal_insert_lsn()`), to attribute the window's WAL to
    /// the tables and indexes it changed.
    #[serde(skip)]
    pub wal_lsn: String,
}

impl Counters {
    fn since(&self, before: &Counters) -> Counters {
        Counters {
            transactions_committed: self.transactions_committed - before.transactions_committed,
            transactions_rolled_back: self.transactions_rolled_back
                - before.transactions_rolled_back,
            rows_inserted: self.rows_inserted - before.rows_inserted,
            rows_updated: self.rows_updated - before.rows_updated,
            rows_deleted: self.rows_deleted - before.rows_deleted,
            wal_records: self.wal_records - before.wal_records,
            wal_bytes: self.wal_bytes - before.wal_bytes,
            wal_full_page_images: self.wal_full_page_images - before.wal_full_page_images,
            statements: self.statements.zip(before.statements).map(|(a, b)| a - b),
            wal_lsn: self.wal_lsn.clone(),
        }
    }
}

/// The WAL one table or index (or, for records that change no relation, one resource manager:
/// `Transaction` for commits) was written in the window.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct WalShare {
    pub relation: String,
    pub bytes: i64,
    pub records: i64,
}

/// One normalised statement's share of the window.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StatementCost {
    /// The statement as `pg_stat_statements` normalises it, whitespace collapsed, shortened.
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub rows: i64,
    pub wal_bytes: i64,
}

/// The cost of the window, in all and per decided order.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub orders: usize,
    pub total: Counters,
    pub per_order: PerOrder,
    /// Every statement of the window, most total time first (empty without
    /// `pg_stat_statements`); the report prints the first `TOP`.
    pub statements: Vec<StatementCost>,
    /// The window's WAL by the relation each record changed, most first (empty without
    /// `pg_walinspect`); the report prints the first `TOP`.
    pub wal_by_relation: Vec<WalShare>,
}

/// How many statements the printed report lists.
const TOP: usize = 12;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerOrder {
    pub transactions: f64,
    pub statements: Option<f64>,
    pub rows_inserted: f64,
    pub rows_updated: f64,
    pub rows_deleted: f64,
    pub rows_written: f64,
    pub wal_bytes: f64,
    pub wal_records: f64,
}

/// Counts from here on: makes `pg_stat_statements` available in this database when the server
/// preloads it (and empties it, so that its top statements are the window's), then reads every
/// counter. Returns whether statements are counted.
pub async fn start(pool: &PgPool) -> anyhow::Result<(Counters, bool)> {
    let preloaded: bool = sqlx::query_scalar(
        "SELECT current_setting('shared_preload_libraries') LIKE '%pg_stat_statements%'",
    )
    .fetch_one(pool)
    .await?;
    if preloaded {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(pool)
            .await?;
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(pool)
            .await?;
    }
    // pg_walinspect ships with PostgreSQL 15 and needs no preloading; where it cannot be
    // created (an older server, no rights), the WAL is simply not attributed.
    if sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(pool)
        .await
        .is_err()
    {
        eprintln!(
            "pipeline: pg_walinspect is not available; the WAL will not be attributed to tables"
        );
    }
    Ok((read(pool, preloaded).await?, preloaded))
}

/// Reads every counter now. Each backend publishes its counts when it goes idle, at most once a
/// second, so call this a little over a second after the last work to be counted.
pub async fn read(pool: &PgPool, statements: bool) -> anyhow::Result<Counters> {
    let mut counters: Counters = sqlx::query_as(
        "SELECT d.xact_commit AS transactions_committed, d.xact_rollback AS transactions_rolled_back,
                d.tup_inserted AS rows_inserted, d.tup_updated AS rows_updated,
                d.tup_deleted AS rows_deleted,
                w.wal_records, w.wal_bytes::bigint AS wal_bytes, w.wal_fpi AS wal_full_page_images,
                NULL::bigint AS statements, pg_current_wal_insert_lsn()::text AS wal_lsn
         FROM pg_stat_database d, pg_stat_wal w
         WHERE d.datname = current_database()",
    )
    .fetch_one(pool)
    .await?;
    if statements {
        counters.statements = Some(
            sqlx::query_scalar(
                "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(pool)
            .await?,
        );
    }
    Ok(counters)
}

/// What the window from `before` to `after` cost, per order of `orders` decided in it.
pub async fn finish(
    pool: &PgPool,
    before: Counters,
    after: Counters,
    orders: usize,
) -> anyhow::Result<Budget> {
    let total = after.since(&before);
    // The statements first: the WAL's attribution is itself a statement, and a long one.
    let statements = if after.statements.is_some() {
        statements_by_time(pool).await?
    } else {
        Vec::new()
    };
    let wal_by_relation = wal_by_relation(pool, &before.wal_lsn, &after.wal_lsn)
        .await
        .unwrap_or_default();
    Ok(Budget {
        orders,
        per_order: per_order(&total, orders),
        total,
        statements,
        wal_by_relation,
    })
}

fn per_order(total: &Counters, orders: usize) -> PerOrder {
    let n = orders.max(1) as f64;
    let each = |count: i64| count as f64 / n;
    PerOrder {
        transactions: each(total.transactions_committed),
        statements: total.statements.map(each),
        rows_inserted: each(total.rows_inserted),
        rows_updated: each(total.rows_updated),
        rows_deleted: each(total.rows_deleted),
        rows_written: each(total.rows_inserted + total.rows_updated + total.rows_deleted),
        wal_bytes: each(total.wal_bytes),
        wal_records: each(total.wal_records),
    }
}

async fn statements_by_time(pool: &PgPool) -> anyhow::Result<Vec<StatementCost>> {
    let mut all: Vec<StatementCost> = sqlx::query_as(
        "SELECT query, calls, total_exec_time AS total_ms, rows, wal_bytes::bigint AS wal_bytes
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC",
    )
    .fetch_all(pool)
    .await?;
    for statement in &mut all {
        statement.query = shorten(&statement.query, 110);
    }
    Ok(all)
}

/// The WAL records from `from` to `to`, summed by the relation of their first block (the
/// table or index they change; its name as `pg_class` knows it now), else by resource manager.
async fn wal_by_relation(pool: &PgPool, from: &str, to: &str) -> anyhow::Result<Vec<WalShare>> {
    Ok(sqlx::query_as(
        "SELECT coalesce(c.relname::text, r.resource_manager) AS relation,
                sum(r.record_length)::bigint AS bytes, count(*) AS records
         FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn) r
         LEFT JOIN pg_class c
                ON c.relfilenode = (regexp_match(r.block_ref, 'rel \\d+/\\d+/(\\d+)'))[1]::oid
         GROUP BY 1 ORDER BY 2 DESC",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// The statement on one line, at most `most` characters.
fn shorten(query: &str, most: usize) -> String {
    let line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= most {
        return line;
    }
    let mut short: String = line.chars().take(most - 1).collect();
    short.push('…');
    short
}

impl Budget {
    /// The budget as the pipeline prints it.
    pub fn lines(&self) -> Vec<String> {
        let p = &self.per_order;
        let t = &self.total;
        let mut lines = vec![
            format!(
                "PostgreSQL per decided order ({} orders; from pg_stat_database, pg_stat_wal{}):",
                self.orders,
                if t.statements.is_some() {
                    ", pg_stat_statements"
                } else {
                    "; statements not counted: the server does not preload pg_stat_statements"
                }
            ),
            format!(
                "  transactions committed {:>9.1}   ({} in all, {} rolled back)",
                p.transactions, t.transactions_committed, t.transactions_rolled_back
            ),
        ];
        if let (Some(per), Some(all)) = (p.statements, t.statements) {
            lines.push(format!(
                "  statements executed    {per:>9.1}   ({all} in all)"
            ));
        }
        lines.push(format!(
            "  rows written           {:>9.1}   ({:.1} inserted, {:.1} updated, {:.1} deleted)",
            p.rows_written, p.rows_inserted, p.rows_updated, p.rows_deleted
        ));
        lines.push(format!(
            "  WAL bytes              {:>9.0}   ({:.1} records; {} full-page images in all)",
            p.wal_bytes, p.wal_records, t.wal_full_page_images
        ));
        if !self.statements.is_empty() {
            lines.push("  top statements by total time (calls and WAL bytes per order):".into());
            let n = self.orders.max(1) as f64;
            for s in self.statements.iter().take(TOP) {
                lines.push(format!(
                    "    {:>8.0} ms {:>6.2} calls {:>7.0} B  {}",
                    s.total_ms,
                    s.calls as f64 / n,
                    s.wal_bytes as f64 / n,
                    s.query
                ));
            }
        }
        if !self.wal_by_relation.is_empty() {
            lines.push("  WAL by table or index (bytes and records per order):".into());
            let n = self.orders.max(1) as f64;
            for share in self.wal_by_relation.iter().take(TOP) {
                lines.push(format!(
                    "    {:>8.0} B {:>6.2} records  {}",
                    share.bytes as f64 / n,
                    share.records as f64 / n,
                    share.relation
                ));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::{Counters, per_order, shorten};

    #[test]
    fn per_order_divides_the_difference_of_the_counters() {
        let before = Counters {
            transactions_committed: 100,
            rows_inserted: 10,
            wal_bytes: 1_000,
            statements: Some(50),
            ..Counters::default()
        };
        let after = Counters {
            transactions_committed: 140,
            rows_inserted: 30,
            rows_updated: 10,
            wal_bytes: 9_000,
            statements: Some(250),
            ..Counters::default()
        };
        let per = per_order(&after.since(&before), 4);
        assert_eq!(per.transactions, 10.0);
        assert_eq!(per.statements, Some(50.0));
        assert_eq!(per.rows_written, 7.5);
        assert_eq!(per.wal_bytes, 2_000.0);
    }

    #[test]
    fn statements_are_not_counted_when_either_end_lacks_them() {
        let before = Counters {
            statements: None,
            ..Counters::default()
        };
        let after = Counters {
            statements: Some(9),
            ..Counters::default()
        };
        assert_eq!(after.since(&before).statements, None);
    }

    #[test]
    fn a_statement_is_shown_on_one_short_line() {
        assert_eq!(shorten("SELECT\n   1,\n  2", 40), "SELECT 1, 2");
        let long = shorten(&"x ".repeat(100), 10);
        assert_eq!(long.chars().count(), 10);
        assert!(long.ends_with('…'));
    }
}
