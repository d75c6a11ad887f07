//! Latency percentiles, recorded in microseconds in an HDR histogram (3 significant digits), and
//! the summary every report prints.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The percentiles every latency is plotted at (wrk reports the same).
pub const PLOTTED_PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99];

/// Up to an hour, at 3 significant digits.
pub struct Latencies(Histogram<u64>);

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts; it fails only on bad bounds.
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .expect("1 µs to 1 h at 3 digits is a valid histogram");
        Self(histogram)
    }

    pub fn record(&mut self, latency: Duration) {
        self.record_micros(latency.as_micros().try_into().unwrap_or(u64::MAX));
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.max(1));
    }

    /// (percentile, ms) at the percentiles the latency plot shows.
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        PLOTTED_PERCENTILES
            .iter()
            .map(|p| (*p, self.0.value_at_quantile(p / 100.0) as f64 / 1_000.0))
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let ms = |micros: u64| micros as f64 / 1_000.0;
        if self.0.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Summary {
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}
