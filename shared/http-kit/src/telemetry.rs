//! Logs (tracing, JSON or pretty) and metrics (Prometheus text, with `# HELP` lines and
//! histogram buckets), set up once per process.

use std::{io::IsTerminal, sync::OnceLock, time::Duration};

use metrics::Unit;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// `json` or `pretty`; default: pretty on a terminal, JSON otherwise. Levels come from RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A request taking longer than this many milliseconds is logged at `warn`; faster
    /// successful ones only at `debug` (failed ones always, at `info` or `error`).
    #[arg(long, env = "SLOW_REQUEST_MS", default_value_t = crate::middleware::DEFAULT_SLOW_REQUEST_MS)]
    pub slow_request_ms: u64,
}

/// Installs the global subscriber. RUST_LOG filters (default `info`).
pub fn init_tracing(args: &LogArgs) {
    crate::middleware::set_slow_request_threshold(Duration::from_millis(args.slow_request_ms));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = args
        .log_format
        .unwrap_or(if std::io::stderr().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    // A second call (tests start several apps in one process) keeps the first subscriber.
    drop(installed);
}

/// The buckets of every histogram, in seconds: request latencies, `min_position` waits, batch
/// durations and the saga's placed-to-decided time all fall between a millisecond and a minute.
/// (Without buckets the exporter would render summaries, which cannot be aggregated.)
pub const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so that a
/// process nobody scrapes does not keep every sample.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The HTTP metrics every service records (`observe_requests`).
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

/// The process-wide Prometheus recorder; the first call installs it, with the histogram buckets
/// and the descriptions of the HTTP metrics, and starts its upkeep. A service calls it before
/// it describes its own metrics (descriptions given before a recorder exists are lost).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&DURATION_BUCKETS)
                .expect("the duration buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let installed = metrics::set_global_recorder(recorder).is_ok();
            if installed {
                let upkeep = handle.clone();
                std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(UPKEEP_INTERVAL);
                            upkeep.run_upkeep();
                        }
                    })
                    .ok();
            }
            metrics::describe_counter!(
                HTTP_REQUESTS,
                "HTTP requests answered, by method, route (the matched pattern, or `unmatched`) and status"
            );
            metrics::describe_histogram!(
                HTTP_REQUEST_DURATION,
                Unit::Seconds,
                "Time from receiving an HTTP request to its response, by method, route and status"
            );
            handle
        })
        .clone()
}

/// How a service's `main` ends: success, or its error as one plain line on stderr (no
/// backtrace, whatever LOG_FORMAT says) and exit 1.
pub fn exit_code(service: &str, result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{service}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
