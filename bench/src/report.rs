//! `bench report`: puts the steps' measurements together: each figure beside its ceiling (or
//! reference) and the ratio, the targets met or not, and the machine it ran on. Writes
//! `<date>.json`, `<date>.md` and `<date>-latency.svg` and prints the Markdown table.

use std::{fmt::Write as _, path::PathBuf};

use anyhow::Context;
use chrono::Utc;
use plotters::prelude::*;
use serde::Serialize;

use crate::{
    latency::PLOTTED_PERCENTILES,
    measurement::{self, Measurement},
    suite::STEPS,
};

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub work_dir: PathBuf,
    #[arg(long, default_value = "bench/results")]
    pub out_dir: PathBuf,
    /// The command that ran the suite, as the report shows it.
    #[arg(long, default_value = "scripts/bench")]
    pub command: String,
    #[arg(long)]
    pub quick: bool,
    /// The load average when the suite started (a noisy machine shows here).
    #[arg(long)]
    pub load_before: Option<String>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_gib: f64,
    load_average_before: Option<String>,
    load_average_after: String,
}

#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    measurement: Measurement,
    reference_value: Option<f64>,
    reference_unit: Option<String>,
    ratio: Option<f64>,
    target: Option<String>,
    target_met: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Results {
    date: String,
    command: String,
    quick: bool,
    machine: Machine,
    rows: Vec<Row>,
}

fn machine(load_before: Option<String>) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown".to_owned(),
            |(_, model)| model.trim().to_owned(),
        );
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        cpu_model,
        memory_gib: memory_kib / 1024.0 / 1024.0,
        load_average_before: load_before,
        load_average_after: load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The targets of issue 14, as (description, met?) given the row's value, ratio and p99.
fn target(m: &Measurement, ratio: Option<f64>) -> Option<(String, bool)> {
    let p99 = m.throughput.as_ref().map(|t| t.p99_ms);
    let id = m.id.as_str();
    if id.starts_with("lookup_") {
        let (ratio, p99) = (ratio?, p99?);
        return Some((
            "≥ 0.75 of the ceiling, p99 < 5 ms".to_owned(),
            ratio >= 0.75 && p99 < 5.0,
        ));
    }
    match id {
        "orders_paused" => Some(("≥ 0.5 of pgbench".to_owned(), ratio? >= 0.5)),
        "orders_running" => Some(("≥ 0.35 of pgbench".to_owned(), ratio? >= 0.35)),
        "hot_snapshots_on" => Some(("≤ 1.5 × a fresh product's".to_owned(), ratio? <= 1.5)),
        "rss_query_api" => Some(("< 64 MiB".to_owned(), m.value < 64.0)),
        _ if id.starts_with("rebuild_") && m.unit == "events/s" => {
            Some(("≥ 100,000 events/s".to_owned(), m.value >= 100_000.0))
        }
        _ => None,
    }
}

fn rows(measurements: Vec<Measurement>) -> Vec<Row> {
    let values: Vec<(String, f64, String)> = measurements
        .iter()
        .map(|m| (m.id.clone(), m.value, m.unit.clone()))
        .collect();
    measurements
        .into_iter()
        .map(|m| {
            let reference = m
                .reference
                .as_ref()
                .and_then(|r| values.iter().find(|(id, _, _)| id == r));
            let reference_value = reference.map(|(_, v, _)| *v);
            let ratio = reference_value.filter(|r| *r > 0.0).map(|r| m.value / r);
            let target = target(&m, ratio);
            Row {
                measurement: m,
                reference_value,
                reference_unit: reference.map(|(_, _, unit)| unit.clone()),
                ratio,
                target_met: target.as_ref().map(|(_, met)| *met),
                target: target.map(|(text, _)| text),
            }
        })
        .collect()
}

fn number(value: f64, unit: &str) -> String {
    if unit == "ms" || unit == "MiB" || unit == "s" || value < 100.0 {
        format!("{value:.1} {unit}")
    } else {
        let whole = value.round() as u64;
        let digits = whole.to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{grouped} {unit}")
    }
}

fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let m = &results.machine;
    let _ = writeln!(
        out,
        "Suite run {} (`{}`{}) on {} CPUs ({}), {:.0} GiB; load average {} before, {} after.\n",
        results.date,
        results.command,
        if results.quick {
            ", quick: short runs, not comparable"
        } else {
            ""
        },
        m.cpus,
        m.cpu_model,
        m.memory_gib,
        m.load_average_before.as_deref().unwrap_or("?"),
        m.load_average_after
    );
    out.push_str("| what | figure | p50 | p99 | compared with | ratio | target | met |\n");
    out.push_str("|---|---:|---:|---:|---|---:|---|---|\n");
    for row in &results.rows {
        let m = &row.measurement;
        let (p50, p99) = m
            .throughput
            .as_ref()
            .map_or(("".to_owned(), "".to_owned()), |t| {
                (format!("{:.2} ms", t.p50_ms), format!("{:.2} ms", t.p99_ms))
            });
        let reference = match (&m.reference, row.reference_value) {
            (Some(r), Some(v)) => format!(
                "{r} ({})",
                number(v, row.reference_unit.as_deref().unwrap_or(&m.unit))
            ),
            (Some(r), None) => format!("{r} (not measured)"),
            _ => String::new(),
        };
        let mut figure = number(m.value, &m.unit);
        if m.unit == "ms" {
            figure = format!("{figure} (p50)");
        }
        if let Some(t) = &m.throughput
            && t.errors > 0
        {
            figure = format!("{figure}, {} errors", t.errors);
        }
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
            m.what,
            m.note.as_ref().map_or(String::new(), |n| format!(" ({n})")),
            figure,
            p50,
            p99,
            reference,
            row.ratio.map_or(String::new(), |r| format!("{r:.2}")),
            row.target.as_deref().unwrap_or(""),
            match row.target_met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        );
    }
    out
}

/// Latency at each percentile of every load with percentiles, on a log scale.
fn plot(results: &Results, path: &std::path::Path) -> anyhow::Result<()> {
    let series: Vec<(&str, &Vec<(f64, f64)>)> = results
        .rows
        .iter()
        .filter_map(|row| {
            let m = &row.measurement;
            m.throughput
                .as_ref()
                .filter(|t| !t.percentiles_ms.is_empty() && t.connections > 1)
                .map(|t| (m.what.as_str(), &t.percentiles_ms))
        })
        .collect();
    let max = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, ms)| *ms))
        .fold(1.0_f64, f64::max);
    let min = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(_, ms)| *ms))
        .filter(|ms| *ms > 0.0)
        .fold(max, f64::min);
    let root = SVGBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = (PLOTTED_PERCENTILES.len() - 1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Latency by percentile ({})", results.date),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..last, ((min * 0.8).max(0.01)..max * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(PLOTTED_PERCENTILES.len())
        .x_label_formatter(&|x| {
            let index = x.round() as usize;
            PLOTTED_PERCENTILES
                .get(index)
                .map_or_else(String::new, |p| format!("p{p}"))
        })
        .y_desc("ms (log scale)")
        .draw()?;
    for (n, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(n).to_rgba();
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|(p, ms)| {
                PLOTTED_PERCENTILES
                    .iter()
                    .position(|q| (q - p).abs() < 1e-9)
                    .map(|i| (i as f64, ms.max(0.01)))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let measurements = measurement::load_all(&args.work_dir, &STEPS)?;
    let date = Utc::now().format("%Y-%m-%dT%H%MZ").to_string();
    let results = Results {
        date: date.clone(),
        command: args.command.clone(),
        quick: args.quick,
        machine: machine(args.load_before.clone()),
        rows: rows(measurements),
    };
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let base = args.out_dir.join(&date);
    let json_path = base.with_extension("json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&results)?)?;
    let table = markdown(&results);
    let md_path = base.with_extension("md");
    std::fs::write(&md_path, &table)?;
    let svg_path = args.out_dir.join(format!("{date}-latency.svg"));
    plot(&results, &svg_path)?;
    println!("\n{table}");
    println!(
        "written: {}, {}, {}",
        json_path.display(),
        md_path.display(),
        svg_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{number, rows};
    use crate::measurement::{Measurement, Throughput};

    fn lookup(per_second: f64, p99_ms: f64) -> Measurement {
        let throughput = Throughput {
            per_second,
            p99_ms,
            ..Throughput::default()
        };
        Measurement::rate("lookup_orders", "GET /orders/{id}", "req/s", throughput)
            .against("ceiling_redis_orders")
    }

    #[test]
    fn numbers_are_grouped_by_thousands_and_small_ones_keep_a_decimal() {
        assert_eq!(number(1_016_821.4, "events/s"), "1,016,821 events/s");
        assert_eq!(number(444.0, "req/s"), "444 req/s");
        assert_eq!(number(18.26, "MiB"), "18.3 MiB");
    }

    #[test]
    fn a_lookup_is_compared_with_its_ceiling_and_judged_on_ratio_and_p99() {
        let ceiling = Measurement::value("ceiling_redis_orders", "ceiling", 40_000.0, "req/s");
        let judged = rows(vec![lookup(32_000.0, 4.0), ceiling.clone()]);
        assert_eq!(judged[0].ratio, Some(0.8));
        assert_eq!(judged[0].target_met, Some(true));
        let slow_tail = rows(vec![lookup(32_000.0, 6.0), ceiling.clone()]);
        assert_eq!(slow_tail[0].target_met, Some(false));
        let far = rows(vec![lookup(16_000.0, 4.0), ceiling]);
        assert_eq!(far[0].target_met, Some(false));
        assert_eq!(far[1].target, None);
    }
}
