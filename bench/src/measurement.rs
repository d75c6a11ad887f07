//! What each step of the suite measures, in one shape, so the report can put every figure beside
//! its ceiling and its target. Each step writes its measurements to `<work dir>/<step>.json`.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Requests (or rows, events) per second at a concurrency, with latency percentiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Throughput {
    pub connections: usize,
    pub seconds: f64,
    pub requests: u64,
    /// Failed requests (connection errors, timeouts, non-2xx answers).
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// (percentile, ms) pairs for the latency plot.
    pub percentiles_ms: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// A stable name: `lookup_orders`, `ceiling_redis_orders`, `orders_paused`, ...
    pub id: String,
    /// What was measured, for the table.
    pub what: String,
    pub value: f64,
    /// `req/s`, `rows/s`, `events/s`, `ms`, `MiB`.
    pub unit: String,
    pub throughput: Option<Throughput>,
    /// The id of the measurement this one is compared with (its ceiling or reference).
    pub reference: Option<String>,
    pub note: Option<String>,
}

impl Measurement {
    pub fn rate(id: &str, what: &str, unit: &str, throughput: Throughput) -> Self {
        Self {
            id: id.to_owned(),
            what: what.to_owned(),
            value: throughput.per_second,
            unit: unit.to_owned(),
            throughput: Some(throughput),
            reference: None,
            note: None,
        }
    }

    pub fn value(id: &str, what: &str, value: f64, unit: &str) -> Self {
        Self {
            id: id.to_owned(),
            what: what.to_owned(),
            value,
            unit: unit.to_owned(),
            throughput: None,
            reference: None,
            note: None,
        }
    }

    pub fn against(mut self, reference: &str) -> Self {
        self.reference = Some(reference.to_owned());
        self
    }

    pub fn noting(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn print(&self) {
        match &self.throughput {
            Some(t) => println!(
                "  {:<44} {:>10.0} {:<8} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} errors)",
                self.what, self.value, self.unit, t.p50_ms, t.p99_ms, t.errors
            ),
            None => println!("  {:<44} {:>10.1} {}", self.what, self.value, self.unit),
        }
    }
}

/// Writes one step's measurements.
pub fn save(work_dir: &Path, step: &str, measurements: &[Measurement]) -> anyhow::Result<()> {
    let path = work_dir.join(format!("{step}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(measurements)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Every step's measurements found in `work_dir`, in the order the steps ran.
pub fn load_all(work_dir: &Path, steps: &[&str]) -> anyhow::Result<Vec<Measurement>> {
    let mut all = Vec::new();
    for step in steps {
        let path = work_dir.join(format!("{step}.json"));
        if !path.exists() {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut measurements: Vec<Measurement> = serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding {}", path.display()))?;
        all.append(&mut measurements);
    }
    Ok(all)
}
