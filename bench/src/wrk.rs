//! Drives HTTP load with wrk (Debian's `wrk`): a Lua script picks each request (rotating over
//! many ids, or building order bodies) and prints wrk's own figures as one JSON line at the end.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, bail, ensure};
use serde::Deserialize;

use crate::measurement::Throughput;

/// Prints the run's figures as one line starting with `BENCH_JSON `.
const DONE: &str = r#"
done = function(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 75, 90, 95, 99, 99.9, 99.99}) do
    p[#p + 1] = string.format("[%g,%.0f]", q, latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f,"max_us":%.0f,"percentiles_us":[%s]}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout, latency.max,
    table.concat(p, ",")))
end
"#;

/// A Lua string literal (ids and tokens hold no quotes or backslashes, but be exact).
fn lua_string(value: &str) -> String {
    format!("{value:?}")
}

fn lua_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| lua_string(v)).collect();
    format!("{{{}}}", items.join(",\n"))
}

/// GET requests rotating over `paths`.
pub fn get_script(paths: &[String]) -> String {
    format!(
        r#"local paths = {}
local counter = math.random(1, #paths)
request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
{DONE}"#,
        lua_list(paths)
    )
}

/// `POST /orders` with 1 to 3 lines of distinct products, as `api::Catalog::order_body` builds.
pub fn orders_script(customers: &[String], products: &[String], token: &str) -> String {
    format!(
        r#"local customers = {}
local products = {}
local headers = {{ ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. {} }}
local counter = math.random(0, 1000000)
request = function()
  counter = counter + 1
  local lines = {{}}
  for k = 0, counter % 3 do
    lines[#lines + 1] = string.format('{{"product_id":"%s","quantity":%d}}', products[(counter * 7 + k) % #products + 1], k + 1)
  end
  local body = string.format('{{"customer_id":"%s","lines":[%s]}}', customers[counter % #customers + 1], table.concat(lines, ","))
  return wrk.format("POST", "/orders", headers, body)
end
{DONE}"#,
        lua_list(customers),
        lua_list(products),
        lua_string(token)
    )
}

#[derive(Debug, Deserialize)]
struct WrkFigures {
    requests: f64,
    duration_us: f64,
    connect_errors: f64,
    read_errors: f64,
    write_errors: f64,
    status_errors: f64,
    timeouts: f64,
    max_us: f64,
    percentiles_us: Vec<(f64, f64)>,
}

/// Runs wrk with `script` against `base_url` for `duration` at `connections` connections (two
/// threads: the machine's cores, which the services share).
pub fn run(
    work_dir: &Path,
    name: &str,
    base_url: &str,
    script: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Throughput> {
    let script_path = work_dir.join(format!("{name}.lua"));
    std::fs::write(&script_path, script)
        .with_context(|| format!("writing {}", script_path.display()))?;
    let output = Command::new("wrk")
        .arg("--threads")
        .arg("2")
        .arg("--connections")
        .arg(connections.to_string())
        .arg("--duration")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--script")
        .arg(&script_path)
        .arg(base_url)
        .output()
        .context("running wrk (install it: apt-get install -y wrk)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "wrk failed for {name}: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("BENCH_JSON ")) else {
        bail!("wrk printed no figures for {name}: {stdout}");
    };
    let figures: WrkFigures =
        serde_json::from_str(line).with_context(|| format!("wrk's figures for {name}: {line}"))?;
    let seconds = figures.duration_us / 1e6;
    let errors = figures.connect_errors
        + figures.read_errors
        + figures.write_errors
        + figures.status_errors
        + figures.timeouts;
    let at = |q: f64| {
        figures
            .percentiles_us
            .iter()
            .find(|(p, _)| (*p - q).abs() < 1e-9)
            .map_or(0.0, |(_, us)| us / 1e3)
    };
    Ok(Throughput {
        connections,
        seconds,
        requests: figures.requests as u64,
        errors: errors as u64,
        per_second: figures.requests / seconds.max(1e-9),
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        max_ms: figures.max_us / 1e3,
        percentiles_ms: figures
            .percentiles_us
            .iter()
            .map(|(p, us)| (*p, us / 1e3))
            .collect(),
    })
}
