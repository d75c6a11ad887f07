//! `bench`: the system's benchmarks (see scripts/bench and docs/performance.md).
//!
//! - `bench pipeline`: orders end to end against a running system: placed/s, decided/s,
//!   placed-to-decided latency, saga lag and drain time (issue 13).
//! - `bench suite <step>` and `bench report`: the request-path suite (issue 14), every figure
//!   beside a ceiling measured in the same run; `scripts/bench` runs the steps in order around
//!   an isolated system of its own.
//! - `bench ceiling-server`: the lookups' ceiling, a bare actix-web handler doing one Redis GET.

mod api;
mod budget;
mod ceiling_server;
mod event_seed;
mod latency;
mod measurement;
mod pgbench;
mod pipeline;
mod report;
mod suite;
mod wrk;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Benchmarks of the cqrs-shop system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Place orders (closed loop or fixed rate) and wait until the saga has decided each.
    Pipeline(pipeline::PipelineArgs),
    /// One step of the request-path suite (scripts/bench runs them in order).
    Suite {
        #[command(flatten)]
        args: suite::SuiteArgs,
        #[command(subcommand)]
        step: suite::Step,
    },
    /// Put the suite's measurements together: JSON, a Markdown table and a latency plot.
    Report(report::ReportArgs),
    /// Serve `/lookup/{id}` with one Redis GET per request (the lookups' ceiling).
    CeilingServer(ceiling_server::CeilingArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        // actix-web runs its workers on an actix system of its own.
        Command::CeilingServer(args) => {
            actix_web::rt::System::new().block_on(ceiling_server::run(args))
        }
        Command::Report(args) => report::run(args),
        Command::Pipeline(args) => tokio_runtime()?.block_on(pipeline::run(args)).map(drop),
        Command::Suite { args, step } => tokio_runtime()?.block_on(suite::run(args, step)),
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
